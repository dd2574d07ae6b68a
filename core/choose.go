package core

import (
	"context"
	"fmt"
	"slices"
)

// WholeImage is the "Edit region" menu's choice that clears a region
// chosen before: the next prompt edits the whole image again.
const WholeImage = "whole"

// RegionOption is one choice of a result's "Edit region" menu.
type RegionOption struct {
	Value string // a region name (see ParseRegion), or WholeImage
	Label string
}

// RegionOptions returns the choices of the "Edit region" menu under each
// result: the named regions, in RegionNames' order, then WholeImage.
func RegionOptions() []RegionOption {
	labels := map[string]string{"top": "Top half", "bottom": "Bottom half", "left": "Left half", "right": "Right half"}
	var opts []RegionOption
	for _, n := range RegionNames() {
		label := labels[n]
		if label == "" {
			label = capitalizeFirst(n) + " (a ninth)"
		}
		opts = append(opts, RegionOption{Value: n, Label: label})
	}
	return append(opts, RegionOption{Value: WholeImage, Label: "Whole image (no region)"})
}

func capitalizeFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// ChooseRegion records a choice from the "Edit region" menu under version
// msg.Version of the session of msg's thread (msg.SessionID, when set, must
// be it or an earlier session of the thread): msg.User's next prompt in the
// thread edits only that region of that version, strict or not as the
// prompt and the configuration say. WholeImage clears a choice. The choice
// is kept in the session, so it survives a restart, and is said in the
// thread. Recording the choice marks msg.Delivery handled in the same
// commit, as recording a turn does. Like a button, only the version's
// requester or an admin may choose. It returns an *Error for the user: Invalid for a value that is no
// choice of the menu, NotFound, Forbidden, or Unavailable when the store
// fails.
func (e *Engine) ChooseRegion(ctx context.Context, th Thread, msg Message, region string) error {
	msg.Action = ActionRegion
	if err := e.Allowed(msg); err != nil {
		return err
	}
	msg.User.Admin = msg.User.Admin || slices.Contains(e.cfg.Admins, msg.User.ID)
	spelling := ""
	if region != WholeImage {
		if !slices.ContainsFunc(RegionOptions(), func(o RegionOption) bool { return o.Value == region }) {
			return Errorf(Invalid, "%s is not a choice of the Edit region menu; choose one of its parts, or reply with --region x,y,w,h for a box", quoteValue(region))
		}
		spelling = region
	}
	unlock := e.lockThread(msg.Platform + "\x00" + msg.Thread)
	defer unlock()
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return err
	}
	v := sess.Version(msg.Version)
	if v == nil {
		return Errorf(NotFound, "v%d does not exist in this session", msg.Version)
	}
	if v.Deleted != nil {
		return errDeleted(msg.Version)
	}
	if owner := sess.Turn(v.Turn).User; !msg.User.Admin && owner.ID != msg.User.ID {
		return Errorf(Forbidden, "only %s (who asked for v%d) or an admin can use its buttons", displayName(owner), msg.Version)
	}
	_, err = e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
		if spelling == "" {
			delete(s.Regions, msg.User.ID)
			return nil
		}
		if s.Regions == nil {
			s.Regions = map[string]RegionChoice{}
		}
		s.Regions[msg.User.ID] = RegionChoice{Version: msg.Version, Region: spelling, At: e.now(), Delivery: msg.Delivery}
		return nil
	})
	if KindOf(err) == Internal {
		e.log.Error("recording a region choice failed", "session", sess.ID, "err", err)
		return WrapError(Unavailable, err, "Easel can't save your choice right now; try again in a few minutes")
	}
	if err != nil {
		return err
	}
	who := displayName(msg.User)
	text := fmt.Sprintf("✂️ %s chose %s of v%d: their next reply in this thread changes only that part of v%d", who, RegionLabel(spelling), msg.Version, msg.Version)
	if spelling == "" {
		text = fmt.Sprintf("✂️ %s's next reply edits the whole image again", who)
	}
	if err := th.Reply(ctx, text); err != nil {
		e.log.Warn("saying a region choice in the thread failed", "session", sess.ID, "err", err)
	}
	return nil
}

// pendingRegion applies the region msg's sender chose from a menu, if any,
// to their prompt t: it edits that region of the version the menu was
// under, unless the prompt names a version or a region itself.
func pendingRegion(sess *Session, t *Turn) {
	c, ok := sess.Regions[t.User.ID]
	if !ok || t.Action != ActionPrompt {
		return
	}
	if t.Flags.Region == "" {
		t.Flags.Region = c.Region
		if t.Target == 0 && sess.Version(c.Version) != nil {
			t.Target = c.Version
		}
	}
}
