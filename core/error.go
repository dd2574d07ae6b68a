package core

import (
	"errors"
	"fmt"
)

// ErrorKind classifies an error by what the person in the chat can do about it.
type ErrorKind string

// Error kinds. Each maps to its own message in the thread; only Internal errors
// hide their detail behind a reference.
const (
	// Invalid is bad input from the user: an unknown flag, an empty prompt.
	Invalid ErrorKind = "invalid"
	// NotFound is a session, version or image that does not exist.
	NotFound ErrorKind = "not_found"
	// Refused is the provider's safety system declining the request.
	Refused ErrorKind = "refused"
	// Quota is a billing or quota limit on the provider account: waiting won't help.
	Quota ErrorKind = "quota"
	// RateLimited is a temporary rate limit: retrying later will work.
	RateLimited ErrorKind = "rate_limited"
	// Unavailable is a provider outage, timeout or dropped connection.
	Unavailable ErrorKind = "unavailable"
	// Busy is a limit of Easel's own: too many requests in flight.
	Busy ErrorKind = "busy"
	// Forbidden is a request from someone not allowed to make it, such as
	// pressing a button on another person's image.
	Forbidden ErrorKind = "forbidden"
	// Conflict is a request that does not fit the session's state, such as undo with nothing to undo.
	Conflict ErrorKind = "conflict"
	// Internal is everything else; its detail is logged, never shown.
	Internal ErrorKind = "internal"
)

// Error is an error whose Message may be shown to users. Err carries the
// internal detail (for logs) and is never shown.
type Error struct {
	Kind    ErrorKind
	Message string
	Err     error
}

// Errorf returns an *Error of kind with a user-visible message.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error of kind with a user-visible message and the
// internal cause err.
func WrapError(kind ErrorKind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of the first *Error in err's chain, or Internal if
// there is none. A nil err has no kind: KindOf returns "".
func KindOf(err error) ErrorKind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// UserMessage returns what a user may be told about err. For Internal errors
// it returns a generic message naming ref, under which the detail is logged.
func UserMessage(err error, ref string) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Message
	}
	return fmt.Sprintf("something went wrong on our side (ref %s)", ref)
}
