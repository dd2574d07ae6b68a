package core

import (
	"context"
	"errors"
	"fmt"
)

// worker is the goroutine that runs one session's turns in order.
type worker struct {
	thread Thread
	more   bool  // a turn was queued after the worker last looked
	token  int64 // the grant of the session's lock it runs under
	// line is the status line of the turn it renders ("🎨 rendering v3
	// with openai"), for the line a turn queued meanwhile shows; "" when
	// none renders.
	line string
}

// showLine records line as the status line of the turn session id's
// worker renders ("" once it ends).
func (e *Engine) showLine(id, line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := e.sessions[id]; w != nil {
		w.line = line
	}
}

// startWorker makes sure a worker runs the queued turns of sess, reporting
// to th: a worker of this engine, or one of another process holding the
// session's lock (see SessionLocks). Holding the lock, the engine first
// takes up what the session's queued and running turns hold of the limits
// (see adopt): turns a stopped process or a failing store left. If another
// process holds the lock and shown is set, the status line this one showed
// in th goes. It returns false if the engine is closed.
func (e *Engine) startWorker(ctx context.Context, sess *Session, th Thread, shown bool) bool {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	if w := e.sessions[sess.ID]; w != nil {
		w.thread, w.more = th, true
		e.mu.Unlock()
		return true
	}
	e.mu.Unlock()
	token, ok, err := e.limits.Sessions.TryLock(ctx, sess.ID)
	if err != nil {
		e.log.Warn("taking a session's lock failed; its turns wait for the next resume", "session", sess.ID, "err", err)
		return true
	}
	if !ok {
		// Another process runs the session's turns in order, and shows
		// their status: a "queued" line this one showed goes. Nothing
		// else is touched, or this process would take down the line the
		// other shows.
		if shown {
			e.status(th, "")
		}
		return true
	}
	if err := e.adopt(ctx, sess); err != nil {
		e.log.Warn("taking up a session's turns failed; they run unreserved", "session", sess.ID, "err", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		go e.unlock(sess.ID, token)
		return false
	}
	if w := e.sessions[sess.ID]; w != nil { // started meanwhile; it runs under the new grant
		w.thread, w.more, w.token = th, true, token
		return true
	}
	w := &worker{thread: th, token: token}
	e.sessions[sess.ID] = w
	e.workers.Add(1)
	go e.work(sess.ID, w)
	return true
}

// abandon stops working on session id, whose lock another process took
// over (this one froze past its lease, say): what its turns hold of the
// limiters is that process's now, so it is forgotten here, not released.
func (e *Engine) abandon(id string, w *worker) {
	e.log.Warn("another process took this session over; stopped working on it here", "session", id)
	e.mu.Lock()
	if e.sessions[id] == w {
		delete(e.sessions, id)
	}
	for ref := range e.held {
		if ref.SessionID == id {
			delete(e.held, ref)
		}
	}
	th := w.thread
	e.mu.Unlock()
	// This process's status line (and Discord's typing indicator) goes;
	// the new holder shows its own.
	e.status(th, "")
}

// unlock frees session id's lock, granted as token.
func (e *Engine) unlock(id string, token int64) {
	ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
	defer cancel()
	if err := e.limits.Sessions.Unlock(ctx, id, token); err != nil {
		e.log.Warn("freeing a session's lock failed; it frees itself when its lease ends", "session", id, "err", err)
	}
}

// work runs session id's active turns in order until none is left, or until
// the store fails for good (then it gives up on the session: see stall).
func (e *Engine) work(id string, w *worker) {
	defer e.workers.Done()
	for {
		e.mu.Lock()
		w.more = false
		th := w.thread
		e.mu.Unlock()

		ran, err := e.runNext(id, th)
		stopping := e.runCtx.Err() != nil
		if errors.Is(err, ErrLeaseLost) {
			e.abandon(id, w)
			return
		}
		if err != nil && !stopping {
			e.stall(id, w, err)
			return
		}
		if ran && !stopping {
			continue
		}
		e.mu.Lock()
		if w.more && !stopping {
			e.mu.Unlock()
			continue
		}
		delete(e.sessions, id)
		token, last := w.token, w.thread
		e.mu.Unlock()
		if !stopping {
			// A "queued" line Handle showed after the turn it announced
			// already ran goes too; with nothing shown, this costs no call.
			e.status(last, "")
		}
		e.unlock(id, token)
		return
	}
}

// runNext posts the result of a turn that ended but was not all posted, or
// else runs the oldest active turn of session id. It reports whether there
// was one. It returns an error only when the store failed for good.
func (e *Engine) runNext(id string, th Thread) (bool, error) {
	var sess *Session
	err := e.retry(e.runCtx, "read session", func(ctx context.Context) (err error) {
		sess, err = e.store.Session(ctx, id)
		return err
	})
	if err != nil {
		return false, err
	}
	if posting := sess.PostingTurns(); len(posting) > 0 {
		return true, e.repost(sess, *sess.Turn(posting[0]), th)
	}
	active := sess.ActiveTurns()
	if len(active) == 0 {
		return false, nil
	}
	j := &job{sess: sess, turn: *sess.Turn(active[0]), thread: th, started: e.now()}
	return true, e.runTurn(j, len(active)-1)
}

// Resume restarts the turns left queued or running by an earlier process.
// open returns the Thread of a session, or false to leave it alone (another
// platform's, say). It returns the number of sessions resumed.
func (e *Engine) Resume(ctx context.Context, open func(*Session) (Thread, bool)) (int, error) {
	jobs, err := e.store.ActiveJobs(ctx)
	if err != nil {
		return 0, fmt.Errorf("engine: list active jobs: %w", err)
	}
	started := map[string]bool{}
	for _, jr := range jobs {
		if started[jr.SessionID] {
			continue
		}
		sess, err := e.store.Session(ctx, jr.SessionID)
		if err != nil {
			return len(started), fmt.Errorf("engine: resume %s: %w", jr.SessionID, err)
		}
		th, ok := open(sess)
		if !ok {
			continue
		}
		started[jr.SessionID] = e.startWorker(ctx, sess, th, false)
	}
	return len(started), nil
}
