// Package wire is what Easel's OpenAI providers share about talking to
// OpenAI over HTTP, whichever endpoint they call: running the attempts of a
// request with Easel's retry rules (Retrier), turning failures into
// *core.Error values with the messages users see (Classifier), and reading
// JSON answers and server-sent events whose base64 images are decoded
// straight from the body (ReadAnswer, ReadEvents).
package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/easel-bot/easel/core"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Messages shown to users. They say what happened and what to do, and never
// carry internal detail.
const (
	MsgRefused     = "OpenAI's safety system declined this request. Try rephrasing it."
	MsgQuota       = "The OpenAI account is out of credits or over its billing limit; ask an admin to check billing."
	MsgRateLimited = "OpenAI is rate-limiting requests right now; try again in a minute."
	MsgBadKey      = "OpenAI rejected Easel's API key; an admin needs to fix the configuration."
	MsgForbidden   = "OpenAI refused access to this model for Easel's account (the organization may need verification); an admin needs to check the OpenAI account."
	MsgConnection  = "Easel could not reach OpenAI (the connection failed); try again later."
	MsgTruncated   = "OpenAI's answer was cut off before the image arrived; try again later."
	MsgStreamError = "OpenAI reported an error while rendering the image; try again later."
	MsgCancelled   = "The request to OpenAI was cancelled before it finished."
	MsgInternal    = "Easel failed to talk to OpenAI."
)

// APIError is a sanitized copy of an error answer from the API: it keeps the
// status and OpenAI's error fields but not the request (whose headers carry
// the API key) or the response.
type APIError struct {
	Status    int
	Type      string
	Code      string
	Param     string
	Message   string // empty for 401/403, whose messages may echo part of the key
	RequestID string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "OpenAI API error: HTTP %d", e.Status)
	var attrs []string
	for _, kv := range [][2]string{{"type", e.Type}, {"code", e.Code}, {"param", e.Param}, {"request", e.RequestID}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0]+"="+kv[1])
		}
	}
	if len(attrs) > 0 {
		b.WriteString(" (" + strings.Join(attrs, " ") + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// StreamError is an error reported in the middle of an answer: an error
// event of a stream, or a failure recorded in an answer that arrived whole.
type StreamError struct {
	Type, Code, Message string
}

func (e *StreamError) Error() string {
	s := "error event in OpenAI stream"
	var attrs []string
	for _, kv := range [][2]string{{"type", e.Type}, {"code", e.Code}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0]+"="+kv[1])
		}
	}
	if len(attrs) > 0 {
		s += " (" + strings.Join(attrs, " ") + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ParseStreamError reads an error event's data: either the bare Error object
// of the spec's ErrorEvent or an {"error": {...}} envelope. ok is false when
// data does not look like an error.
func ParseStreamError(data []byte) (*StreamError, bool) {
	var ev struct {
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Error   *struct {
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, false
	}
	if ev.Error != nil {
		return &StreamError{Type: ev.Error.Type, Code: rawString(ev.Error.Code), Message: ev.Error.Message}, true
	}
	if ev.Type == "error" || ev.Message != "" {
		return &StreamError{Type: ev.Type, Code: rawString(ev.Code), Message: ev.Message}, true
	}
	return nil, false
}

// rawString returns a JSON string's value, or "" for null or non-strings.
func rawString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// Errors for what the SDK does not report itself.
var (
	// ErrTruncated is a stream that ended without its completed event.
	ErrTruncated = errors.New("OpenAI stream ended before the completed event")
	// ErrBadImage is an image whose base64 does not decode.
	ErrBadImage = errors.New("OpenAI returned an image that is not valid base64")
	// ErrNoImages is a successful answer without images.
	ErrNoImages = errors.New("OpenAI returned no images")
)

// timeoutError is an attempt that ran out of its per-attempt time.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("attempt timed out after %s: %v", e.after, e.err)
}
func (e *timeoutError) Unwrap() error { return e.err }

// Meta is what Observe saw of the last HTTP response of an attempt: the SDK
// does not surface the status of an error answer whose body is not OpenAI's
// JSON envelope (an HTML page from a proxy, say).
type Meta struct {
	Status int
	Header http.Header
}

// Observe returns an SDK option that records the status and headers of each
// response in meta.
func Observe(meta *Meta) option.RequestOption {
	return option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		res, err := next(r)
		if res != nil {
			meta.Status, meta.Header = res.StatusCode, res.Header.Clone()
		}
		return res, err
	})
}

