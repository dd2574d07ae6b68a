package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/storage"
)

var full = flag.Bool("full", false, "run the full-size load figures (minutes) instead of the reduced CI form")

// pick returns small in the reduced form and big with -full.
func pick[T any](small, big T) T {
	if *full {
		return big
	}
	return small
}

// makePNG returns a valid, incompressible PNG of about size bytes (1024
// pixels wide, random RGBA, stored without compression).
func makePNG(size int) []byte {
	w := 1024
	h := max(1, size/(w*4+1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = byte(r.Uint32())
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

var (
	png2MBOnce sync.Once
	png2MB     []byte
)

// image2MB is the shared 2 MB PNG.
func image2MB() []byte {
	png2MBOnce.Do(func() { png2MB = makePNG(2 << 20) })
	return png2MB
}

var jobRe = regexp.MustCompile(`job (\d+)`)

// jobOf extracts the job number the harness put in a prompt ("bench job 17").
func jobOf(s string) int {
	m := jobRe.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// stamps records one timestamp per job number.
type stamps struct {
	mu sync.Mutex
	at map[int]time.Time
}

func (s *stamps) set(job int, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[int]time.Time{}
	}
	if _, ok := s.at[job]; !ok {
		s.at[job] = t
	}
}

func (s *stamps) get(job int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[job]
	return t, ok
}

// sleepGen is a core.Generator that waits latency (or until ctx ends) and
// returns a copy of img, recording when each job's request arrived and its
// answer was ready, and the most calls in flight at once.
type sleepGen struct {
	latency  time.Duration
	img      []byte
	sent     stamps
	answered stamps
	inFlight atomic.Int64
	peak     atomic.Int64
	calls    atomic.Int64
}

func (g *sleepGen) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	job := jobOf(req.Prompt)
	g.sent.set(job, time.Now())
	g.calls.Add(1)
	n := g.inFlight.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer g.inFlight.Add(-1)
	select {
	case <-time.After(g.latency):
	case <-ctx.Done():
		return core.Result{}, ctx.Err()
	}
	data := bytes.Clone(g.img) // a provider hands over fresh bytes per call
	g.answered.set(job, time.Now())
	return core.Result{Model: "sleep-1", Images: []core.Image{{Data: data, MIME: "image/png"}}, Attempts: 1}, nil
}

// fakeOpenAI is a minimal loopback OpenAI Images API: POST
// /images/generations answers, after latency, with one pre-encoded PNG as
// b64_json. The response body is built once and shared, so the fake itself
// adds no per-request heap beyond net/http's buffers. It records when each
// job's request arrived and when its response was completely written.
type fakeOpenAI struct {
	srv      *httptest.Server
	latency  time.Duration
	body     []byte
	received stamps
	written  stamps
	requests atomic.Int64
}

func newFakeOpenAI(t testing.TB, latency time.Duration, img []byte) *fakeOpenAI {
	body, err := json.Marshal(map[string]any{
		"created":       time.Now().Unix(),
		"output_format": "png",
		"data":          []map[string]any{{"b64_json": base64.StdEncoding.EncodeToString(img)}},
		"usage": map[string]any{
			"input_tokens": 20, "output_tokens": 4160, "total_tokens": 4180,
			"input_tokens_details": map[string]any{"text_tokens": 20, "image_tokens": 0},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOpenAI{latency: latency, body: body}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	f.requests.Add(1)
	var req struct {
		Prompt string `json:"prompt"`
	}
	if r.URL.Path != "/v1/images/generations" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":{"message":"unexpected request","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	job := jobOf(req.Prompt)
	f.received.set(job, arrived)
	select {
	case <-time.After(f.latency):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	_, _ = w.Write(f.body)
	http.NewResponseController(w).Flush()
	f.written.set(job, time.Now())
}

// generator returns the real OpenAI provider pointed at the fake.
func (f *fakeOpenAI) generator(t testing.TB) core.Generator {
	cfg := openai.DefaultConfig()
	cfg.APIKey, cfg.BaseURL = "sk-bench", f.srv.URL+"/v1"
	cfg.Timeout = time.Minute
	cfg.Stream, cfg.PartialImages = false, 0
	g, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// uploadWatch is an http.RoundTripper that records, per channel, when a
// files.completeUploadExternal call came back: the end of an upload.
type uploadWatch struct {
	base http.RoundTripper
	done stamps // keyed by job number, parsed from channel "C<n>"
}

func (u *uploadWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	var channel string
	if r.Method == http.MethodPost && r.Body != nil && len(r.URL.Path) > 0 && pathIs(r.URL.Path, "files.completeUploadExternal") {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if v, err := url.ParseQuery(string(body)); err == nil {
			channel = v.Get("channel_id")
		}
	}
	resp, err := u.base.RoundTrip(r)
	if err == nil && channel != "" {
		if n, err := strconv.Atoi(channel[1:]); err == nil {
			// Read the body so "complete" means the reply arrived.
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(b))
			u.done.set(n, time.Now())
		}
	}
	return resp, err
}

func pathIs(p, method string) bool { return len(p) >= len(method) && p[len(p)-len(method):] == method }

// recEngine wraps the engine the Slack adapter drives, keeping Handle's
// results.
type recEngine struct {
	*core.Engine
	mu     sync.Mutex
	queued []core.Queued
	errs   []error
}

func (r *recEngine) Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error) {
	q, err := r.Engine.Handle(ctx, th, msg)
	r.mu.Lock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.queued = append(r.queued, q)
	}
	r.mu.Unlock()
	return q, err
}

func (r *recEngine) results() ([]core.Queued, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.queued), slices.Clone(r.errs)
}

// stack is Easel as cmd/easel wires it for Slack: the Slack adapter in
// Socket Mode, the engine and the bbolt store, against the Slack fake and a
// provider.
type stack struct {
	t      testing.TB
	fake   *slacktest.Server
	db     *storage.DB
	engine *recEngine
	bot    *slack.Bot
	watch  *uploadWatch
	stop   func()
	// closeIdle drops the adapter's idle keep-alive connections.
	closeIdle func()
}

func newStack(t testing.TB, ecfg core.EngineConfig, gen core.Generator) *stack {
	t.Helper()
	fake := slacktest.NewServer(t)
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ecfg.DefaultProvider = "bench"
	ecfg.Limits = core.Limits{MaxN: 4, MaxPromptChars: 4000}
	ecfg.TurnTimeout = 5 * time.Minute
	eng, err := core.NewEngine(ecfg, db, coretest.ImageDir(t, ""), map[string]core.Generator{"bench": gen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, fake: fake, db: db, engine: &recEngine{Engine: eng}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	s.watch = &uploadWatch{base: tr}
	s.closeIdle = tr.CloseIdleConnections
	cfg := slack.Config{
		BotToken: fake.BotToken, AppToken: fake.AppToken, APIURL: fake.APIURL(),
		HTTPClient: &http.Client{Timeout: 2 * time.Minute, Transport: s.watch},
	}
	if s.bot, err = slack.New(cfg, s.engine, db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.bot.Run(ctx) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("slack Run: %v", err)
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ccancel()
			_ = eng.Close(cctx) // in ack runs turns are still queued: abandoned on purpose
			if err := db.Close(); err != nil {
				t.Errorf("db close: %v", err)
			}
			tr.CloseIdleConnections()
		})
	}
	t.Cleanup(s.stop)
	fake.Connected(t)
	return s
}

// command is one slash command of job n, by its own user in its own channel
// (so every job is a session of its own and per-user limits do not apply).
func (s *stack) command(n int) slacktest.Envelope {
	return s.fake.SlashCommand(fmt.Sprintf("U%06d", n), fmt.Sprintf("C%06d", n), fmt.Sprintf("bench job %d", n))
}

// burst sends jobs [from, from+n) at once and returns their ack latencies
// as the fake measured them (envelope written → ack read).
func (s *stack) burst(from, n int) []time.Duration {
	s.t.Helper()
	envs := make([]slacktest.Envelope, n)
	for i := range n {
		envs[i] = s.command(from + i)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ids[i] = s.fake.Send(s.t, envs[i])
		})
	}
	close(start)
	wg.Wait()
	lat := make([]time.Duration, n)
	for i, id := range ids {
		lat[i] = s.fake.WaitAck(s.t, id).Latency
	}
	return lat
}

// completed counts finished result uploads (titled v1, v2…).
func (s *stack) completed() int {
	n := 0
	for _, u := range s.fake.Uploads() {
		if u.Completed && len(u.Title) > 1 && u.Title[0] == 'v' {
			n++
		}
	}
	return n
}

// waitUntil polls cond every 20 ms until it holds or limit passes.
func waitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, max(0, (len(sorted)*p+99)/100-1))]
}

// summary sorts d and formats its p50, p99 and max.
func summary(d []time.Duration) (p50, p99, mx time.Duration) {
	slices.Sort(d)
	return percentile(d, 50), percentile(d, 99), d[len(d)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// openFDs counts this process's open file descriptors.
func openFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

// settleResources waits up to limit for goroutines and fds to come down to
// at most the baseline plus slack, and returns the final counts.
func settleResources(limit time.Duration, g0, f0, slack int) (g, f int) {
	waitUntil(limit, func() bool {
		runtime.GC()
		g, f = runtime.NumGoroutine(), openFDs()
		return g <= g0+slack && f <= f0+slack
	})
	return runtime.NumGoroutine(), openFDs()
}
