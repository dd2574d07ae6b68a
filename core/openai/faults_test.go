package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

func generate(g *Generator) (core.Result, error) {
	return g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
}

// probe watches one Generate call from both ends: the attempts reported
// through req.Attempt and the requests the fake received, each recording
// what the other side had done at that moment, and the retry waits.
type probe struct {
	srv *openaitest.Server

	mu        sync.Mutex
	reported  []int           // attempt numbers passed to req.Attempt, in order
	sentThen  []int           // requests the fake had received when each attempt was reported
	knownThen []int           // attempts reported when each request arrived at the fake
	arrived   []time.Time     // when each request arrived
	waits     []time.Duration // retry waits asked for (and really slept)
}

// newProbe installs a probe on srv and g. g sleeps for real.
func newProbe(srv *openaitest.Server, g *Generator) *probe {
	p := &probe{srv: srv}
	srv.OnArrive = func(int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.knownThen = append(p.knownThen, len(p.reported))
		p.arrived = append(p.arrived, time.Now())
	}
	g.sleep = func(ctx context.Context, d time.Duration) error {
		p.mu.Lock()
		p.waits = append(p.waits, d)
		p.mu.Unlock()
		return wire.Sleep(ctx, d)
	}
	return p
}

// attempt is a req.Attempt that records the attempt.
func (p *probe) attempt(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reported = append(p.reported, n)
	p.sentThen = append(p.sentThen, p.srv.Arrivals())
	return nil
}

// check fails the test unless exactly n requests were sent, each reported
// through req.Attempt (numbered from 1) before the fake received it, and
// res says n attempts.
func (p *probe) check(t *testing.T, n int, res core.Result) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := p.srv.Arrivals(); got != n || len(p.srv.Requests()) != n {
		t.Errorf("the fake received %d requests (%d answered), want %d", got, len(p.srv.Requests()), n)
	}
	if len(p.reported) != n || res.Attempts != n {
		t.Errorf("%d attempts reported %v, Result.Attempts %d; want %d", len(p.reported), p.reported, res.Attempts, n)
	}
	for i, a := range p.reported {
		if a != i+1 {
			t.Errorf("attempt %d reported as %d", i+1, a)
		}
		if p.sentThen[i] != i {
			t.Errorf("attempt %d reported when the fake had already received %d requests, want %d", i+1, p.sentThen[i], i)
		}
	}
	for i, k := range p.knownThen {
		if k != i+1 {
			t.Errorf("request %d reached the fake when %d attempts had been reported, want %d (reported before sending)", i+1, k, i+1)
		}
	}
	if len(p.waits) != max(n-1, 0) {
		t.Errorf("%d retry waits %v for %d requests", len(p.waits), p.waits, n)
	}
}

// matrixConfig is the Generator config of TestFaultMatrix for fault tc:
// small retry delays and a per-attempt timeout that a stall must wait out,
// so short (2s) only for the stall faults. It is still some 100 times what a
// loopback request takes, for the attempt that follows a stall.
func matrixConfig(c *Config, tc faultCase) {
	c.Timeout = 30 * time.Second
	if tc.stalls {
		c.Timeout = 2 * time.Second
	}
	c.MaxRetries = 2
	c.RetryBaseDelay = 5 * time.Millisecond
	c.RetryMaxDelay = 500 * time.Millisecond
	c.PartialImages = 1
}

// bound returns how long Generate may take for tc with n requests under
// cfg: every stall waits out the timeout, every retry waits at most
// RetryMaxDelay; the rest takes milliseconds, for which a slow machine gets
// five seconds.
func (tc faultCase) bound(cfg Config, n int) time.Duration {
	d := time.Duration(n-1)*cfg.RetryMaxDelay + 5*time.Second
	if tc.stalls {
		d += time.Duration(n) * cfg.Timeout
	}
	return d
}

// matrixRetryAfter is what the rate-limited fake asks to wait.
const matrixRetryAfter = 250 * time.Millisecond

