package discord_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// regionMenu returns the custom id of the "Edit region" select under
// result m, checking that it offers every region and the whole image.
func regionMenu(t *testing.T, m discordtest.Message) string {
	t.Helper()
	for _, c := range m.Buttons() {
		if c.Type == 3 && strings.HasPrefix(c.CustomID, "easel:region:") {
			var values []string
			for _, o := range c.Options {
				values = append(values, o.Value)
			}
			var want []string
			for _, o := range core.RegionOptions() {
				want = append(want, o.Value)
			}
			if !slices.Equal(values, want) || !strings.Contains(c.Placeholder, "Edit region") {
				t.Errorf("the menu offers %q as %q, want %q", values, c.Placeholder, want)
			}
			return c.CustomID
		}
	}
	t.Fatalf("result %s has no Edit region menu: %+v", m.ID, m.Buttons())
	return ""
}

// TestEditRegionMenu: each result carries an "Edit region" string select;
// after Alice chooses a region (acknowledged in time, said in the thread),
// a restart keeps the choice: Bob's reply is still a whole-image edit,
// and Alice's next reply edits only that region of the version the menu
// was under; the one after that is a whole-image edit again. Bob may not
// choose on Alice's image, and forged values are refused with an
// ephemeral note.
func TestEditRegionMenu(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	s.unpaced = true
	srv := s.srv
	h := launch(t, s)
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a sailboat").ID)
	v1 := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)
	menu := regionMenu(t, v1)

	refused := func(ic discordtest.Interaction, says string) {
		t.Helper()
		srv.Wait(t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
		note, _ := srv.GetMessage(srv.GetInteraction(ic.ID).Followups[0])
		if !note.Ephemeral() || !strings.Contains(note.Content, says) {
			t.Errorf("note %q (ephemeral %v), want one saying %q", note.Content, note.Ephemeral(), says)
		}
		if err := coretest.Inert(note.Content); err != nil {
			t.Errorf("note %q: %v", note.Content, err)
		}
	}
	refused(srv.Choose(t, srv.Bob, v1, menu, "top"), "only alice")
	refused(srv.ChooseForged(t, srv.Alice, v1, menu, "top-left\u202e"), "is not a choice of the Edit region menu")
	refused(srv.ChooseForged(t, srv.Alice, v1, menu, "top", "bottom"), `"" is not a choice`)
	refused(srv.ChooseForged(t, srv.Alice, v1, menu, "../../etc/passwd"), "is not a choice")
	refused(srv.ChooseForged(t, srv.Alice, v1, menu, "\x1b]0;pwned\x07"+strings.Repeat(",", 5000)), "is not a choice")

	ic := srv.Choose(t, srv.Alice, v1, menu, "bottom-right")
	srv.Wait(t, "the choice in the thread", func() bool {
		return slices.ContainsFunc(h.replies(thread), func(s string) bool {
			return strings.Contains(s, "chose the bottom-right part of v1: their next reply in this thread changes only that part of v1")
		})
	})
	if got := srv.GetInteraction(ic.ID); got.AckType != discordtest.CallbackDeferredUpdate || got.AckLatency() > discordtest.InteractionDeadline {
		t.Errorf("the choice was acknowledged with type %d after %s", got.AckType, got.AckLatency())
	}

	srv.Wait(t, "the choice's delivery handled", func() bool {
		left, err := h.db.Unhandled(context.Background())
		return err == nil && len(left) == 0
	})
	h.stop(10 * time.Second)
	h = launch(t, s)

	srv.Say(srv.Bob, thread, "add a gull")
	h.waitResults(thread, 2)
	h.waitIdle(thread)
	srv.Say(srv.Alice, thread, "a red sail")
	results := h.waitResults(thread, 3)
	h.waitIdle(thread)
	srv.Say(srv.Alice, thread, "calmer sea")
	h.waitResults(thread, 4)
	h.waitIdle(thread)

	reqs := h.gen.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	reqs = reqs[1:] // after the restart: Bob's, then Alice's two
	if reqs[0].Mask != nil || reqs[0].Flags.Region != "" {
		t.Error("Bob's reply was a region edit")
	}
	if r := reqs[1]; r.Mask == nil || r.Flags.Region != "bottom-right" || r.Parent != 1 || r.Kind != core.KindBranch {
		t.Errorf("Alice's reply: mask %v, region %q, %s of v%d; want a bottom-right edit of v1", r.Mask != nil, r.Flags.Region, r.Kind, r.Parent)
	}
	if reqs[2].Mask != nil {
		t.Error("Alice's second reply was a region edit too")
	}
	if !strings.Contains(results[2].Content, "region bottom-right") {
		t.Errorf("v3's caption %q does not name the region", results[2].Content)
	}
}
