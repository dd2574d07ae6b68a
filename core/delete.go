package core

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Delete deletes version msg.Version of the session of msg's thread
// (msg.SessionID, when set, must be it or an earlier session of the
// thread), as its requester or an admin asks: the version is marked
// deleted in the session, keeping its place in the tree and its record, its
// post is taken down where the thread can (see Remover), and the thread is
// told. If it was head, head moves to its nearest ancestor not deleted (or
// to none: the next prompt generates afresh). A deleted version can no
// longer be refined, regenerated or used by its buttons. Delete returns an
// *Error for the user: NotFound, Forbidden, Conflict for a version deleted
// already, or Unavailable when the store fails; then nothing changed.
func (e *Engine) Delete(ctx context.Context, th Thread, msg Message) error {
	msg.Action = ActionDelete
	if err := e.Allowed(msg); err != nil {
		return err
	}
	msg.User.Admin = msg.User.Admin || slices.Contains(e.cfg.Admins, msg.User.ID)
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return err
	}
	stored, err := e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
		return deleteVersion(s, msg.Version, msg.User, e.now())
	})
	if KindOf(err) == Internal {
		e.log.Error("recording a deletion failed", "session", sess.ID, "err", err)
		return WrapError(Unavailable, err, "Easel can't save the deletion right now; try again in a moment")
	}
	if err != nil {
		return err
	}
	if r, ok := th.(Remover); ok {
		if err := r.RemoveImage(ctx, stored.ID, msg.Version); err != nil {
			e.log.Warn("taking a deleted version's post down failed", "session", stored.ID, "version", msg.Version, "err", err)
		}
	}
	e.dropImages(ctx, stored, msg.Version)
	if err := th.Reply(ctx, deletedText(stored, msg.Version)); err != nil {
		e.log.Warn("saying a deletion in the thread failed", "session", stored.ID, "err", err)
	}
	return nil
}

// ImageRemover is implemented by ImageStores that can delete bytes.
type ImageRemover interface {
	// Remove deletes ref's bytes; bytes already gone are no error.
	Remove(ctx context.Context, ref ImageRef) error
}

// SessionLister is implemented by SessionStores that can list every
// session, to find what uses an image.
type SessionLister interface {
	// Sessions returns every session.
	Sessions(ctx context.Context) ([]*Session, error)
}

// dropImages removes the bytes of deleted version n of sess from the image
// store, unless something else uses them (the store is content-addressed:
// another version, an original or an attachment, in any session, may hold
// the same bytes). It needs an image store that can delete and a session
// store that can list every session; without them, or when listing fails,
// the bytes stay. Failures are logged.
func (e *Engine) dropImages(ctx context.Context, sess *Session, n int) {
	rm, canRemove := e.images.(ImageRemover)
	ls, canList := e.store.(SessionLister)
	if !canRemove || !canList {
		return
	}
	all, err := ls.Sessions(ctx)
	if err != nil {
		e.log.Warn("a deleted version's image stays: listing sessions failed", "session", sess.ID, "err", err)
		return
	}
	v := sess.Version(n)
	refs := []ImageRef{v.Image}
	if v.Original != nil {
		refs = append(refs, *v.Original)
	}
	for _, ref := range refs {
		if imageUsed(all, ref.SHA256) {
			continue
		}
		if err := rm.Remove(ctx, ref); err != nil {
			e.log.Warn("removing a deleted version's image failed", "session", sess.ID, "version", n, "err", err)
		}
	}
}

// imageUsed reports whether a version that is not deleted, its original,
// or an attachment of any turn, in sessions, holds the bytes of hash.
func imageUsed(sessions []*Session, hash string) bool {
	for _, s := range sessions {
		for _, v := range s.Versions {
			if v.Deleted == nil && (v.Image.SHA256 == hash || v.Original != nil && v.Original.SHA256 == hash) {
				return true
			}
		}
		for _, t := range s.Turns {
			if slices.ContainsFunc(t.Inputs, func(in ImageRef) bool { return in.SHA256 == hash }) {
				return true
			}
		}
	}
	return false
}

// deleteVersion marks version n of s deleted by by at now, moving head off
// it. It returns an *Error, and changes nothing, when there is no such
// version, by may not delete it, or it is deleted already.
func deleteVersion(s *Session, n int, by User, now time.Time) error {
	v := s.Version(n)
	switch {
	case v == nil:
		return Errorf(NotFound, "v%d does not exist in this session", n)
	case v.Deleted != nil:
		return Errorf(Conflict, "v%d was deleted already", n)
	}
	if owner := s.Turn(v.Turn).User; !by.Admin && owner.ID != by.ID {
		return Errorf(Forbidden, "only %s (who asked for v%d) or an admin can delete it", displayName(owner), n)
	}
	v.Deleted = &Deletion{By: User{ID: by.ID, Name: by.Name}, At: now}
	if s.Head == n {
		s.Head = s.liveAncestor(v.Parent)
	}
	return nil
}

// liveAncestor returns n, or its nearest ancestor that is not deleted; 0
// for none.
func (s *Session) liveAncestor(n int) int {
	for _, v := range slices.Backward(s.Lineage(n)) {
		if v.Deleted == nil {
			return v.N
		}
	}
	return 0
}

// deletedText is what the thread is told when version n of s was deleted.
func deletedText(s *Session, n int) string {
	text := fmt.Sprintf("🗑️ v%d deleted by %s", n, displayName(s.Version(n).Deleted.By))
	if s.Head == 0 {
		return text + "; the next prompt starts a new image"
	}
	return fmt.Sprintf("%s; replies now refine v%d", text, s.Head)
}

// errDeleted says version n was deleted and cannot be used.
func errDeleted(n int) error {
	return Errorf(Conflict, "v%d was deleted; it can no longer be refined or regenerated", n)
}

// live returns errDeleted if version n of s is deleted, else nil.
func (s *Session) live(n int) error {
	if v := s.Version(n); v != nil && v.Deleted != nil {
		return errDeleted(n)
	}
	return nil
}