// faultCase is one row of TestFaultMatrix.
type faultCase struct {
	name    string
	fault   openaitest.Fault
	modes   []bool // stream settings the fault applies to
	class   string // faults of one class share a message; classes never do
	kind    core.ErrorKind
	message string
	retried bool
	stalls  bool          // the fault makes the client wait out its timeout
	minGap  time.Duration // the least time between two requests (Retry-After)
}

var (
	bothModes  = []bool{false, true}
	streamOnly = []bool{true}
)

// faultCases are the faults of the provider fault matrix (RELIABILITY.md,
// "Provider fault matrix").
var faultCases = []faultCase{
	{name: "429 rate limit with Retry-After", fault: openaitest.RateLimited(matrixRetryAfter), modes: bothModes,
		class: "rate limit", kind: core.RateLimited, message: wire.MsgRateLimited, retried: true, minGap: matrixRetryAfter},
	{name: "429 Retry-After beyond the cap", fault: openaitest.Fault{Kind: openaitest.FaultRateLimit, RetryAfter: "120"}, modes: bothModes,
		class: "rate limit", kind: core.RateLimited, message: wire.MsgRateLimited},
	{name: "429 insufficient_quota", fault: openaitest.InsufficientQuota(), modes: bothModes,
		class: "quota", kind: core.Quota, message: wire.MsgQuota},
	{name: "400 moderation_blocked", fault: openaitest.ModerationBlocked(), modes: bothModes,
		class: "refused", kind: core.Refused, message: wire.MsgRefused},
	{name: "moderation_blocked mid-stream", fault: openaitest.Fault{Kind: openaitest.FaultStreamError, Type: "image_generation_user_error",
		Code: "moderation_blocked", Message: "Your request was rejected by the safety system."}, modes: streamOnly,
		class: "refused", kind: core.Refused, message: wire.MsgRefused},
	{name: "500", fault: openaitest.ServerError(500), modes: bothModes,
		class: "server error", kind: core.Unavailable, message: "OpenAI is having trouble (HTTP 500); try again later.", retried: true},
	{name: "503", fault: openaitest.ServerError(503), modes: bothModes,
		class: "server error", kind: core.Unavailable, message: "OpenAI is having trouble (HTTP 503); try again later.", retried: true},
	{name: "connection reset", fault: openaitest.ConnectionReset(), modes: bothModes,
		class: "connection", kind: core.Unavailable, message: wire.MsgConnection, retried: true},
	{name: "stall before the headers", fault: openaitest.Stall(), modes: bothModes,
		class: "timeout", kind: core.Unavailable, message: "OpenAI did not answer in time (timed out after 2s); try again later.", retried: true, stalls: true},
	{name: "stall mid-body", fault: openaitest.StallBody(), modes: bothModes,
		class: "timeout", kind: core.Unavailable, message: "OpenAI did not answer in time (timed out after 2s); try again later.", retried: true, stalls: true},
	{name: "truncated body", fault: openaitest.Truncated(), modes: bothModes,
		class: "truncated", kind: core.Unavailable, message: wire.MsgTruncated, retried: true},
	{name: "error event mid-stream", fault: openaitest.StreamError(), modes: streamOnly,
		class: "stream error", kind: core.Unavailable, message: wire.MsgStreamError, retried: true},
}

