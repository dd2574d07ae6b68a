package core

import (
	"context"
	"encoding/json"
	"time"
)

// SessionStore keeps sessions, the job index of their turns and the usage
// counters. It is implemented by package storage (bbolt) and checked by the
// contract suite in storage/storetest. No method holds a transaction across
// a call back into the engine other than the update function itself, which
// must not do network I/O.
type SessionStore interface {
	// SessionByThread returns the session bound to a platform thread. It
	// returns a NotFound *Error when the thread has none.
	SessionByThread(ctx context.Context, platform, thread string) (*Session, error)
	// Session returns the session with id, or a NotFound *Error.
	Session(ctx context.Context, id string) (*Session, error)
	// CreateSession stores s and binds its thread to it, replacing any
	// earlier binding of that thread, and applies EffectsOf(nil, s) in the
	// same transaction. It returns a Conflict *Error if s.ID exists.
	CreateSession(ctx context.Context, s *Session) error
	// UpdateSession loads session id, calls fn on it and, if fn returns nil,
	// stores the result and applies EffectsOf(before, after) in the same
	// atomic transaction. fn runs inside the store's single
	// write transaction: it must do no I/O, must not call the store, and must
	// not change the session's ID or remove turns. It returns the stored
	// session, or a NotFound *Error, or fn's error unchanged (then nothing is
	// written). An update that records a turn for a delivery (a new turn
	// with Turn.Delivery set) fails with ErrDeliveryTaken, writing nothing,
	// unless that delivery is still waiting in the inbox and no other live
	// process holds it.
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error)
	// ActiveJobs returns the (session id, turn id) pairs of every pending
	// turn (queued, running, or ended but not yet posted), oldest first.
	ActiveJobs(ctx context.Context) ([]JobRef, error)
}

// ImageStore keeps image bytes by content hash, apart from session data, so
// that images can live elsewhere (a local directory, object storage). It is
// implemented by package storage/imagedir.
type ImageStore interface {
	// Put stores img's bytes (durably, before returning) and returns their
	// reference, whose media type is sniffed from the bytes. Storing the
	// same bytes twice is cheap and returns the same reference. Bytes that
	// are not an image the store accepts get an Invalid *Error.
	Put(ctx context.Context, img Image) (ImageRef, error)
	// Get returns the bytes of ref, checked against its size and hash: a
	// NotFound *Error when the store has none, an Internal error when what
	// it has is damaged.
	Get(ctx context.Context, ref ImageRef) (Image, error)
	// Locate returns where a person finds ref's bytes (a file path for a
	// local directory), or "" when ref's hash is malformed. It does no I/O.
	Locate(ref ImageRef) string
}

// JobRef names one turn's job.
type JobRef struct {
	SessionID string `json:"session"`
	TurnID    int    `json:"turn"`
}

// ErrDeliveryTaken is returned by a store for an update recording a turn
// for a delivery that is not this process's to record: its turn was
// recorded already, or it was handled otherwise, or another live process
// holds it (a replica took it up after this one froze). The adapter drops
// the delivery without a word: whoever holds it answers.
var ErrDeliveryTaken = Errorf(Conflict, "this request is being handled already")

// Delivery is a platform delivery recorded before it was acknowledged and
// not yet handled: the work a process that stopped in between left behind.
type Delivery struct {
	Key     string          `json:"-"`       // the dedupe key it was received under
	Kind    string          `json:"kind"`    // the platform's name for what it is
	Payload json.RawMessage `json:"payload"` // as received
	At      time.Time       `json:"at"`
}
