package core

import (
	"context"
	"errors"
	"slices"
	"time"
)

// A turn is canceled in two steps. Engine.Cancel records the request in the
// session: a queued turn ends canceled in that same commit, a running one
// only carries the request. The worker running the turn, in whichever
// process holds the session, notices it: at once when the press lands in
// its own process, else when it records the turn's start or a provider
// attempt, or by reading the session every EngineConfig.CancelPoll while
// the provider works. It then stops the provider call, records the turn as
// canceled and posts nothing the call returns.

// DefaultCancelPoll is how often a running turn reads its session to
// notice a cancel recorded by another process.
const DefaultCancelPoll = 3 * time.Second

// errCanceled is the cause of a running turn's context when the turn was
// canceled, and what the worker's updates return when they find a cancel
// request recorded.
var errCanceled = Errorf(Conflict, "this request was canceled")

// Cancel cancels turn id of the session of msg's thread (msg.SessionID,
// when set, must be it or an earlier session of the thread), or with id 0
// every queued or running turn msg.User asked for there. Only the turn's
// requester or an admin may cancel it. A queued turn ends canceled at once;
// a running one when its worker notices (see above). The thread is told
// "🛑 canceled by …" once, by the session's worker. Cancel returns an
// *Error for the user: NotFound, Forbidden, Conflict for a turn that has
// ended or is being canceled already, or Unavailable when the store fails;
// then nothing changed.
func (e *Engine) Cancel(ctx context.Context, th Thread, msg Message, id int) error {
	msg.Action = ActionCancel
	if err := e.Allowed(msg); err != nil {
		return err
	}
	msg.User.Admin = msg.User.Admin || slices.Contains(e.cfg.Admins, msg.User.ID)
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return err
	}
	var dropped []int
	stored, err := e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
		dropped = dropped[:0]
		ids, err := cancelable(s, msg.User, id)
		if err != nil {
			return err
		}
		for _, id := range ids {
			t := s.Turn(id)
			if err := requestCancel(t, msg.User, e.now()); err != nil {
				return err
			}
			if t.Status == StatusCanceled {
				dropped = append(dropped, id)
			}
		}
		return nil
	})
	if KindOf(err) == Internal {
		e.log.Error("recording a cancel failed", "session", sess.ID, "err", err)
		return WrapError(Unavailable, err, "Easel can't save your cancel right now; try again in a moment")
	}
	if err != nil {
		return err
	}
	for _, id := range dropped {
		e.release(JobRef{SessionID: stored.ID, TurnID: id})
	}
	e.stopJobs(stored)
	if len(dropped) > 0 && !e.startWorker(ctx, stored, th, false) {
		e.log.Info("a canceled turn is told in its thread on the next start", "session", stored.ID)
	}
	return nil
}