// TestFaultMatrix drives every fault of the matrix through the SDK into the
// fake, streaming and not, once and persistently, and checks: the requests
// the fake received; that each was reported through req.Attempt before it
// was sent; that only transient faults are retried, at most MaxRetries times,
// never sooner than Retry-After and never waiting more than RetryMaxDelay;
// the error kind and the user's message; and that Generate ends within
// stalls·Timeout + retries·RetryMaxDelay (plus a margin for a slow machine).
func TestFaultMatrix(t *testing.T) {
	for _, tc := range faultCases {
		var cfg Config
		matrixConfig(&cfg, tc)
		maxAttempts := 1 + cfg.MaxRetries
		for _, stream := range tc.modes {
			for _, persistent := range []bool{true, false} {
				name := fmt.Sprintf("%s/stream=%v/once", tc.name, stream)
				if persistent {
					name = fmt.Sprintf("%s/stream=%v/always", tc.name, stream)
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					srv, g, _ := newTestGenerator(t, func(c *Config) { matrixConfig(c, tc); c.Stream = stream })
					p := newProbe(srv, g)
					if persistent {
						for range 2 * maxAttempts { // more than enough: retries must stop on their own
							srv.Fail(tc.fault)
						}
					} else {
						srv.Fail(tc.fault)
					}

					start := time.Now()
					res, err := g.Generate(context.Background(), core.GenerateRequest{
						Kind: core.KindGenerate, Prompt: "a fox", N: 1, Attempt: p.attempt,
					})
					elapsed := time.Since(start)

					want := 1
					switch {
					case tc.retried && persistent:
						want = maxAttempts
					case tc.retried:
						want = 2
					}
					p.check(t, want, res)
					if tc.retried && !persistent {
						if err != nil {
							t.Fatalf("Generate after one transient fault: %v", err)
						}
						if len(res.Images) != 1 || !bytes.Equal(res.Images[0].Data, srv.Images()[0]) {
							t.Error("the result is not the image the fake returned")
						}
					} else {
						ce := wantKind(t, err, tc.kind)
						if ce.Message != tc.message {
							t.Errorf("message = %q, want %q", ce.Message, tc.message)
						}
						if ce.Err == nil {
							t.Error("no underlying error kept for the logs")
						}
					}
					for i, w := range p.waits {
						if w > cfg.RetryMaxDelay {
							t.Errorf("retry wait %d was %v, above the cap %v", i+1, w, cfg.RetryMaxDelay)
						}
						if w < tc.minGap {
							t.Errorf("retry wait %d was %v, shorter than the Retry-After %v", i+1, w, tc.minGap)
						}
					}
					for i := 1; i < len(p.arrived); i++ {
						if gap := p.arrived[i].Sub(p.arrived[i-1]); gap < tc.minGap {
							t.Errorf("request %d came %v after the previous one, before its Retry-After %v", i+1, gap, tc.minGap)
						}
					}
					if bound := tc.bound(cfg, want); elapsed > bound {
						t.Errorf("Generate took %v, beyond its bound %v", elapsed, bound)
					}
					outcome := "failed: " + fmt.Sprint(core.KindOf(err))
					if err == nil {
						outcome = "done"
					}
					t.Logf("matrix: %s | %s | %d requests | waits %v | %v", name, outcome, srv.Arrivals(), p.waits, elapsed.Round(time.Millisecond))
				})
			}
		}
	}
}

// TestFaultMessagesDistinct checks that each class of fault has a message of
// its own, so a user can tell a refusal from an outage from a spent budget.
func TestFaultMessagesDistinct(t *testing.T) {
	class := map[string]string{} // message → class
	for _, tc := range faultCases {
		if c, ok := class[tc.message]; ok && c != tc.class {
			t.Errorf("%q is the message of both %s and %s", tc.message, c, tc.class)
		}
		class[tc.message] = tc.class
	}
	if len(class) < 8 {
		t.Errorf("only %d distinct messages for %d faults", len(class), len(faultCases))
	}
}

// TestAttemptErrorStopsTheCall checks that a request whose attempt cannot be
// reported is not sent, on the first attempt or on a retry, and that
// Generate returns the reporting error itself.
func TestAttemptErrorStopsTheCall(t *testing.T) {
	errNotRecorded := errors.New("the store refused to record the attempt")
	for _, tc := range []struct {
		name     string
		failOn   int  // the attempt whose report fails
		edit     bool // an edit (multipart) rather than a generation
		wantSent int
	}{
		{"first attempt of a generation", 1, false, 0},
		{"first attempt of an edit", 1, true, 0},
		{"retry after a 503", 2, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g, w := newTestGenerator(t, nil)
			srv.Fail(openaitest.ServerError(503))
			var calls []int
			req := core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1,
				Attempt: func(n int) error {
					calls = append(calls, n)
					if n == tc.failOn {
						return errNotRecorded
					}
					return nil
				}}
			if tc.edit {
				base := pngImage(t, 1)
				req.Kind, req.Base, req.History = core.KindRefine, &base, []string{"a fox"}
			}
			res, err := g.Generate(context.Background(), req)
			if err != errNotRecorded { // the very error, not wrapped
				t.Errorf("Generate returned %v, want the Attempt error itself", err)
			}
			if n := srv.Arrivals(); n != tc.wantSent || res.Attempts != tc.wantSent {
				t.Errorf("the fake received %d requests, Result.Attempts %d; want %d", n, res.Attempts, tc.wantSent)
			}
			if len(calls) != tc.failOn {
				t.Errorf("Attempt called with %v", calls)
			}
			if len(w.all()) != tc.failOn-1 {
				t.Errorf("waits %v", w.all())
			}
		})
	}
}

