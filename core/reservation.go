package core

import (
	"context"
	"fmt"
	"slices"
	"time"
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
	if e.closing() {
		return errClosing
	}
	n, ok, err := e.limits.Users.Take(ctx, ref, r.user, e.cfg.MaxPerUser)
	switch {
	case err != nil:
		return fmt.Errorf("engine: count the turns in flight: %w", err)
	case !ok:
		return tooMany(n)
	}
	e.mu.Lock()
	e.held[ref] = r
	e.mu.Unlock()
	hold, err := e.reserveQuota(ctx, ref, sess, t, msg, true)
	if err != nil {
		e.release(ref)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.held[ref] == r {
		r.hold = hold
	} else if hold != nil {
		e.releaseHold(ref) // already released: the turn could not be stored
	}
	return nil
}

// errClosing refuses a turn while the engine stops.
var errClosing = Errorf(Busy, "Easel is shutting down; try again in a moment")

// tooMany refuses a turn of a user who has n, their most, in flight.
func tooMany(n int) error {
	return Errorf(Busy, "you already have %d requests in progress; wait for one to finish", n)
}

// closing reports whether the engine takes no more turns.
func (e *Engine) closing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// vacancy returns the Busy *Error reserve would return now for a turn of
// user, or nil; it takes nothing.
func (e *Engine) vacancy(ctx context.Context, user string) error {
	if e.closing() {
		return errClosing
	}
	n, err := e.limits.Users.Count(ctx, user)
	if err != nil {
		return fmt.Errorf("engine: count the turns in flight: %w", err)
	}
	if n >= e.cfg.MaxPerUser {
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
	r := e.held[ref]
	delete(e.held, ref)
	e.mu.Unlock()
	if r != nil {
		e.free(ref, r)
	}
}

// releaseSession frees what every turn of session id holds and returns
// their triggering messages, oldest turn first.
func (e *Engine) releaseSession(id string) (sources []string) {
	e.mu.Lock()
	var refs []JobRef
	held := map[JobRef]*reservation{}
	for ref, r := range e.held {
		if ref.SessionID == id {
			refs = append(refs, ref)
			held[ref] = r
			delete(e.held, ref)
		}
	}
	e.mu.Unlock()
	slices.SortFunc(refs, func(a, b JobRef) int { return a.TurnID - b.TurnID })
	for _, ref := range refs {
		sources = append(sources, held[ref].source)
		e.free(ref, held[ref])
	}
	return sources
}

// limiterTimeout bounds a call to a limiter that releases something.
const limiterTimeout = 30 * time.Second

// free gives back to the limiters what r, held by ref, took. A limiter
// that fails is logged: a shared one frees what a turn held when the turn
// ends in the store, or when it finds the turn gone.
func (e *Engine) free(ref JobRef, r *reservation) {
	ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
	defer cancel()
	if err := e.limits.Users.Release(ctx, ref); err != nil {
		e.log.Warn("releasing a turn's slot failed", "session", ref.SessionID, "turn", ref.TurnID, "err", err)
	}
	if r.hold != nil {
		e.releaseHold(ref)
	}
}

// releaseHold drops turn ref's quota hold.
func (e *Engine) releaseHold(ref JobRef) {
	ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
	defer cancel()
	if err := e.limits.Holds.Release(ctx, ref); err != nil {
		e.log.Warn("releasing a turn's quota hold failed", "session", ref.SessionID, "turn", ref.TurnID, "err", err)
	}
}

// adopt reserves, unchecked, for each queued or running turn of sess that
// holds nothing here: turns an earlier process admitted, or turns whose
// worker gave up on a failing store. They were admitted once, so they are
// not refused now.
func (e *Engine) adopt(ctx context.Context, sess *Session) error {
	for _, id := range sess.ActiveTurns() {
		ref := JobRef{SessionID: sess.ID, TurnID: id}
		e.mu.Lock()
		held := e.held[ref] != nil
		e.mu.Unlock()
		if held {
			continue
		}
		t := sess.Turn(id)
		r := &reservation{user: sess.Platform + "\x00" + t.User.ID, source: t.Source}
		if err := e.limits.Users.Add(ctx, ref, r.user); err != nil {
			return fmt.Errorf("engine: count a resumed turn: %w", err)
		}
		hold, err := e.resumeQuota(ctx, ref, sess, id)
		if err != nil {
			return fmt.Errorf("engine: hold a resumed turn's quota: %w", err)
		}
		r.hold = hold
		e.mu.Lock()
		if e.held[ref] == nil {
			e.held[ref] = r
		}
		e.mu.Unlock()
	}
	return nil
}
