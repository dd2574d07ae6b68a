package slack

import (
	"context"
	"errors"
	"fmt"
	"time"

	slackapi "github.com/slack-go/slack"
)

// Rate-limit retries: Slack says how long to wait (Retry-After); a call is
// retried at most maxRetries times, and not at all when the wait is longer
// than maxRetryWait.
const (
	maxRetries   = 3
	maxRetryWait = time.Minute
	minRetryWait = time.Second
)

// call runs fn, the Web API method named method, retrying it while Slack
// answers that the app is rate limited. It returns fn's last error wrapped
// with the method name, or ctx's error if ctx ends while waiting.
func (b *Bot) call(ctx context.Context, method string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		wait, limited := retryAfter(err)
		if !limited || attempt == maxRetries || wait > maxRetryWait {
			return fmt.Errorf("%s: %w", method, err)
		}
		b.log.Warn("slack rate limit; retrying", "method", method, "retry_after", wait, "attempt", attempt+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting out a rate limit: %w", method, ctx.Err())
		}
	}
}

// retryAfter reports whether err is Slack's rate limit (HTTP 429 or the
// "ratelimited" error code) and how long to wait.
func retryAfter(err error) (time.Duration, bool) {
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, minRetryWait), true
	}
	if code := errorCode(err); code == "ratelimited" || code == "rate_limited" {
		return minRetryWait, true
	}
	return 0, false
}

// errorCode returns the error code of a Slack "ok": false answer, or "".
func errorCode(err error) string {
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}