// TestCancelledBeforeStart checks that a caller who has already given up
// gets no attempt reported and no request sent.
func TestCancelledBeforeStart(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	p := newProbe(srv, g)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := g.Generate(ctx, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1, Attempt: p.attempt})
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != wire.MsgCancelled || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want a cancellation", err)
	}
	p.check(t, 0, res)
}

// TestBackoffJitteredInGenerate checks that the waits Generate really uses
// between retries are jittered (the first retry's wait differs across runs)
// and capped, with OpenAI asking for no particular wait.
func TestBackoffJitteredInGenerate(t *testing.T) {
	const runs = 8
	firsts := map[time.Duration]bool{}
	for range runs {
		srv, g, w := newTestGenerator(t, func(c *Config) {
			c.MaxRetries, c.RetryBaseDelay, c.RetryMaxDelay = 4, time.Second, 3*time.Second
		})
		g.rnd = wire.RandInt64N // the real source, as New sets it
		srv.Fail(openaitest.ServerError(500), openaitest.ServerError(500), openaitest.ServerError(500), openaitest.ServerError(500))
		if _, err := generate(g); err != nil {
			t.Fatal(err)
		}
		waits := w.all()
		if len(waits) != 4 {
			t.Fatalf("waits %v, want 4", waits)
		}
		for i, d := range waits {
			if bound := min(time.Second<<i, 3*time.Second); d < 0 || d > bound {
				t.Errorf("retry %d waited %v, outside [0, %v]", i+1, d, bound)
			}
		}
		firsts[waits[0]] = true
	}
	if len(firsts) < 2 {
		t.Errorf("the first retry waited the same %v in all %d runs: no jitter", firsts, runs)
	}
}

// TestGenerateBoundedByContext checks that a stalled request ends when the
// caller's deadline passes even though the per-attempt timeout is longer,
// with a message saying so, and that nothing is retried past the deadline.
func TestGenerateBoundedByContext(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Timeout = time.Minute })
	p := newProbe(srv, g)
	srv.Fail(openaitest.Stall(), openaitest.Stall())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := g.Generate(ctx, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1, Attempt: p.attempt})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Generate took %v with a 300ms deadline", d)
	}
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != "OpenAI did not finish before Easel's deadline; try again later." || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v", err)
	}
	p.check(t, 1, res)
}

// TestFaultsNotRetried checks the other failures (beyond TestFaultMatrix's
// refusals and quota) that must never be retried: the fake sees exactly one
// request.
func TestFaultsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   openaitest.Fault
		kind    core.ErrorKind
		message string
	}{
		{"unauthorized", openaitest.Unauthorized(), core.Unavailable, wire.MsgBadKey},
		{"forbidden", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 403, Type: "invalid_request_error", Message: "Project does not have access to model gpt-image-2"}, core.Unavailable, wire.MsgBadKey},
		{"unverified", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 403, Type: "invalid_request_error", Message: "Your organization must be verified to use the model `gpt-image-2`."}, core.Unavailable, wire.MsgForbidden},
		{"user error with safety wording", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 400, Type: "image_generation_user_error", Message: "Your request was rejected as a result of our safety system."}, core.Refused, wire.MsgRefused},
		{"user error about the image", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 400, Type: "image_generation_user_error", Message: "Invalid image file or mode for image 1."}, core.Invalid, "OpenAI could not serve this request: Invalid image file or mode for image 1."},
		{"billing limit", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 400, Type: "invalid_request_error", Code: "billing_hard_limit_reached", Message: "Billing hard limit has been reached"}, core.Quota, wire.MsgQuota},
		{"not implemented", openaitest.ServerError(501), core.Unavailable, "OpenAI is having trouble (HTTP 501); try again later."},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				srv, g, w := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = stream, 2 })
				srv.Fail(tc.fault)
				res, err := generate(g)
				ce := wantKind(t, err, tc.kind)
				if ce.Message != tc.message {
					t.Errorf("message = %q, want %q", ce.Message, tc.message)
				}
				if n := len(srv.Requests()); n != 1 || res.Attempts != 1 || len(w.all()) != 0 {
					t.Errorf("fake saw %d requests, attempts %d, waits %v; want exactly one", n, res.Attempts, w.all())
				}
				if srv.LastRequest(t).Stream != stream {
					t.Errorf("stream = %v", !stream)
				}
			})
		}
	}
}

