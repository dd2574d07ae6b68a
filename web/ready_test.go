package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/metrics"
	"github.com/easel-bot/easel/metrics/metricstest"
	"github.com/easel-bot/easel/web"
)

// get requests url with method and returns the status and body.
func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// switchable is a check that fails with err while it is set.
type switchable struct {
	mu  sync.Mutex
	err error
}

func (s *switchable) set(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }

func (s *switchable) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// TestReadyz: 200 while every check passes, 503 while one fails, each
// check listed with its outcome, and never cached.
func TestReadyz(t *testing.T) {
	srv := web.New("", slog.New(slog.DiscardHandler))
	slack := &switchable{}
	srv.AddCheck("store", web.CheckFunc(func(context.Context) error { return nil }))
	srv.AddCheck("slack", slack)
	url := serve(t, srv)

	status, h, body := get(t, "GET", url+"/readyz")
	if status != http.StatusOK || body != "[+]store ok\n[+]slack ok\nreadyz check passed\n" {
		t.Errorf("ready: %d %q", status, body)
	}
	if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("headers %v", h)
	}
	slack.set(errors.New("not connected over Socket Mode"))
	for _, path := range []string{"/readyz", "/readyz?verbose", "/readyz?verbose=1"} {
		status, _, body = get(t, "GET", url+path)
		if status != http.StatusServiceUnavailable || body != "[+]store ok\n[-]slack failed: not connected over Socket Mode\nreadyz check failed\n" {
			t.Errorf("GET %s with slack down: %d %q", path, status, body)
		}
	}
	slack.set(nil)
	if status, _, _ = get(t, "GET", url+"/readyz"); status != http.StatusOK {
		t.Errorf("ready again: %d", status)
	}
	if status, _, body = get(t, "HEAD", url+"/readyz"); status != http.StatusOK || body != "" {
		t.Errorf("HEAD /readyz: %d %q", status, body)
	}
}

// TestReadyzNoChecks: a server with no checks is ready.
func TestReadyzNoChecks(t *testing.T) {
	url := serve(t, web.New("", slog.New(slog.DiscardHandler)))
	if status, _, body := get(t, "GET", url+"/readyz"); status != http.StatusOK || body != "readyz check passed\n" {
		t.Errorf("%d %q", status, body)
	}
}

// TestReadyzSlowCheck: a check that does not answer within its time fails,
// and the answer does not wait for it.
func TestReadyzSlowCheck(t *testing.T) {
	srv := web.New("", slog.New(slog.DiscardHandler))
	stuck := make(chan struct{})
	defer close(stuck)
	srv.AddCheck("store", web.CheckFunc(func(context.Context) error {
		<-stuck // ignores ctx, as a hung driver might
		return nil
	}))
	url := serve(t, srv)
	start := time.Now()
	status, _, body := get(t, "GET", url+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "[-]store failed: no answer within 2s") {
		t.Errorf("%d %q", status, body)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("answered after %s", d)
	}
}

// TestReadyzReasonIsOneLine: a reason with line breaks, terminal escapes
// or no end is shown on one line, escaped and cut short.
func TestReadyzReasonIsOneLine(t *testing.T) {
	srv := web.New("", slog.New(slog.DiscardHandler))
	srv.AddCheck("a", web.CheckFunc(func(context.Context) error {
		return errors.New("bad\n[+]b ok\x1b[2J\r" + strings.Repeat("x", 10000))
	}))
	url := serve(t, srv)
	_, _, body := get(t, "GET", url+"/readyz")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 2 || strings.ContainsAny(body, "\x1b\r") || len(lines[0]) > 300 {
		t.Errorf("body %q", body)
	}
	if !strings.HasPrefix(lines[0], `[-]a failed: bad\x0a[+]b ok\x1b[2J\x0d`) {
		t.Errorf("reason %q", lines[0])
	}
}

// TestReadyzFlood: many probes at once are all answered, and share
// rounds of checks instead of running one each.
func TestReadyzFlood(t *testing.T) {
	srv := web.New("", slog.New(slog.DiscardHandler))
	var runs atomic.Int32
	srv.AddCheck("store", web.CheckFunc(func(context.Context) error {
		runs.Add(1)
		time.Sleep(50 * time.Millisecond)
		return nil
	}))
	url := serve(t, srv)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	const n = 300
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range n {
		wg.Go(func() {
			resp, err := client.Get(url + "/readyz")
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d probes failed", f, n)
	}
	if r := runs.Load(); r >= n/4 {
		t.Errorf("%d rounds of checks for %d probes, want them shared", r, n)
	}
}

// TestOpsEndpointsHostileInput: odd methods, huge and hostile query
// strings and floods get a clear answer from the operations endpoints, and
// nothing of the request is echoed back.
func TestOpsEndpointsHostileInput(t *testing.T) {
	srv := web.New("", slog.New(slog.DiscardHandler))
	srv.AddCheck("store", web.CheckFunc(func(context.Context) error { return nil }))
	m := metrics.New()
	srv.Handle("GET /metrics", m.Handler())
	url := serve(t, srv)

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW"} {
			status, _, body := get(t, method, url+path)
			if status != http.StatusMethodNotAllowed && !(method == "CONNECT" && status == http.StatusBadRequest) {
				t.Errorf("%s %s: %d %q, want 405", method, path, status, body)
			}
		}
		for _, query := range []string{
			"?verbose=%1b%5b2J%1b%5d0%3bpwned%07",
			"?%00%ff%fe=%0d%0aSet-Cookie:%20a=b",
			"?" + strings.Repeat("a=b&", 1000),
			"?exclude=store&exclude=../../etc/passwd",
			"?name[]=%3Cscript%3E",
		} {
			status, h, body := get(t, "GET", url+path+query)
			if status != http.StatusOK || strings.ContainsAny(body, "\x1b\x00") || strings.Contains(body, "pwned") ||
				strings.Contains(body, "<script>") || h.Get("Set-Cookie") != "" {
				t.Errorf("GET %s%.40s: %d %.100q", path, query, status, body)
			}
		}
		huge := url + path + "?q=" + strings.Repeat("%41", 100_000)
		if status, _, _ := get(t, "GET", huge); status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("GET %s with a 300 KB query: %d, want 431", path, status)
		}
	}

	// A raw request line with escapes and bad bytes is refused, and the
	// server goes on serving.
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /readyz?\x1b[2J\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
	reply, _ := io.ReadAll(io.LimitReader(conn, 1<<10))
	conn.Close()
	if !strings.HasPrefix(string(reply), "HTTP/1.1 400") {
		t.Errorf("a request line with control bytes: %q", reply)
	}

	// A flood of scrapes: each answered, with the metrics or with 503
	// beyond the scrapes served at once, never an error.
	var wg sync.WaitGroup
	var ok, busy, other atomic.Int32
	for range 100 {
		wg.Go(func() {
			resp, err := http.Get(url + "/metrics")
			if err != nil {
				other.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusServiceUnavailable:
				busy.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() == 0 || other.Load() != 0 {
		t.Errorf("flood of scrapes: %d ok, %d busy, %d other", ok.Load(), busy.Load(), other.Load())
	}
	metricstest.Scrape(t, url+"/metrics") // and it still parses
}