// cancelable returns the turns of s that a cancel of turn id by user names:
// id itself, or with id 0 the user's queued and running turns. It returns a
// NotFound *Error when there is no such turn.
func cancelable(s *Session, user User, id int) ([]int, error) {
	if id != 0 {
		if s.Turn(id) == nil {
			return nil, Errorf(NotFound, "this thread has no request #%d", id)
		}
		return []int{id}, nil
	}
	var ids []int
	for _, t := range s.Turns {
		if t.Status.Active() && t.Cancel == nil && t.User.ID == user.ID {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return nil, Errorf(NotFound, "you have no request queued or rendering in this thread; nothing to cancel")
	}
	return ids, nil
}

// requestCancel records, in t, by's request to cancel it at now: a queued
// turn ends canceled, to be posted; a running one keeps running until its
// worker notices. It returns an *Error, and changes nothing, when by may
// not cancel t (Forbidden) or t has ended or is being canceled (Conflict).
func requestCancel(t *Turn, by User, now time.Time) error {
	switch {
	case !by.Admin && t.User.ID != by.ID:
		return Errorf(Forbidden, "only %s (who asked for it) or an admin can cancel this request", displayName(t.User))
	case t.Status == StatusCanceled:
		return Errorf(Conflict, "this request was canceled already")
	case !t.Status.Active():
		return Errorf(Conflict, "this request has already finished (%s); there is nothing to cancel", t.Status)
	case t.Cancel != nil:
		return Errorf(Conflict, "this request is being canceled already")
	}
	t.Cancel = &CancelRequest{By: User{ID: by.ID, Name: by.Name}, At: now}
	if t.Status == StatusQueued {
		t.Status, t.FinishedAt, t.Posting = StatusCanceled, now, true
	}
	return nil
}

// canceledText is what a thread is told of canceled turn t.
func canceledText(t *Turn) string {
	if t.Cancel == nil {
		return "🛑 canceled"
	}
	return "🛑 canceled by " + displayName(t.Cancel.By)
}

// stopJobs cancels the context of each turn of sess this process runs that
// has a cancel request.
func (e *Engine) stopJobs(sess *Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range sess.Turns {
		if stop := e.jobs[JobRef{SessionID: sess.ID, TurnID: t.ID}]; stop != nil && t.Cancel != nil {
			stop(errCanceled)
		}
	}
}

// track registers a context for j's run, for Cancel to stop, and returns
// it with its stop function.
func (e *Engine) track(j *job) (context.Context, context.CancelCauseFunc) {
	ctx, stop := context.WithCancelCause(e.runCtx)
	e.mu.Lock()
	e.jobs[j.ref()] = stop
	e.mu.Unlock()
	return ctx, stop
}

// untrack ends j's run context, registered by track with stop.
func (e *Engine) untrack(j *job, stop context.CancelCauseFunc) {
	e.mu.Lock()
	delete(e.jobs, j.ref())
	e.mu.Unlock()
	stop(nil)
}

// watchCancel reads j's session every EngineConfig.CancelPoll until ctx
// ends, and stops j's run (stop) once a cancel request is recorded: one
// made in another process. A read that fails is retried at the next tick.
func (e *Engine) watchCancel(ctx context.Context, j *job, stop context.CancelCauseFunc) {
	tick := time.NewTicker(e.cfg.CancelPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s, err := e.store.Session(ctx, j.sess.ID)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("checking a running turn for a cancel failed", "session", j.sess.ID, "err", err)
			}
			continue
		}
		if t := s.Turn(j.turn.ID); t != nil && t.Cancel != nil {
			stop(errCanceled)
			return
		}
	}
}

// wasCanceled reports whether err, or the cause of a run's context ctx,
// says the turn was canceled.
func wasCanceled(ctx context.Context, err error) bool {
	return errors.Is(err, errCanceled) || errors.Is(context.Cause(ctx), errCanceled)
}

// stillLive returns errCanceled if turn t, as stored, was canceled or asked
// to be: the worker's updates check it so that they never end a canceled
// turn otherwise.
func stillLive(t *Turn) error {
	if t.Cancel != nil || t.Status == StatusCanceled {
		return errCanceled
	}
	return nil
}

// canceled records j's turn as canceled, with what the provider reported of
// the call it cut short (res; usage counts when the provider charged for
// it), and tells the thread. A turn dropped while queued is canceled
// already; then only the telling is left.
func (e *Engine) canceled(j *job, res Result) error {
	var sess *Session
	err := e.update(e.runCtx, "record a canceled turn", j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		if t.Status == StatusCanceled {
			return nil
		}
		if t.Cancel == nil || !t.Status.Active() {
			return Errorf(Conflict, "engine: turn %d is %s, not asked to be canceled", t.ID, t.Status)
		}
		t.Status, t.FinishedAt, t.Posting = StatusCanceled, e.now(), true
		t.Attempts = j.turn.Attempts + j.attempts
		t.Usage, t.CostUSD = res.Usage, res.CostUSD
		if t.Kind == "" {
			t.Kind = j.kind
		}
		return nil
	}, &sess)
	if err != nil {
		return e.interrupted(j, err)
	}
	e.log.Info("turn canceled", "session", j.sess.ID, "turn", j.turn.ID)
	return e.conclude(j, sess, nil)
}