func TestWrongKeyNotLeaked(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	srv.Key = "sk-the-right-one"
	_, err := generate(g)
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != wire.MsgBadKey {
		t.Errorf("message %q", ce.Message)
	}
	if r := srv.LastRequest(t); r.Status != 401 || r.Error != "invalid_api_key" {
		t.Errorf("fake answered %d %s", r.Status, r.Error)
	}
}

func TestInvalidRequestFromOpenAI(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	_, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1, Model: "gpt-image-9"})
	ce := wantKind(t, err, core.Invalid)
	if !strings.Contains(ce.Message, "The model `gpt-image-9` does not exist") {
		t.Errorf("message %q should carry OpenAI's explanation", ce.Message)
	}
	if len(srv.Requests()) != 1 {
		t.Errorf("retried a 404")
	}
}

// TestFaultsExhaustRetries checks more transient failures (beyond
// TestFaultMatrix's) are retried up to MaxRetries and then reported with the
// right kind.
func TestFaultsExhaustRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   openaitest.Fault
		stream  bool
		kind    core.ErrorKind
		message string
	}{
		{"502", openaitest.ServerError(502), false, core.Unavailable, "OpenAI is having trouble (HTTP 502); try again later."},
		{"504", openaitest.ServerError(504), false, core.Unavailable, "OpenAI is having trouble (HTTP 504); try again later."},
		{"flat stream error", openaitest.Fault{Kind: openaitest.FaultStreamError, Flat: true}, true, core.Unavailable, wire.MsgStreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g, w := newTestGenerator(t, func(c *Config) {
				c.MaxRetries = 2
				c.Stream, c.PartialImages = tc.stream, 1
			})
			srv.Fail(tc.fault, tc.fault, tc.fault)
			res, err := generate(g)
			ce := wantKind(t, err, tc.kind)
			if ce.Message != tc.message {
				t.Errorf("message = %q, want %q", ce.Message, tc.message)
			}
			if ce.Err == nil {
				t.Error("no underlying error kept for the logs")
			}
			if n := len(srv.Requests()); n != 3 || res.Attempts != 3 || len(w.all()) != 2 {
				t.Errorf("fake saw %d requests, attempts %d, waits %v; want 3, 3, 2", n, res.Attempts, w.all())
			}
			if srv.PendingFaults() != 0 {
				t.Errorf("%d faults unused", srv.PendingFaults())
			}
		})
	}
}

