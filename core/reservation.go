package core

import (
	"context"
	"slices"
)

// reservation is what one admitted turn holds until it ends: one of its
// user's in-flight slots (EngineConfig.MaxPerUser) and, when quotas are set,
// the images and spend it will consume. A turn holds at most one, bound to it
// by its JobRef from before the turn is stored until release, which drops
// both parts at once, so neither can outlive the other.
type reservation struct {
	user   string     // platform\x00user id: whose slot it takes
	hold   *QuotaHold // what it will consume; nil without quotas
	source string     // the triggering message, told when the turn ends early
}

// reserve admits a turn about to be recorded in sess for msg, and binds what
// it holds to ref: a slot of its user and, with quotas, the images and spend
// it will consume, checked and held as one step. It returns a Busy *Error
// when the engine is closing or the user has EngineConfig.MaxPerUser turns
// in flight, and a Quota *Error when the turn does not fit a quota; then
// nothing is held. Whatever happens to the turn next, release(ref) frees it.
func (e *Engine) reserve(ctx context.Context, ref JobRef, sess *Session, t Turn, msg Message) error {
	r := &reservation{user: msg.Platform + "\x00" + msg.User.ID, source: msg.Source}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errClosing
	}
	if n, ok := e.limits.Users.Take(r.user, e.cfg.MaxPerUser); !ok {
		e.mu.Unlock()
		return tooMany(n)
	}
	e.held[ref] = r
	e.mu.Unlock()

	hold, err := e.reserveQuota(ctx, sess, t, msg, true)
	if err != nil {
		e.release(ref)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.held[ref] == r {
		r.hold = hold
	} else if hold != nil {
		e.limits.Holds.Release(*hold) // already released: the turn could not be stored
	}
	return nil
}

// errClosing refuses a turn while the engine stops.
var errClosing = Errorf(Busy, "Easel is shutting down; try again in a moment")

// tooMany refuses a turn of a user who has n, their most, in flight.
func tooMany(n int) error {
	return Errorf(Busy, "you already have %d requests in progress; wait for one to finish", n)
}

// vacancy returns the Busy *Error reserve would return now for a turn of
// user, or nil; it takes nothing.
func (e *Engine) vacancy(user string) error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return errClosing
	}
	if n := e.limits.Users.Count(user); n >= e.cfg.MaxPerUser {
		return tooMany(n)
	}
	return nil
}

// release frees what turn ref holds: its user's slot and its quota hold. A
// done turn's usage is durable by then; a failed one consumed nothing. It
// does nothing for a turn that holds nothing, so it may be called on every
// path by which a turn ends.
func (e *Engine) release(ref JobRef) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.held[ref]; r != nil {
		e.releaseLocked(ref, r)
	}
}

// releaseSessionLocked frees what every turn of session id holds and
// returns their triggering messages, oldest turn first. e.mu must be held.
func (e *Engine) releaseSessionLocked(id string) (sources []string) {
	var refs []JobRef
	for ref := range e.held {
		if ref.SessionID == id {
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b JobRef) int { return a.TurnID - b.TurnID })
	for _, ref := range refs {
		sources = append(sources, e.held[ref].source)
		e.releaseLocked(ref, e.held[ref])
	}
	return sources
}

// releaseLocked frees r, held by ref. e.mu must be held.
func (e *Engine) releaseLocked(ref JobRef, r *reservation) {
	delete(e.held, ref)
	e.limits.Users.Release(r.user)
	if r.hold != nil {
		e.limits.Holds.Release(*r.hold)
	}
}

// adopt reserves, unchecked, for each queued or running turn of sess that
// holds nothing: turns an earlier process admitted, or turns whose worker
// gave up on a failing store. They were admitted once, so they are not
// refused now.
func (e *Engine) adopt(sess *Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.adoptLocked(sess)
}

// adoptLocked is adopt with e.mu held.
func (e *Engine) adoptLocked(sess *Session) {
	for _, id := range sess.ActiveTurns() {
		ref := JobRef{SessionID: sess.ID, TurnID: id}
		if e.held[ref] != nil {
			continue
		}
		t := sess.Turn(id)
		r := &reservation{user: sess.Platform + "\x00" + t.User.ID, source: t.Source, hold: e.resumeQuota(sess, id)}
		e.held[ref] = r
		e.limits.Users.Add(r.user)
	}
}
