package openaitest

import (
	"strconv"
	"time"
)

// FaultKind names a failure the fake can inject into one response.
type FaultKind string

// Fault kinds. The error bodies use the envelope and the type and code values
// the real API uses for each case.
const (
	// FaultModeration answers 400 with code moderation_blocked; a Responses
	// API request gets a completed answer whose image call failed with that
	// code instead, or, when it calls no image tool, a completed answer
	// refusing in words.
	FaultModeration FaultKind = "moderation_blocked"
	// FaultRateLimit answers 429 rate_limit_exceeded with Retry-After headers.
	FaultRateLimit FaultKind = "rate_limit_exceeded"
	// FaultQuota answers 429 insufficient_quota.
	FaultQuota FaultKind = "insufficient_quota"
	// FaultUnauthorized answers 401 invalid_api_key.
	FaultUnauthorized FaultKind = "invalid_api_key"
	// FaultServerError answers Fault.Status (500 by default) with a server_error body.
	FaultServerError FaultKind = "server_error"
	// FaultReset hijacks the connection and resets it without answering.
	FaultReset FaultKind = "connection_reset"
	// FaultStall sends nothing until the client gives up or the server closes.
	FaultStall FaultKind = "stall"
	// FaultStallBody sends the status, the headers and the start of the
	// answer (half a JSON body, or a stream's first partial image), then
	// nothing more until the client gives up or the server closes: a stall
	// that a timeout covering only the headers would not catch.
	FaultStallBody FaultKind = "stall_body"
	// FaultTruncated cuts the body short: a JSON body ends halfway through
	// (with a Content-Length promising more), a stream ends after one partial
	// image without its completed event.
	FaultTruncated FaultKind = "truncated"
	// FaultStreamError sends one partial image (or, in the Responses API,
	// the first text delta) and then an error event. A request that does not
	// stream gets a 500 instead.
	FaultStreamError FaultKind = "stream_error"
	// FaultCustom answers Fault.Status with an error of Fault.Type, Fault.Code
	// and Fault.Message.
	FaultCustom FaultKind = "custom"
	// FaultResponseFailed makes a Responses API request fail in its answer:
	// status "failed" with an error of Fault.Code (server_error by default)
	// and Fault.Message, sent as response.failed when streaming and as a
	// 200 JSON answer otherwise.
	FaultResponseFailed FaultKind = "response_failed"
)

// Fault is a failure to inject into the next request that passes validation.
// Faults are used in the order they were queued, one per request.
type Fault struct {
	Kind FaultKind
	// Status overrides the HTTP status of FaultServerError and sets that of
	// FaultCustom.
	Status int
	// RetryAfter and RetryAfterMS are sent as the Retry-After and
	// retry-after-ms headers when not empty (any error fault).
	RetryAfter, RetryAfterMS string
	// Type, Code and Message override the error body (FaultCustom,
	// FaultStreamError).
	Type, Code, Message string
	// Flat makes FaultStreamError send the bare Error object of the spec's
	// ErrorEvent ({"type":..,"code":..,"message":..}) instead of the
	// {"type":"error","error":{..}} envelope.
	Flat bool
}

// ModerationBlocked returns a 400 moderation_blocked fault.
func ModerationBlocked() Fault { return Fault{Kind: FaultModeration} }

// RateLimited returns a 429 rate-limit fault asking to retry after d (sent
// both as retry-after-ms and, rounded up to whole seconds, as Retry-After).
func RateLimited(d time.Duration) Fault {
	secs := int((d + time.Second - 1) / time.Second)
	return Fault{
		Kind:         FaultRateLimit,
		RetryAfter:   strconv.Itoa(secs),
		RetryAfterMS: strconv.FormatInt(d.Milliseconds(), 10),
	}
}

// InsufficientQuota returns a 429 insufficient_quota fault.
func InsufficientQuota() Fault { return Fault{Kind: FaultQuota} }

// Unauthorized returns a 401 invalid_api_key fault.
func Unauthorized() Fault { return Fault{Kind: FaultUnauthorized} }

// ServerError returns a fault answering status (500, 502, 503, 504…) with a
// server_error body.
func ServerError(status int) Fault { return Fault{Kind: FaultServerError, Status: status} }

// ConnectionReset returns a fault that resets the connection.
func ConnectionReset() Fault { return Fault{Kind: FaultReset} }

// Stall returns a fault that never answers.
func Stall() Fault { return Fault{Kind: FaultStall} }

// StallBody returns a fault that stalls after the start of the answer.
func StallBody() Fault { return Fault{Kind: FaultStallBody} }

// Truncated returns a fault that cuts the response body short.
func Truncated() Fault { return Fault{Kind: FaultTruncated} }

// StreamError returns a fault that sends an error event after the first
// partial image of a stream.
func StreamError() Fault { return Fault{Kind: FaultStreamError} }

// ResponseFailed returns a fault that fails a Responses API answer with
// error code (server_error when "").
func ResponseFailed(code string) Fault { return Fault{Kind: FaultResponseFailed, Code: code} }

// errorBody returns the status and OpenAI error object for an error fault.
func (f Fault) errorBody(model, maskedKey string) (int, apiError) {
	switch f.Kind {
	case FaultModeration:
		return 400, apiError{
			Message: "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID.",
			Type:    "image_generation_user_error",
			Code:    ptr("moderation_blocked"),
		}
	case FaultRateLimit:
		return 429, apiError{
			Message: "Rate limit reached for " + model + " in organization org-fake on images per minute (IPM): Limit 5, Used 5, Requested 1. Please try again in 12s.",
			Type:    "requests",
			Code:    ptr("rate_limit_exceeded"),
		}
	case FaultQuota:
		return 429, apiError{
			Message: "You exceeded your current quota, please check your plan and billing details.",
			Type:    "insufficient_quota",
			Code:    ptr("insufficient_quota"),
		}
	case FaultUnauthorized:
		return 401, apiError{
			Message: "Incorrect API key provided: " + maskedKey + ". You can find your API key at https://platform.openai.com/account/api-keys.",
			Type:    "invalid_request_error",
			Code:    ptr("invalid_api_key"),
		}
	case FaultCustom:
		e := apiError{Message: f.Message, Type: f.Type}
		if f.Code != "" {
			e.Code = ptr(f.Code)
		}
		status := f.Status
		if status == 0 {
			status = 400
		}
		return status, e
	default: // FaultServerError, and FaultStreamError on a request that does not stream
		status := f.Status
		if status == 0 {
			status = 500
		}
		msg := "The server had an error while processing your request. Sorry about that!"
		if status == 503 {
			msg = "The server is overloaded or not ready yet."
		}
		return status, apiError{Message: msg, Type: "server_error"}
	}
}

func ptr[T any](v T) *T { return &v }
