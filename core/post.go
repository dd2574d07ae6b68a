package core

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// clockSkew is how far the platform's clock may be behind ours when a
// thread is searched for what an earlier process posted.
const clockSkew = time.Minute

// conclude posts the result of j's turn, now ended in sess, and ends the
// job. It returns an error only when a post could not be recorded.
func (e *Engine) conclude(j *job, sess *Session, images map[int]Image) error {
	t := sess.Turn(j.turn.ID)
	e.metrics.TurnEnded(t.Kind, t.Status, t.Provider, e.now().Sub(j.started))
	ctx, cancel := context.WithTimeout(e.runCtx, time.Minute)
	defer cancel()
	j.statusShown()
	ok, err := e.post(ctx, sess, j.turn.ID, j.thread, images, false)
	e.end(ctx, j, ok)
	return err
}

// post posts the result of turn id of sess, which has ended, and records
// each post as it lands: the new images (two to four as one grid), the
// picked one, the failure message or the undo note. images holds outputs
// already in memory; the rest are read from the store. With retry, an
// earlier process may have posted part of it, so the thread is asked to
// skip what it already shows. It reports whether the turn succeeded. It
// returns an error when a post could not be recorded; that post is
// remembered, so this process does not make it again, and is recorded the
// next time the turn's posting resumes. When the engine stops midway, what
// is left stays to be posted on the next start.
func (e *Engine) post(ctx context.Context, sess *Session, id int, th Thread, images map[int]Image, retry bool) (bool, error) {
	t := sess.Turn(id)
	ref := JobRef{SessionID: sess.ID, TurnID: id}
	since := t.StartedAt
	if since.IsZero() {
		since = t.QueuedAt
	}
	since = since.Add(-clockSkew)
	var text string
	switch {
	case t.Status == StatusFailed:
		text = "❌ " + t.Error
	case t.Status == StatusCanceled:
		text = canceledText(t)
	case t.Kind == KindUndo:
		to := 0
		if v := sess.Version(t.Base); v != nil {
			to = v.Parent
		}
		text = fmt.Sprintf("↩️ back to v%d: the next reply refines it", to)
	case t.Kind == KindAnswer:
		text = answerText(t.Answer)
	}
	if text != "" {
		if !e.madePost(ref, 0) {
			if err := e.stillHeld(ctx, sess.ID); err != nil {
				return false, err
			}
			if !e.reply(ctx, sess, th, text, since, retry) {
				return false, nil
			}
			e.notePost(ref, 0)
		}
		return t.Status == StatusDone, e.recordPost(ctx, ref, 0)
	}
	if t.Answer != "" && !slices.Contains(t.Posted, 0) {
		// Words beside the images go first, as post 0.
		if !e.madePost(ref, 0) {
			if err := e.stillHeld(ctx, sess.ID); err != nil {
				return false, err
			}
			if !e.reply(ctx, sess, th, answerText(t.Answer), since, retry) {
				return true, nil
			}
			e.notePost(ref, 0)
		}
		if err := e.recordPost(ctx, ref, 0); err != nil {
			return true, err
		}
	}
	for _, n := range t.posts() {
		if slices.Contains(t.Posted, n) {
			continue
		}
		if sess.Version(n).Deleted != nil { // deleted before it was shown: nothing to post
			if err := e.recordPost(ctx, ref, n); err != nil {
				return true, err
			}
			continue
		}
		if !e.madePost(ref, n) {
			if err := e.stillHeld(ctx, sess.ID); err != nil {
				return false, err
			}
			if !e.postImage(ctx, sess, t, n, th, images, retry, since) {
				return true, nil
			}
			e.notePost(ref, n)
		}
		if err := e.recordPost(ctx, ref, n); err != nil {
			return true, err
		}
	}
	return true, nil
}

// postImage posts version n, made by turn t of sess. It reports false when
// the engine stopped before the post was made; a post that fails otherwise
// is given up on (the adapters retry what can be retried) and counts as made:
// the version stays in the session and its buttons elsewhere work.
func (e *Engine) postImage(ctx context.Context, sess *Session, t *Turn, n int, th Thread, images map[int]Image, retry bool, since time.Time) bool {
	if t.Grid {
		return e.postGrid(ctx, sess, t, th, images, retry, since)
	}
	v := sess.Version(n)
	img, ok := images[n]
	if !ok {
		var err error
		if img, err = e.images.Get(ctx, v.Image); err != nil {
			e.log.Error("post image failed: cannot read it", "session", sess.ID, "version", n, "err", err)
			return e.runCtx.Err() == nil
		}
	}
	p := ImagePost{
		SessionID: sess.ID, Version: n, Image: img, Path: e.images.Locate(v.Image),
		Caption: Caption(sess, n), Buttons: Buttons, User: t.User, Retry: retry, Since: since,
		Guard: func(ctx context.Context) error { return e.stillHeld(ctx, sess.ID) },
	}
	if e.cfg.SessionLink != nil {
		p.Link = e.cfg.SessionLink(sess.ID)
	}
	if err := th.PostImage(ctx, p); err != nil {
		if e.runCtx.Err() != nil {
			return false
		}
		e.log.Error("post image failed", "session", sess.ID, "version", n, "err", err)
	}
	return true
}