// Guard returns an SDK option that runs core.BeforeSend right before each
// request leaves, and sends nothing if it fails.
func Guard() option.RequestOption {
	return option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		if err := core.BeforeSend(r.Context()); err != nil {
			return nil, err
		}
		return next(r)
	})
}

// failure is a classified error: what to tell the user if Easel stops here,
// whether another attempt may succeed, and how long the server asked to wait.
type failure struct {
	err     *core.Error
	retry   bool
	wait    time.Duration
	hasWait bool
}

// Classifier turns the errors of attempts into failures: the *core.Error a
// user is shown, and whether another attempt may succeed (see Retrier.Do).
// Its zero value redacts nothing and reads the time from time.Now.
type Classifier struct {
	// APIKey is hidden from the text of every error it returns.
	APIKey string
	// Now returns the time, for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

func (c Classifier) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// classify turns an attempt's error into a failure. ctx is the caller's
// context (not the attempt's).
func (g Classifier) classify(ctx context.Context, err error, meta Meta) failure {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return failure{err: core.WrapError(core.Unavailable, g.Redact(err), "OpenAI did not finish before Easel's deadline; try again later.")}
		}
		return failure{err: core.WrapError(core.Unavailable, g.Redact(err), MsgCancelled)}
	}

	var sdkErr *oai.Error
	if errors.As(err, &sdkErr) {
		ae := &APIError{
			Status:  sdkErr.StatusCode,
			Type:    sdkErr.Type,
			Code:    sdkErr.Code,
			Param:   sdkErr.Param,
			Message: sdkErr.Message,
		}
		h := meta.Header
		if sdkErr.Response != nil {
			h = sdkErr.Response.Header
		}
		ae.RequestID = h.Get("x-request-id")
		return g.classifyAPI(ae, h)
	}
	if meta.Status >= 400 {
		// An error answer the SDK could not decode (not OpenAI's envelope).
		ae := &APIError{Status: meta.Status, RequestID: meta.Header.Get("x-request-id"), Message: "unreadable error body"}
		return g.classifyAPI(ae, meta.Header)
	}

	var te *timeoutError
	if errors.As(err, &te) {
		return failure{retry: true, err: core.WrapError(core.Unavailable, g.Redact(err),
			"OpenAI did not answer in time (timed out after %s); try again later.", te.after)}
	}

	var se *StreamError
	if errors.As(err, &se) {
		return g.classifyStream(se)
	}

	switch {
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrBadImage),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), isJSONError(err):
		return failure{retry: true, err: core.WrapError(core.Unavailable, g.Redact(err), MsgTruncated)}
	case errors.Is(err, ErrNoImages):
		return failure{err: core.WrapError(core.Unavailable, g.Redact(err), "OpenAI answered without an image; try again.")}
	case isConnError(err):
		return failure{retry: true, err: core.WrapError(core.Unavailable, g.Redact(err), MsgConnection)}
	}
	return failure{err: core.WrapError(core.Internal, g.Redact(err), MsgInternal)}
}

