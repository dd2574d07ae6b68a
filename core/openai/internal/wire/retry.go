package wire

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
)

// Retrier runs the attempts of one request to OpenAI with Easel's retry
// rules. Retries are Easel's own, not the SDK's (which would also retry a
// 429 that means the account is out of credits): only rate limits,
// 500/502/503/504, dropped connections, timeouts, truncated answers and
// error events mid-stream are retried, after a jittered exponential backoff
// or the wait OpenAI asks for (Retry-After).
type Retrier struct {
	// Name is the provider's name in log messages, such as "openai".
	Name string
	// MaxRetries is how many times a failure is retried: a request makes at
	// most 1+MaxRetries attempts.
	MaxRetries int
	// Timeout bounds each attempt, its answer read whole included.
	Timeout time.Duration
	// BaseDelay and MaxDelay shape the backoff: retry k waits a uniformly
	// random time up to min(BaseDelay·2^(k-1), MaxDelay). A wait OpenAI asks
	// for is honoured, plus up to a fifth more of jitter, capped at
	// MaxDelay; one longer than MaxDelay is not waited for.
	BaseDelay, MaxDelay time.Duration
	// Classifier turns errors into what users are shown.
	Classifier Classifier
	// Log receives retries at Info and failures at Info or Warn. Nil
	// discards.
	Log *slog.Logger
	// Sleep, Rnd and Now are the clock and the random source; nil means
	// the package's Sleep, RandInt64N and time.Now.
	Sleep func(ctx context.Context, d time.Duration) error
	Rnd   func(n int64) int64
	Now   func() time.Time
}

// Do makes the attempts of one request: it calls send with a context
// bounded by Timeout, the attempt's number (counted from 1) and a Meta for
// Observe, until send returns nil, fails in a way another attempt cannot
// fix, or the retries run out. A wait is never longer than MaxDelay nor
// past ctx's deadline.
//
// report, if not nil, is called before each attempt with its number; if it
// returns an error nothing more is sent and Do returns that error
// unchanged. Do returns the attempts made (send calls) and nil, or an error:
// report's, or a *core.Error from the Classifier for the last failure (one
// that also matches ctx.Err() with errors.Is when ctx ended).
func (r *Retrier) Do(ctx context.Context, report func(n int) error, send func(ctx context.Context, n int, meta *Meta) error) (int, error) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sleep, rnd := r.Sleep, r.Rnd
	if sleep == nil {
		sleep = Sleep
	}
	if rnd == nil {
		rnd = RandInt64N
	}
	c := r.Classifier
	if c.Now == nil {
		c.Now = r.Now
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			// The caller gave up (during a retry wait, say): send nothing more.
			return attempt - 1, c.classify(ctx, err, Meta{}).err
		}
		if report != nil {
			// Reported before anything is sent, so every request OpenAI may
			// bill for is on record.
			if err := report(attempt); err != nil {
				log.WarnContext(ctx, r.Name+" request not sent: the attempt could not be reported", "attempt", attempt, "error", err)
				return attempt - 1, err
			}
		}
		var meta Meta
		err := r.attempt(ctx, attempt, &meta, send)
		if err == nil {
			return attempt, nil
		}
		f := c.classify(ctx, err, meta)
		if !f.retry || attempt > r.MaxRetries {
			level := slog.LevelWarn
			if f.err.Kind == core.Invalid || f.err.Kind == core.Refused {
				level = slog.LevelInfo // about the request, not the service
			}
			log.Log(ctx, level, r.Name+" request failed", "kind", f.err.Kind, "attempt", attempt, "error", f.err.Err)
			return attempt, f.err
		}
		wait, ok := retryWait(attempt, f.wait, f.hasWait, r.BaseDelay, r.MaxDelay, rnd)
		if !ok || exceedsDeadline(ctx, c.now().Add(wait)) {
			log.WarnContext(ctx, r.Name+" request failed; retry wait too long", "kind", f.err.Kind,
				"attempt", attempt, "wait", wait, "error", f.err.Err)
			return attempt, f.err
		}
		log.InfoContext(ctx, r.Name+" request failed; retrying", "kind", f.err.Kind,
			"attempt", attempt, "wait", wait, "error", f.err.Err)
		if err := sleep(ctx, wait); err != nil {
			return attempt, c.classify(ctx, err, Meta{}).err
		}
	}
}

// attempt calls send within the per-attempt timeout, marking an error that
// the timeout caused.
func (r *Retrier) attempt(ctx context.Context, n int, meta *Meta, send func(context.Context, int, *Meta) error) error {
	actx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	err := send(actx, n, meta)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		err = &timeoutError{after: r.Timeout, err: err}
	}
	return err
}

func exceedsDeadline(ctx context.Context, t time.Time) bool {
	d, ok := ctx.Deadline()
	return ok && t.After(d)
}

// retryAfter returns the wait a response asks for: retry-after-ms
// (milliseconds, OpenAI's own header) wins over Retry-After, which holds
// either seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past
// means no wait. ok is false when neither header holds a usable value.
func retryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if h == nil {
		return 0, false
	}
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
			return durationOf(ms, time.Millisecond), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || math.IsInf(secs, 0) {
			return 0, false
		}
		return durationOf(secs, time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// durationOf converts n units to a Duration, saturating instead of overflowing.
func durationOf(n float64, unit time.Duration) time.Duration {
	f := n * float64(unit)
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}

// backoff returns the wait before retry number retry (1 for the first):
// exponential growth from base, capped at limit, with full jitter (a uniform
// random wait between zero and that bound), so clients that failed together
// do not retry together.
func backoff(retry int, base, limit time.Duration, rnd func(n int64) int64) time.Duration {
	bound := limit
	if retry < 62 && base < limit>>(retry-1) {
		bound = base << (retry - 1)
	}
	if bound <= 0 {
		return 0
	}
	return time.Duration(rnd(int64(bound) + 1))
}

// retryWait returns how long to wait before retry number retry (1 for the
// first), given the wait the server asked for, if any (hasAsked). Without
// one it is backoff's jittered exponential delay. A wait the server asked for
// is honoured (never retried sooner) plus a uniformly random extra of up to
// a fifth of it, so requests rate-limited together do not all come back at
// the same instant, and capped at limit. ok is false when the server asked
// for more than limit: holding the job that long is worse than telling the
// user at once.
func retryWait(retry int, asked time.Duration, hasAsked bool, base, limit time.Duration, rnd func(n int64) int64) (wait time.Duration, ok bool) {
	if !hasAsked {
		return backoff(retry, base, limit, rnd), true
	}
	if asked > limit {
		return 0, false
	}
	return min(asked+time.Duration(rnd(int64(asked/5)+1)), limit), true
}

// Sleep waits for d or until ctx is done, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RandInt64N is rand.Int64N: Retrier's default random source.
func RandInt64N(n int64) int64 { return rand.Int64N(n) }
