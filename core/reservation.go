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
	hold   *quotaHold // what it will consume; nil without quotas
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
	if err := e.vacancyLocked(r.user); err != nil {
		e.mu.Unlock()
		return err
	}
	e.inFlight[r.user]++
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
	} else {
		e.quota.release(hold) // already released: the turn could not be stored
	}
	return nil
}

// vacancyLocked returns a Busy *Error when the engine is closing or user
// has EngineConfig.MaxPerUser turns in flight. e.mu must be held.
func (e *Engine) vacancyLocked(user string) error {
	if e.closed {
		return Errorf(Busy, "Easel is shutting down; try again in a moment")
	}
	if n := e.inFlight[user]; n >= e.cfg.MaxPerUser {
		return Errorf(Busy, "you already have %d requests in progress; wait for one to finish", n)
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
	if e.inFlight[r.user]--; e.inFlight[r.user] <= 0 {
		delete(e.inFlight, r.user)
	}
	e.quota.release(r.hold)
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
		e.inFlight[r.user]++
	}
}
