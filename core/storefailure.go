package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff between tries of a failing store: doubling from the first wait to
// the longest, each jittered by up to a quarter.
const (
	storeFirstWait = 100 * time.Millisecond
	storeMaxWait   = 5 * time.Second
)

// retry calls op until it succeeds, fails with an error that is op's own
// verdict rather than the store's failure (an *Error of a kind other than
// Internal: NotFound, Conflict, Busy…), ctx ends, or EngineConfig.StoreRetry
// has passed since its first failure. Waits between tries back off. what
// names the operation in the log and in the error, which wraps op's last.
func (e *Engine) retry(ctx context.Context, what string, op func(context.Context) error) error {
	wait := storeFirstWait
	var start time.Time
	for tries := 1; ; tries++ {
		err := op(ctx)
		if err == nil || KindOf(err) != Internal || ctx.Err() != nil {
			return err
		}
		if tries == 1 {
			start = time.Now()
			e.log.Warn("the store failed; retrying", "op", what, "err", err)
		}
		elapsed := time.Since(start)
		if elapsed >= e.cfg.StoreRetry {
			return fmt.Errorf("engine: %s: the store failed %d times in %s: %w", what, tries, elapsed.Round(time.Millisecond), err)
		}
		t := time.NewTimer(min(wait+rand.N(wait/4+1), e.cfg.StoreRetry-elapsed))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, storeMaxWait)
	}
}

// update is SessionStore.UpdateSession with retry, for the session's
// worker: fenced by the grant of the session's lock it runs under (see
// Fence). If out is not nil, it is set to the stored session.
func (e *Engine) update(ctx context.Context, what, id string, fn func(*Session) error, out **Session) error {
	e.mu.Lock()
	if w := e.sessions[id]; w != nil {
		ctx = WithFence(ctx, Fence{Session: id, Token: w.token})
	}
	e.mu.Unlock()
	return e.retry(ctx, what, func(ctx context.Context) error {
		s, err := e.store.UpdateSession(ctx, id, fn)
		if err == nil && out != nil {
			*out = s
		}
		return err
	})
}

// stalledMessage tells a thread that Easel gave up on it for now; %s is the
// reference of the logged cause.
const stalledMessage = "❌ Easel can't save its work right now (ref %s), so it has stopped working on this thread. " +
	"Nothing asked here is lost: it carries on with your next message once saving works again, or when Easel restarts."

// stall gives up on session id, whose store failed for good while its
// worker ran: the worker is gone, every turn of the session releases what it
// holds and is finished, unsuccessfully, on th (so nobody waits for it), and
// th is told once. The turns stay recorded as they were; the session takes
// them up again with the next message that can be recorded in it (see
// startWorker), or on the next start.
func (e *Engine) stall(id string, w *worker, cause error) {
	ref := NewRef()
	e.log.Error("the store is failing: stopped working on a session until a message can be recorded in it", "session", id, "ref", ref, "err", cause)
	e.mu.Lock()
	delete(e.sessions, id)
	th, token := w.thread, w.token
	e.mu.Unlock()
	sources := e.releaseSession(id)
	e.unlock(id, token)

	ctx, cancel := context.WithTimeout(e.runCtx, time.Minute)
	defer cancel()
	e.status(th, "")
	if err := th.Reply(ctx, fmt.Sprintf(stalledMessage, ref)); err != nil {
		e.log.Warn("telling a thread it was given up on failed", "session", id, "err", err)
	}
	f, ok := th.(Finisher)
	for _, source := range sources {
		if !ok {
			break
		}
		if err := f.Finish(ctx, source, false); err != nil {
			e.log.Warn("finish marker failed", "session", id, "err", err)
		}
	}
}
