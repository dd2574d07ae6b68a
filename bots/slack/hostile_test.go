package slack

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// countingTransport counts the response body bytes the client reads, per
// request path.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	read map[string]*atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	n := c.read[r.URL.Path]
	if n == nil {
		n = new(atomic.Int64)
		c.read[r.URL.Path] = n
	}
	c.mu.Unlock()
	resp.Body = &countingBody{ReadCloser: resp.Body, n: n}
	return resp, nil
}

// bytesRead returns the body bytes read from responses to path.
func (c *countingTransport) bytesRead(path string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.read[path]; n != nil {
		return n.Load()
	}
	return 0
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// trustedBot returns a Bot whose api_url is srv, so srv's host is trusted
// with the bot token, downloading through a client that counts what it
// reads. The harness supplies the engine and the event log; the bot is
// never run.
func trustedBot(t *testing.T, srv *httptest.Server, limit int64) (*Bot, *countingTransport) {
	t.Helper()
	h := newHarness(t, options{})
	ct := &countingTransport{next: http.DefaultTransport, read: map[string]*atomic.Int64{}}
	b, err := New(Config{BotToken: "xoxb-hostile-test", AppToken: "xapp-x", APIURL: srv.URL + "/api/", Attachments: imagecheck.Limits{MaxBytes: limit},
		HTTPClient: &http.Client{Transport: ct}}, h.engine, h.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, ct
}

// stream writes chunks of zeros to w until total bytes are written or the
// client goes away, and returns how many it wrote.
func stream(w http.ResponseWriter, total int64) int64 {
	chunk := make([]byte, 32<<10)
	var sent int64
	for sent < total {
		n, err := w.Write(chunk[:min(int64(len(chunk)), total-sent)])
		sent += int64(n)
		if err != nil {
			break
		}
	}
	return sent
}

// TestDownloadStopsAtTheCap serves attachments that are larger than they
// claim, or claim to be huge, and proves the download never reads more
// than Attachments.MaxBytes+1 bytes of any of them.
func TestDownloadStopsAtTheCap(t *testing.T) {
	const limit = 1 << 20
	const flood = 256 << 20 // what the server would send if the client kept reading
	var sent sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files-pri/endless", "/files-pri/understated":
			sent.Store(r.URL.Path, stream(w, flood))
		case "/files-pri/declared-huge":
			w.Header().Set("Content-Length", "1099511627776")
			sent.Store(r.URL.Path, stream(w, flood))
		case "/files-pri/short-length":
			// Content-Length says 100 bytes; 8 MB follow on the connection.
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
			rw.Write(append(testPNG(1), make([]byte, 8<<20)...))
			rw.Flush()
		}
	}))
	defer srv.Close()
	b, ct := trustedBot(t, srv, limit)

	cases := []struct {
		path     string
		size     int // the size the file's description declares
		want     string
		maxBytes int64 // the most the download may read
	}{
		{"/files-pri/endless", 0, "endless.png is larger than 1.0 MB", limit + 1},
		{"/files-pri/understated", 1000, "understated.png is larger than 1.0 MB", limit + 1},
		{"/files-pri/declared-huge", 1000, "declared-huge.png is 1048576.0 MB", 0},
		{"/files-pri/short-length", 100, "short-length.png is cut short", 100},
	}
	for _, c := range cases {
		name := strings.TrimPrefix(c.path, "/files-pri/") + ".png"
		_, err := b.home.files.Fetch(context.Background(), attachment(slackapi.File{ID: "F1", Name: name, Size: c.size, URLPrivateDownload: srv.URL + c.path}))
		if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want Invalid saying %q", c.path, err, c.want)
		}
		if n := ct.bytesRead(c.path); n > c.maxBytes {
			t.Errorf("%s: read %d bytes, more than the %d allowed", c.path, n, c.maxBytes)
		} else {
			t.Logf("%s: read %d bytes of a response that would have sent up to %d (cap %d)", c.path, n, int64(flood), int64(limit))
		}
	}
	if n := ct.bytesRead("/files-pri/endless"); n != limit+1 {
		t.Errorf("the endless download read %d bytes, want exactly the cap plus one (%d)", n, limit+1)
	}
}

