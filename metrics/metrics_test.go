package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/metrics"
	"github.com/easel-bot/easel/metrics/metricstest"
)

// serve serves m's metrics for the test's length.
func serve(t *testing.T, m *metrics.Metrics) string {
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// load is an engine's load, fixed.
type load core.Load

func (l load) Load() core.Load { return core.Load(l) }

// TestEngineMetrics: what the engine reports comes out under Prometheus's
// names, types and labels, beside the Go and process collectors.
func TestEngineMetrics(t *testing.T) {
	m := metrics.New()
	m.WatchLoad(load{Queued: 3, Running: 2})
	m.TurnEnded(core.KindGenerate, core.StatusDone, "preview", time.Second)
	m.TurnEnded(core.KindGenerate, core.StatusDone, "preview", time.Second)
	m.TurnEnded("", core.StatusFailed, "", time.Second)
	m.ProviderCalled("preview", false, 2*time.Second)
	m.ProviderCalled("preview", true, time.Second)
	m.FirstPartial("preview", 300*time.Millisecond)
	m.AccessRefused(core.RefusedChannel)
	m.QuotaRefused(core.RefusedUserImagesDay)

	f := metricstest.Scrape(t, serve(t, m))
	checks := []struct {
		name, typ string
		labels    []string
		want      float64
	}{
		{"easel_turns_total", "counter", []string{"kind", "generate", "status", "done", "provider", "preview"}, 2},
		{"easel_turns_total", "counter", []string{"kind", "unknown", "status", "failed", "provider", "none"}, 1},
		{"easel_turn_duration_seconds", "histogram", []string{"provider", "preview", "status", "done"}, 2},
		{"easel_provider_duration_seconds", "histogram", []string{"provider", "preview", "outcome", "ok"}, 1},
		{"easel_provider_duration_seconds", "histogram", []string{"provider", "preview", "outcome", "error"}, 1},
		{"easel_provider_first_partial_seconds", "histogram", []string{"provider", "preview"}, 1},
		{"easel_access_refusals_total", "counter", []string{"reason", "channel"}, 1},
		{"easel_quota_refusals_total", "counter", []string{"reason", "user_images_per_day"}, 1},
		{"easel_turns_queued", "gauge", nil, 3},
		{"easel_turns_in_flight", "gauge", nil, 2},
	}
	for _, c := range checks {
		if typ := f.Type(c.name); typ != c.typ {
			t.Errorf("%s is a %q, want a %s", c.name, typ, c.typ)
		}
		if got := f.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if f[name] == nil {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
}

// TestTransport: every request to a platform's API is counted, with its
// failures, its 429s, its retries and the bytes it sent, and passes
// through unchanged.
func TestTransport(t *testing.T) {
	var limited atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chat.postMessage":
			if limited.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = w.Write(body)
		case "/broken":
			w.WriteHeader(http.StatusBadGateway)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		default:
			_, _ = w.Write(body)
		}
	}))
	defer api.Close()
	m := metrics.New()
	client := &http.Client{Transport: m.Transport("slack", nil)}
	post := func(path string, body io.Reader) int {
		t.Helper()
		resp, err := client.Post(api.URL+path, "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && len(got) == 0 {
			t.Errorf("%s: the body did not pass through", path)
		}
		return resp.StatusCode
	}
	post("/chat.postMessage", strings.NewReader("hello"))       // 429
	post("/chat.postMessage", strings.NewReader("hello"))       // its retry: 200
	post("/chat.postMessage", strings.NewReader("hello again")) // not a retry
	post("/files.upload", io.MultiReader(strings.NewReader("0123456789")))
	post("/broken", strings.NewReader("x"))
	post("/missing", strings.NewReader("y"))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if _, err := client.Get(dead.URL); err == nil {
		t.Fatal("a closed server answered")
	}

	f := metricstest.Scrape(t, serve(t, m))
	for name, want := range map[string]float64{
		"easel_platform_api_requests_total":     7,
		"easel_platform_api_rate_limited_total": 1,
		"easel_platform_api_retries_total":      1,
		"easel_platform_api_errors_total":       3, // 502, 404, no answer
		"easel_platform_uploaded_bytes_total":   float64(len("hello")*2 + len("hello again") + 10 + 2),
	} {
		if got := f.Value(name, "platform", "slack"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestPlatform: an adapter's acknowledgements, duplicates and replays are
// counted under its platform.
func TestPlatform(t *testing.T) {
	m := metrics.New()
	p := m.Platform("discord")
	p.Acked(40 * time.Millisecond)
	p.Duplicate()
	p.Replayed(3)
	f := metricstest.Scrape(t, serve(t, m))
	for name, want := range map[string]float64{
		"easel_platform_ack_duration_seconds": 1,
		"easel_inbox_duplicates_total":        1,
		"easel_inbox_replays_total":           3,
	} {
		if got := f.Value(name, "platform", "discord"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
