package responses

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

// testKey is the API key of the tests; no error text or log line may
// contain it.
const testKey = "sk-test-cmVzcG9uc2VzLWtleS1zZWNyZXQ"

// waits records the retry waits a Generator asked for, without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// newTestGenerator returns a fake server and a Generator talking to it
// with fast retries and no streaming; edit adjusts the Config first.
func newTestGenerator(t *testing.T, edit func(*Config)) (*openaitest.Server, *Generator, *waits) {
	t.Helper()
	srv := openaitest.NewServer(t)
	srv.Key = testKey
	srv.StallLimit = 10 * time.Second
	cfg := Config{
		APIKey:         testKey,
		BaseURL:        srv.URL(),
		Store:          true,
		Timeout:        5 * time.Second,
		MaxRetries:     3,
		Moderation:     "low",
		RetryBaseDelay: time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w := &waits{}
	g.sleep = w.sleep
	return srv, g, w
}

// testWriter sends log output to t.Log and fails the test if the API key
// is ever logged.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	if bytes.Contains(p, []byte(testKey)) {
		w.t.Errorf("API key logged: %s", p)
	}
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// pngImage returns a small valid PNG that differs with seed.
func pngImage(t *testing.T, seed byte) core.Image {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = seed + byte(i)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return core.Image{Data: buf.Bytes(), MIME: "image/png"}
}

// wantKind fails the test unless err is a *core.Error of kind whose text,
// and that of every error it wraps, lacks the API key.
func wantKind(t *testing.T, err error, kind core.ErrorKind) *core.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", kind)
	}
	if got := core.KindOf(err); got != kind {
		t.Fatalf("error kind = %s, want %s (error: %v)", got, kind, err)
	}
	ce, _ := err.(*core.Error)
	if ce == nil {
		t.Fatalf("error is %T, want *core.Error", err)
	}
	for e := err; e != nil; {
		if s := e.Error(); strings.Contains(s, testKey) || strings.Contains(s, testKey[len(testKey)-4:]) {
			t.Errorf("error text contains the API key: %q", s)
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return ce
}

// attempts records the attempt numbers reported through req.Attempt.
type attempts struct {
	mu sync.Mutex
	n  []int
}

func (a *attempts) report(n int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n = append(a.n, n)
	return nil
}

func (a *attempts) all() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.n...)
}
