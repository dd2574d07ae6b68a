package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A turn that makes two to four images posts them as one grid, a preview
// of the candidates with a pick button for each (see Grid, PickButtons). A
// pick is a turn of its own: it moves head to the candidate and posts its
// image, as stored, as a result.

// pickable checks a pick of version pick from the grid named by its first
// version, grid: it returns an Invalid *Error for the user unless pick is
// one of that grid's candidates.
func pickable(sess *Session, grid, pick int) error {
	v := sess.Version(grid)
	if v == nil {
		return Errorf(Invalid, "there is no grid of v%d in this session to pick from", grid)
	}
	t := sess.Turn(v.Turn)
	outs := t.Outputs
	if !t.Grid || outs[0] != grid {
		return Errorf(Invalid, "v%d heads no grid of candidates in this session; there is nothing to pick from", grid)
	}
	for _, n := range outs {
		if n == pick {
			return nil
		}
	}
	return Errorf(Invalid, "v%d is not a candidate of this grid; pick one of %s", pick, versionList(outs))
}

// versionList spells versions as "v4, v5 and v6".
func versionList(ns []int) string {
	vs := make([]string, len(ns))
	for i, n := range ns {
		vs[i] = fmt.Sprintf("v%d", n)
	}
	if len(vs) < 2 {
		return strings.Join(vs, "")
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " and " + vs[len(vs)-1]
}

// pick makes the picked candidate head; it costs nothing and calls no
// provider. Its post is the candidate's image (see Turn.posts).
func (e *Engine) pick(j *job) error {
	var sess *Session
	err := e.update(e.runCtx, "record a pick", j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		if s.Version(t.Target) == nil {
			return Errorf(Conflict, "v%d is no longer in this session", t.Target)
		}
		s.Head = t.Target
		t.Kind, t.Base, t.Status, t.StartedAt, t.FinishedAt = KindPick, t.Target, StatusDone, j.started, e.now()
		t.Posting = true
		return nil
	}, &sess)
	if KindOf(err) == Conflict && !errors.Is(err, ErrLeaseLost) {
		return e.fail(j, err)
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	return e.conclude(j, sess, nil)
}

// posts returns the image posts of turn t, each named by a version: one
// per output; or one grid of several outputs, named by the first; or the
// picked version.
func (t *Turn) posts() []int {
	switch {
	case t.Kind == KindPick:
		return []int{t.Base}
	case t.Grid:
		return t.Outputs[:1]
	}
	return t.Outputs
}

// postGrid posts the grid of turn t's outputs, a preview of them with a
// pick button for each. The grid is kept in the image store, so it has a
// path; the same outputs make the same grid, so a repost stores nothing
// new. It reports false when the engine stopped before the post was made;
// a grid that cannot be made or posted is given up on, as postImage gives
// up on an image: the candidates stay in the session.
func (e *Engine) postGrid(ctx context.Context, sess *Session, t *Turn, th Thread, images map[int]Image, retry bool, since time.Time) bool {
	cells := make([]Image, len(t.Outputs))
	for i, n := range t.Outputs {
		img, ok := images[n]
		if !ok {
			var err error
			if img, err = e.images.Get(ctx, sess.Version(n).Image); err != nil {
				e.log.Error("post grid failed: cannot read a candidate", "session", sess.ID, "version", n, "err", err)
				return e.runCtx.Err() == nil
			}
		}
		cells[i] = img
	}
	budget := int64(maxGridBytes)
	if l, ok := th.(UploadLimiter); ok {
		budget = min(budget, l.UploadLimit())
	}
	grid, err := Grid(cells, budget)
	if err != nil {
		e.log.Error("post grid failed", "session", sess.ID, "versions", t.Outputs, "err", err)
		return true
	}
	path := ""
	if ref, err := e.images.Put(ctx, grid); err != nil {
		e.log.Warn("storing a grid failed; posting it without a path", "session", sess.ID, "err", err)
	} else {
		path = e.images.Locate(ref)
	}
	p := ImagePost{
		SessionID: sess.ID, Version: t.Outputs[0], Image: grid, Path: path,
		Caption: GridCaption(sess, t.Outputs), Buttons: PickButtons(t.Outputs), User: t.User, Retry: retry, Since: since,
		Guard:      func(ctx context.Context) error { return e.stillHeld(ctx, sess.ID) },
		Candidates: t.Outputs,
	}
	if e.cfg.SessionLink != nil {
		p.Link = e.cfg.SessionLink(sess.ID)
	}
	if err := th.PostImage(ctx, p); err != nil {
		if e.runCtx.Err() != nil {
			return false
		}
		e.log.Error("post grid failed", "session", sess.ID, "versions", t.Outputs, "err", err)
	}
	return true
}

// GridCaption returns the line posted under the grid of candidates: that
// it is a preview, which version each numbered cell is, then the first
// candidate's caption without its version.
func GridCaption(s *Session, candidates []int) string {
	cells := make([]string, len(candidates))
	for i, n := range candidates {
		cells[i] = fmt.Sprintf("%d = v%d", i+1, n)
	}
	text := "👀 preview — pick one: " + strings.Join(cells, ", ")
	if _, rest, ok := strings.Cut(Caption(s, candidates[0]), " · "); ok {
		text += " · " + rest
	}
	return text
}
