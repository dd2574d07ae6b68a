package discord

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/imagecheck"
)

// countingTransport counts the response body bytes read, per request path.
type countingTransport struct {
	mu   sync.Mutex
	read map[string]*atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
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

// testCDN returns the attachment fetcher of a bot whose api_url is on
// srv's host, so attachments are fetched from there, through a client that
// counts what it reads, with the default limits.
func testCDN(t *testing.T, srv *httptest.Server) (*imagecheck.Fetcher, *countingTransport) {
	t.Helper()
	api, err := url.Parse(srv.URL + "/api/")
	if err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{read: map[string]*atomic.Int64{}}
	return newFetcher(api, &http.Client{Transport: ct}, imagecheck.Limits{}), ct
}

// maxInputBytes is the default size limit of an attachment.
const maxInputBytes = imagecheck.DefaultMaxBytes

// TestCDNDownloadStopsAtTheCap serves attachments larger than they claim,
// claiming to be huge, or sending more than their Content-Length, and
// proves no download reads more than maxInputBytes+1 bytes.
func TestCDNDownloadStopsAtTheCap(t *testing.T) {
	const flood = 8 * maxInputBytes // what the server would send if the client kept reading
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/attachments/endless.png":
			stream(w, flood)
		case "/attachments/declared-huge.png":
			w.Header().Set("Content-Length", "1099511627776")
			stream(w, flood)
		case "/attachments/short-length.png":
			// Content-Length says 100 bytes; 8 MB follow on the connection.
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
			rw.Write(append(coretest.PNG(1), make([]byte, 8<<20)...))
			rw.Flush()
		}
	}))
	defer srv.Close()
	c, ct := testCDN(t, srv)
	cases := []struct {
		path     string
		want     string
		maxBytes int64
	}{
		{"/attachments/endless.png", "endless.png is larger than 20.0 MB", maxInputBytes + 1},
		{"/attachments/declared-huge.png", "declared-huge.png is 1048576.0 MB", 0},
		{"/attachments/short-length.png", "short-length.png is cut short", 100},
	}
	for _, tc := range cases {
		name := strings.TrimPrefix(tc.path, "/attachments/")
		_, err := c.Fetch(context.Background(), attachment(&discordgo.MessageAttachment{Filename: name, Size: 1000, URL: srv.URL + tc.path}))
		if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want Invalid saying %q", tc.path, err, tc.want)
		}
		n := ct.bytesRead(tc.path)
		if n > tc.maxBytes {
			t.Errorf("%s: read %d bytes, more than the %d allowed", tc.path, n, tc.maxBytes)
		}
		t.Logf("%s: read %d bytes of a response that would have sent up to %d (cap %d)", tc.path, n, flood, maxInputBytes)
	}
	if n := ct.bytesRead("/attachments/endless.png"); n != maxInputBytes+1 {
		t.Errorf("the endless download read %d bytes, want exactly the cap plus one (%d)", n, maxInputBytes+1)
	}
}

// stream writes zeros to w until total bytes are written or the client
// goes away.
func stream(w http.ResponseWriter, total int64) {
	chunk := make([]byte, 32<<10)
	for sent := int64(0); sent < total; {
		n, err := w.Write(chunk[:min(int64(len(chunk)), total-sent)])
		sent += int64(n)
		if err != nil {
			return
		}
	}
}

// TestCDNStaysOnDiscord proves attachments come only from Discord's CDN
// (or the configured API host), with no credentials: a redirect to another
// host (the same loopback address on another port) is refused before the
// hop, as are other hosts, look-alikes, plain http and URLs carrying
// credentials. The CDN is never sent an Authorization header.
func TestCDNStaysOnDiscord(t *testing.T) {
	var mu sync.Mutex
	var offHost, auth []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		offHost = append(offHost, r.URL.Path)
		mu.Unlock()
		w.Write(coretest.PNG(2))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.URL.Path {
		case "/attachments/away.png":
			http.Redirect(w, r, other.URL+"/stolen.png", http.StatusFound)
		case "/attachments/hop.png":
			http.Redirect(w, r, "/attachments/logo.png", http.StatusFound)
		case "/attachments/logo.png":
			w.Write(coretest.PNG(1))
		}
	}))
	defer srv.Close()
	c, _ := testCDN(t, srv)

	img, err := c.Fetch(context.Background(), attachment(&discordgo.MessageAttachment{Filename: "../../etc/passwd", URL: srv.URL + "/attachments/hop.png"}))
	if err != nil || img.MIME != "image/png" || img.Name != "passwd" {
		t.Fatalf("a redirect within the API host: %q, %v", img.Name, err)
	}
	refused := map[string]string{
		"redirected":  srv.URL + "/attachments/away.png",
		"elsewhere":   other.URL + "/evil.png",
		"credentials": strings.Replace(srv.URL, "http://", "http://user:pass@", 1) + "/attachments/logo.png",
		"lookalike":   "https://cdn.discordapp.com.evil.example/x.png",
		"http":        "http://cdn.discordapp.com/x.png",
		"none":        "",
	}
	for name, u := range refused {
		_, err := c.Fetch(context.Background(), attachment(&discordgo.MessageAttachment{Filename: name + ".png", URL: u}))
		if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), name+".png is not stored on Discord") {
			t.Errorf("%s (%s): %v, want it refused as off the CDN", name, u, err)
		}
	}
	if _, err := c.Fetch(context.Background(), attachment(nil)); core.KindOf(err) != core.Invalid {
		t.Errorf("a missing attachment: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(offHost) != 0 {
		t.Errorf("another host was asked for %q", offHost)
	}
	for _, a := range auth {
		if a != "" {
			t.Errorf("the CDN was sent Authorization %q", a)
		}
	}
	def, _ := url.Parse(DefaultAPIURL)
	allowed := attachmentHosts(def)
	for u, want := range map[string]bool{
		"https://cdn.discordapp.com/attachments/1/2/a.png":   true,
		"https://media.discordapp.net/attachments/1/2/a.png": true,
		"https://discord.com/api/attachments/a.png":          false,
		"https://CDN.discordapp.com.evil.example/a.png":      false,
		"https://u@cdn.discordapp.com/a.png":                 false,
	} {
		pu, _ := url.Parse(u)
		if allowed(pu) && pu.User == nil != want {
			t.Errorf("allowed(%s) = %v, want %v", u, !want, want)
		}
	}
}
