package openai

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
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

// randInt64N is rand.Int64N, as a variable-free default for Generator.rnd.
func randInt64N(n int64) int64 { return rand.Int64N(n) }