// TestRetryThenSuccess checks recovery after one transient failure, waiting
// what the headers ask for (TestFaultMatrix covers the faults of the issue).
func TestRetryThenSuccess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    openaitest.Fault
		stream   bool
		wantWait time.Duration // 0: any backoff
	}{
		{"429 with retry-after-ms", openaitest.RateLimited(1500 * time.Millisecond), false, 1500 * time.Millisecond},
		{"429 with Retry-After seconds", openaitest.Fault{Kind: openaitest.FaultRateLimit, RetryAfter: "7"}, false, 7 * time.Second},
		{"503 with Retry-After", openaitest.Fault{Kind: openaitest.FaultServerError, Status: 503, RetryAfter: "2"}, false, 2 * time.Second},
		{"502", openaitest.ServerError(502), false, 0},
		{"429 mid-stream", openaitest.Fault{Kind: openaitest.FaultStreamError, Code: "rate_limit_exceeded", Type: "requests"}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g, w := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = tc.stream, 1 })
			srv.Fail(tc.fault)
			res, err := generate(g)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if res.Attempts != 2 || len(srv.Requests()) != 2 {
				t.Errorf("attempts %d, fake saw %d requests; want 2", res.Attempts, len(srv.Requests()))
			}
			if !bytes.Equal(res.Images[0].Data, srv.Images()[0]) {
				t.Error("result differs from the image returned")
			}
			waits := w.all()
			if len(waits) != 1 {
				t.Fatalf("waits %v, want one", waits)
			}
			if tc.wantWait != 0 && (waits[0] < tc.wantWait || waits[0] > tc.wantWait+tc.wantWait/5) {
				t.Errorf("waited %v, want %v from the headers plus at most a fifth of jitter", waits[0], tc.wantWait)
			}
			if tc.wantWait == 0 && waits[0] > g.cfg.RetryBaseDelay {
				t.Errorf("first backoff %v above base %v", waits[0], g.cfg.RetryBaseDelay)
			}
		})
	}
}

func TestPartialIndexesIncreaseAcrossRetries(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 2 })
	srv.Fail(openaitest.StreamError())
	var idx []int
	res, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindGenerate, Prompt: "a fox", N: 1,
		Progress: func(p core.Partial) { idx = append(idx, p.Index) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || len(idx) != 3 || idx[0] != 0 || idx[1] != 1 || idx[2] != 2 {
		t.Errorf("attempts %d, partial indexes %v; want 2 and [0 1 2]", res.Attempts, idx)
	}
}

func TestRetryWaitBeyondDeadline(t *testing.T) {
	srv, g, w := newTestGenerator(t, nil)
	srv.Fail(openaitest.RateLimited(20 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := g.Generate(ctx, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	wantKind(t, err, core.RateLimited)
	if len(w.all()) != 0 {
		t.Errorf("waited %v past the context's deadline", w.all())
	}
}

func TestCancelDuringRetryWait(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	g.sleep = wire.Sleep // really wait, so cancellation has something to interrupt
	srv.Fail(openaitest.RateLimited(10 * time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	res, err := g.Generate(ctx, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	if time.Since(start) > 3*time.Second {
		t.Errorf("Generate took %v after cancellation", time.Since(start))
	}
	ce := wantKind(t, err, core.Unavailable)
	if !errors.Is(err, context.Canceled) || ce.Message != wire.MsgCancelled {
		t.Errorf("error %v, want a cancellation", err)
	}
	if res.Attempts != 1 {
		t.Errorf("attempts %d", res.Attempts)
	}
}

// TestUnreadableErrorBody covers an error answer that is not OpenAI's JSON
// envelope, such as a proxy's HTML page: the SDK reports a JSON error, but
// the status still decides.
func TestUnreadableErrorBody(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
	}))
	defer ts.Close()
	g, err := New(Config{APIKey: testKey, BaseURL: ts.URL + "/v1", MaxRetries: 1, RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.sleep = (&waits{}).sleep
	res, err := generate(g)
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != "OpenAI is having trouble (HTTP 502); try again later." {
		t.Errorf("message %q (error %v)", ce.Message, err)
	}
	if calls.Load() != 2 || res.Attempts != 2 {
		t.Errorf("calls %d attempts %d, want 2 (502 is retried)", calls.Load(), res.Attempts)
	}
}

func TestBadBase64IsRetried(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			_, _ = w.Write([]byte(`{"created":1,"data":[{"b64_json":"!!!not base64"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"created":1,"data":[{"b64_json":"iVBORw0KGgo="}]}`))
	}))
	defer ts.Close()
	g, err := New(Config{APIKey: testKey, BaseURL: ts.URL, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	g.sleep = (&waits{}).sleep
	res, err := generate(g)
	if err != nil {
		t.Fatal(err)
	}
	// No output_format in the answer: the media type is sniffed.
	if res.Attempts != 2 || res.Images[0].MIME != "image/png" || len(res.Images[0].Data) != 8 {
		t.Errorf("attempts %d image %+v", res.Attempts, res.Images[0])
	}
}