// classifyAPI classifies an HTTP error answer.
func (g Classifier) classifyAPI(ae *APIError, h http.Header) failure {
	wait, hasWait := retryAfter(h, g.now())
	switch s := ae.Status; {
	case isModeration(ae.Type, ae.Code, ae.Message):
		return failure{err: core.WrapError(core.Refused, ae, MsgRefused)}
	case isQuota(ae.Type, ae.Code):
		return failure{err: core.WrapError(core.Quota, ae, MsgQuota)}
	case s == http.StatusUnauthorized:
		ae.Message = ""
		return failure{err: core.WrapError(core.Unavailable, ae, MsgBadKey)}
	case s == http.StatusForbidden:
		// 403 is also how OpenAI answers an organization that must be
		// verified before it may use GPT image models.
		verify := strings.Contains(strings.ToLower(ae.Code+" "+ae.Message), "verif")
		ae.Message = ""
		if verify {
			return failure{err: core.WrapError(core.Unavailable, ae, MsgForbidden)}
		}
		return failure{err: core.WrapError(core.Unavailable, ae, MsgBadKey)}
	case s == http.StatusTooManyRequests:
		return failure{retry: true, wait: wait, hasWait: hasWait, err: core.WrapError(core.RateLimited, ae, MsgRateLimited)}
	case s == 500 || s == 502 || s == 503 || s == 504:
		return failure{retry: true, wait: wait, hasWait: hasWait,
			err: core.WrapError(core.Unavailable, ae, "OpenAI is having trouble (HTTP %d); try again later.", s)}
	case s >= 500:
		return failure{err: core.WrapError(core.Unavailable, ae, "OpenAI is having trouble (HTTP %d); try again later.", s)}
	case s >= 400:
		msg := strings.TrimSpace(ae.Message)
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", s)
		}
		return failure{err: core.WrapError(core.Invalid, ae, "OpenAI could not serve this request: %s", truncate(msg, 300))}
	}
	return failure{err: core.WrapError(core.Internal, ae, MsgInternal)}
}

// classifyStream classifies an error event received mid-stream.
func (g Classifier) classifyStream(se *StreamError) failure {
	switch {
	case isModeration(se.Type, se.Code, se.Message):
		return failure{err: core.WrapError(core.Refused, se, MsgRefused)}
	case isQuota(se.Type, se.Code):
		return failure{err: core.WrapError(core.Quota, se, MsgQuota)}
	case se.Code == "rate_limit_exceeded":
		return failure{retry: true, err: core.WrapError(core.RateLimited, se, MsgRateLimited)}
	}
	return failure{retry: true, err: core.WrapError(core.Unavailable, se, MsgStreamError)}
}

// isModeration reports whether an error is the safety system declining the
// request. OpenAI says so with code moderation_blocked (type
// image_generation_user_error); older models used content_policy_violation.
// An image_generation_user_error without a code counts only when its message
// talks about safety or moderation: the same type covers unrelated problems
// such as an unreadable input image.
func isModeration(typ, code, message string) bool {
	switch code {
	case "moderation_blocked", "content_policy_violation",
		// The Responses API's: a response failed on an input image or a
		// policy, or stopped by its content filter.
		"image_content_policy_violation", "bio_policy", "content_filter":
		return true
	}
	if typ == "moderation_blocked" {
		return true
	}
	if strings.Contains(typ, "user_error") || strings.Contains(code, "user_error") {
		m := strings.ToLower(message)
		for _, w := range []string{"safety system", "moderation", "content policy", "safety reasons"} {
			if strings.Contains(m, w) {
				return true
			}
		}
	}
	return false
}

// isQuota reports whether an error is a billing or quota limit.
func isQuota(typ, code string) bool {
	return code == "insufficient_quota" || typ == "insufficient_quota" || code == "billing_hard_limit_reached"
}

// isConnError reports whether err is a transport failure: refused, reset or
// dropped connections, DNS or TLS trouble, a failed dial.
func isConnError(err error) bool {
	var ne net.Error
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// isJSONError reports whether err is a malformed JSON body, which on a
// successful status means a body cut short.
func isJSONError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || strings.Contains(err.Error(), "unexpected end of JSON input")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// redactedError hides the API key in the text of an error it wraps.
type redactedError struct {
	err error
	key string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.key, "[redacted]")
}
func (e *redactedError) Unwrap() error { return e.err }

// Redact returns err with the API key, should it ever appear in the error's
// text, replaced.
func (g Classifier) Redact(err error) error {
	if err == nil || len(g.APIKey) < 4 || !strings.Contains(err.Error(), g.APIKey) {
		return err
	}
	return &redactedError{err: err, key: g.APIKey}
}