// recordPost records that post n (a version, or 0 for the text reply) of
// turn ref is made, retrying a failing store; once recorded, the post is no
// longer remembered in memory. The text posted beside a turn's images is
// listed in Posted as 0.
func (e *Engine) recordPost(ctx context.Context, ref JobRef, n int) error {
	err := e.update(ctx, "record a post", ref.SessionID, func(s *Session) error {
		t := s.Turn(ref.TurnID)
		if (n != 0 || len(t.posts()) > 0) && !slices.Contains(t.Posted, n) {
			t.Posted = append(t.Posted, n)
		}
		versions := len(t.Posted)
		if slices.Contains(t.Posted, 0) {
			versions--
		}
		t.Posting = versions < len(t.posts())
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("turn %d: %w", ref.TurnID, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if delete(e.unrecorded[ref], n); len(e.unrecorded[ref]) == 0 {
		delete(e.unrecorded, ref)
	}
	return nil
}

// notePost remembers that post n of turn ref was made, until it is recorded.
func (e *Engine) notePost(ref JobRef, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.unrecorded[ref] == nil {
		e.unrecorded[ref] = map[int]bool{}
	}
	e.unrecorded[ref][n] = true
}

// madePost reports whether this process made post n of turn ref but could
// not record it.
func (e *Engine) madePost(ref JobRef, n int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unrecorded[ref][n]
}

// reply posts text in th unless, on a retry, th already shows it. It
// reports false when the engine stopped before the reply was made.
func (e *Engine) reply(ctx context.Context, sess *Session, th Thread, text string, since time.Time, retry bool) bool {
	if r, ok := th.(Resender); ok && retry {
		done, err := r.Posted(ctx, text, since)
		if err != nil {
			e.log.Warn("checking for an earlier reply failed; posting it", "session", sess.ID, "err", err)
		}
		if done {
			return true
		}
	}
	if err := th.Reply(ctx, text); err != nil {
		if e.runCtx.Err() != nil {
			return false
		}
		e.log.Error("reply failed", "session", sess.ID, "err", err)
	}
	return true
}

// repost finishes posting turn t of sess, which ended but was not all
// posted: an earlier process stopped first, or recording a post failed.
func (e *Engine) repost(sess *Session, t Turn, th Thread) error {
	ctx, cancel := context.WithTimeout(e.runCtx, time.Minute)
	defer cancel()
	e.log.Info("posting the rest of an ended turn's result", "session", sess.ID, "turn", t.ID)
	// A turn canceled while queued by another process may still hold
	// what this one reserved for it.
	e.release(JobRef{SessionID: sess.ID, TurnID: t.ID})
	ok, err := e.post(ctx, sess, t.ID, th, nil, true)
	if err != nil {
		return err
	}
	e.status(th, "")
	if f, isF := th.(Finisher); isF {
		if err := f.Finish(ctx, t.Source, ok); err != nil {
			e.log.Warn("finish marker failed", "session", sess.ID, "err", err)
		}
	}
	return nil
}

// statusAsync sets th's status line in a goroutine of its own, with
// buttons (see turnStatus), and returns a channel closed once it is set
// (or failed).
func (e *Engine) statusAsync(th Thread, text string, buttons []CancelButton) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.turnStatus(th, text, buttons)
	}()
	return done
}

// turnStatus sets th's status line with Cancel buttons where th offers
// them; a failure is only logged.
func (e *Engine) turnStatus(th Thread, text string, buttons []CancelButton) {
	c, ok := th.(CancelOffer)
	if !ok {
		e.status(th, text)
		return
	}
	ctx, cancel := context.WithTimeout(e.runCtx, 30*time.Second)
	defer cancel()
	if err := c.SetTurnStatus(ctx, text, buttons); err != nil && e.runCtx.Err() == nil {
		e.log.Warn("status update failed", "err", err)
	}
}

// status sets th's status line; a failure is only logged.
func (e *Engine) status(th Thread, text string) {
	ctx, cancel := context.WithTimeout(e.runCtx, 30*time.Second)
	defer cancel()
	if err := th.SetStatus(ctx, text); err != nil && e.runCtx.Err() == nil {
		e.log.Warn("status update failed", "err", err)
	}
}

// stillHeld returns ErrLeaseLost if this process no longer holds the lock
// of session id (it froze past the lock's lease and another process took
// the session over), so that it posts nothing the other will post too. A
// store that cannot tell is trusted.
func (e *Engine) stillHeld(ctx context.Context, id string) error {
	e.mu.Lock()
	w := e.sessions[id]
	e.mu.Unlock()
	if w == nil {
		return nil
	}
	held, err := e.limits.Sessions.Held(ctx, id, w.token)
	switch {
	case err != nil:
		e.log.Warn("checking the session's lock failed; posting", "session", id, "err", err)
	case !held:
		return ErrLeaseLost
	}
	return nil
}