// TestDownloadsStayOnSlack proves the bot token goes only to a trusted
// host: a file on another host is not fetched, a trusted URL that
// redirects to another host (here the same loopback address on another
// port, which Go's client would otherwise send the Authorization header
// to) is refused before the hop, and credentials in a URL are refused.
func TestDownloadsStayOnSlack(t *testing.T) {
	var mu sync.Mutex
	var offHost []string // Authorization headers the other host received
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		offHost = append(offHost, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write(testPNG(2))
	}))
	defer other.Close()
	var trustedAuth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		trustedAuth = append(trustedAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.URL.Path {
		case "/files-pri/away":
			http.Redirect(w, r, other.URL+"/stolen.png", http.StatusFound)
		case "/files-pri/hop":
			http.Redirect(w, r, "/files-pri/logo.png", http.StatusFound)
		case "/files-pri/logo.png":
			w.Write(testPNG(1))
		}
	}))
	defer srv.Close()
	b, _ := trustedBot(t, srv, 1<<20)

	// A redirect within the trusted host is followed, with the token.
	img, err := b.home.files.Fetch(context.Background(), attachment(slackapi.File{ID: "F1", Name: "logo.png", URLPrivateDownload: srv.URL + "/files-pri/hop"}))
	if err != nil || img.MIME != "image/png" {
		t.Fatalf("a redirect within Slack's host: %v", err)
	}
	mu.Lock()
	if len(trustedAuth) != 2 || trustedAuth[0] != "Bearer xoxb-hostile-test" || trustedAuth[1] != trustedAuth[0] {
		t.Errorf("the trusted host got Authorization %q", trustedAuth)
	}
	mu.Unlock()

	refused := map[string]string{
		"redirected":  srv.URL + "/files-pri/away",
		"elsewhere":   other.URL + "/evil.png",
		"credentials": strings.Replace(srv.URL, "http://", "http://user:pass@", 1) + "/files-pri/logo.png",
		"lookalike":   "https://files.slack.com.evil.example/x.png",
		"http":        "http://files.slack.com/x.png",
		"none":        "",
	}
	for name, u := range refused {
		_, err := b.home.files.Fetch(context.Background(), attachment(slackapi.File{ID: "F2", Name: name + ".png", URLPrivateDownload: u}))
		if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), name+".png is not stored on Slack") {
			t.Errorf("%s (%s): %v, want it refused as not on Slack", name, u, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(offHost) != 0 {
		t.Errorf("another host got %d requests, with Authorization %q", len(offHost), offHost)
	}
}

// TestHostileNamesNeverBecomePaths sends attachments named like paths
// through the adapter, the engine and storage, and proves no file is named
// after them: storage names files by content hash, and the provider and the
// session see only a display name.
func TestHostileNamesNeverBecomePaths(t *testing.T) {
	h := newHarness(t, options{})
	names := map[string]string{"../../etc/passwd": "passwd", `a/b\c.png`: "c.png", "x.jpg": "x.jpg"}
	var files []slacktest.File
	for name := range names {
		files = append(files, h.fake.AddFile(ana, name, "image/jpeg", testPNG(len(files)+7)))
	}
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> combine these", Files: files})
	h.deliver(envs...)
	h.images(1)
	req := h.gen.Requests()[0]
	var got []string
	for _, in := range req.Inputs {
		if in.MIME != "image/png" {
			t.Errorf("input %q has type %s, want the sniffed image/png", in.Name, in.MIME)
		}
		got = append(got, in.Name)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "c.png,passwd,x.jpg" {
		t.Errorf("the provider got inputs named %q", got)
	}
	h.settle()
	dir := h.db.Dir()
	err := filepath.WalkDir(filepath.Dir(dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains([]string{"passwd", "etc", "c.png", "b", "a"}, d.Name()) {
			t.Errorf("%s is named after an attachment", path)
		}
		if rel, _ := filepath.Rel(dir, path); strings.HasPrefix(rel, "..") && !d.IsDir() {
			t.Errorf("%s was written outside the data dir", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
