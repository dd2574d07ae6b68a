package core

import (
	"context"
	"encoding/json"
	"time"
)

// Store keeps sessions and image bytes. It is implemented by package storage.
// No method holds a database transaction across a call back into the engine
// other than the update function itself, which must not do network I/O.
type Store interface {
	// SessionByThread returns the session bound to a platform thread. It
	// returns a NotFound *Error when the thread has none.
	SessionByThread(ctx context.Context, platform, thread string) (*Session, error)
	// Session returns the session with id, or a NotFound *Error.
	Session(ctx context.Context, id string) (*Session, error)
	// CreateSession stores s and binds its thread to it, replacing any
	// earlier binding of that thread. It returns a Conflict *Error if s.ID
	// exists.
	CreateSession(ctx context.Context, s *Session) error
	// UpdateSession loads session id, calls fn on it and, if fn returns nil,
	// stores the result and applies EffectsOf(before, after) in the same
	// atomic transaction. fn runs inside the store's single
	// write transaction: it must do no I/O, must not call the Store, and must
	// not change the session's ID or remove turns. It returns the stored
	// session, or a NotFound *Error, or fn's error unchanged (then nothing is
	// written).
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error)
	// PutImage stores image bytes by content hash (durably, before
	// returning) and returns their reference. Storing the same bytes twice is
	// cheap and returns the same reference.
	PutImage(ctx context.Context, img Image) (ImageRef, error)
	// Image returns the bytes of ref, or a NotFound *Error.
	Image(ctx context.Context, ref ImageRef) (Image, error)
	// ImagePath returns the local file path of ref's bytes, or "" when ref's
	// hash is malformed.
	ImagePath(ref ImageRef) string
	// ActiveJobs returns the (session id, turn id) pairs of every pending
	// turn (queued, running, or ended but not yet posted), oldest first.
	ActiveJobs(ctx context.Context) ([]JobRef, error)
}

// JobRef names one turn's job.
type JobRef struct {
	SessionID string `json:"session"`
	TurnID    int    `json:"turn"`
}

// Delivery is a platform delivery recorded before it was acknowledged and
// not yet handled: the work a process that stopped in between left behind.
type Delivery struct {
	Key     string          `json:"-"`       // the dedupe key it was received under
	Kind    string          `json:"kind"`    // the platform's name for what it is
	Payload json.RawMessage `json:"payload"` // as received
	At      time.Time       `json:"at"`
}
