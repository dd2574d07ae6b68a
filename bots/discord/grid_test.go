package discord_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
)

// stored returns the bytes stored for version n of the session of thread.
func (h *harness) stored(thread string, n int) []byte {
	h.t.Helper()
	sess, err := h.engine.Session(context.Background(), "discord", thread)
	if err != nil {
		h.t.Fatal(err)
	}
	img, err := h.images.Get(context.Background(), sess.Version(n).Image)
	if err != nil {
		h.t.Fatal(err)
	}
	return img.Data
}

// picks returns the custom ids of a grid's pick buttons, in order.
func picks(m discordtest.Message) []string {
	var ids []string
	for _, b := range m.Buttons() {
		if strings.HasPrefix(b.CustomID, "easel:pick:") {
			ids = append(ids, b.CustomID)
		}
	}
	return ids
}

// ephemeralNote waits for the ephemeral follow-up of interaction ic and
// returns its text.
func (h *harness) ephemeralNote(ic discordtest.Interaction) string {
	h.t.Helper()
	srv := h.srv
	srv.Wait(h.t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
	note, _ := srv.GetMessage(srv.GetInteraction(ic.ID).Followups[0])
	if !note.Ephemeral() {
		h.t.Errorf("note %q is not ephemeral", note.Content)
	}
	return note.Content
}

func TestVariationsPostOneGridAndAPickPostsTheCandidate(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a red fox --n 4").ID)
	grid := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)
	if n := len(h.results(thread)); n != 1 {
		t.Fatalf("%d results for 4 candidates, want one grid", n)
	}
	if len(grid.Attachments) != 1 || !strings.HasSuffix(grid.Attachments[0].Filename, "-grid.png") || !strings.Contains(grid.Content, "preview — pick one") {
		t.Errorf("grid = %q with files %+v", grid.Content, grid.Attachments)
	}
	ids := picks(grid)
	session := strings.Split(ids[0], ":")[2]
	var want []string
	for n := 1; n <= 4; n++ {
		want = append(want, fmt.Sprintf("easel:pick:%s:1:%d", session, n))
	}
	if !slices.Equal(ids, want) || len(grid.Buttons()) != 4 {
		t.Fatalf("grid buttons %+v, want the four picks %q", grid.Buttons(), want)
	}

	ic := srv.Click(t, srv.Alice, grid, ids[2])
	picked := h.waitResults(thread, 2)[1]
	h.waitIdle(thread)
	if got := srv.GetInteraction(ic.ID); got.AckType != discordtest.CallbackDeferredUpdate {
		t.Errorf("pick acknowledged with type %d", got.AckType)
	}
	if len(picked.Attachments) != 1 || !bytes.Equal(picked.Attachments[0].Data, h.stored(thread, 3)) || !strings.HasPrefix(picked.Content, "v3") {
		t.Errorf("picked result %q is not v3's stored bytes", picked.Content)
	}
	if !strings.Contains(button(t, picked, "regenerate"), ":3") {
		t.Errorf("the picked result lacks v3's buttons: %+v", picked.Buttons())
	}

	srv.Say(srv.Alice, thread, "make it blue")
	h.waitResults(thread, 3)
	h.waitIdle(thread)
	if req := h.gen.Requests()[1]; req.Kind != core.KindRefine || req.Base == nil || !bytes.Equal(req.Base.Data, h.stored(thread, 3)) {
		t.Errorf("the reply after the pick did not refine v3: %s", req.Kind)
	}

	// A forged pick of v5, a refinement and no candidate, is refused.
	forged := srv.ClickForged(t, srv.Alice, grid, fmt.Sprintf("easel:pick:%s:1:5", session))
	if note := h.ephemeralNote(forged); !strings.Contains(note, "v5 is not a candidate of this grid") {
		t.Errorf("forged pick answered %q", note)
	}
	// Someone else may not pick; an admin may.
	if note := h.ephemeralNote(srv.Click(t, srv.Bob, grid, ids[1])); !strings.Contains(note, "only alice") {
		t.Errorf("Bob's pick answered %q", note)
	}
	admin := srv.AddUser("root")
	admin.Admin = true
	srv.Click(t, admin, grid, ids[1])
	h.waitResults(thread, 4)
	h.waitIdle(thread)
	if n := h.gen.Calls.Load(); n != 2 {
		t.Errorf("%d provider calls, want 2 (picks call none)", n)
	}
}

func TestPickAfterARestart(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	s.unpaced = true
	srv := s.srv
	h := launch(t, s)
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a red fox --n 3").ID)
	grid := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)
	h.stop(10 * time.Second)

	h = launch(t, s)
	srv.Click(t, srv.Alice, grid, picks(grid)[1])
	picked := h.waitResults(thread, 2)[1]
	h.waitIdle(thread)
	if !bytes.Equal(picked.Attachments[0].Data, h.stored(thread, 2)) {
		t.Error("the pick after a restart is not v2's stored bytes")
	}
}

// A grid of candidates each over the upload limit is scaled to fit it.
func TestGridFitsTheUploadLimit(t *testing.T) {
	t.Parallel()
	big := noisePNG(1800, 1600) // about 11 MB: over a bot's 10 MB upload limit
	h := start(t, func(s *setup) { s.gen.SetOutput(func(int) []byte { return big }) })
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a detailed map --n 2").ID)
	grid := h.waitResults(thread, 1)[0]
	if len(grid.Attachments) != 1 || grid.Attachments[0].Size > 10<<20 || len(picks(grid)) != 2 {
		t.Errorf("grid = %q with files %+v", grid.Content, grid.Attachments)
	}
}

// A grid posted by a process that stopped before recording the post is
// found in the thread by the next one, and not posted again.
func TestGridPostedBeforeACrashIsNotPostedAgain(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	s.unpaced = true
	srv := s.srv
	h := launch(t, s)
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a red fox --n 2").ID)
	grid := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)
	sess, err := h.engine.Session(context.Background(), "discord", thread)
	if err != nil {
		t.Fatal(err)
	}
	h.stop(10 * time.Second)

	h = launch(t, s)
	_, err = h.db.UpdateSession(context.Background(), sess.ID, func(s *core.Session) error {
		s.Turns[0].Posting, s.Turns[0].Posted = true, nil // the post was made, never recorded
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := h.engine.Resume(context.Background(), h.bot.Thread); err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want the session left posting", n, err)
	}
	srv.Wait(t, "the repost to be recorded", func() bool {
		s, err := h.engine.Session(context.Background(), "discord", thread)
		return err == nil && !s.Turns[0].Posting
	})
	if rs := h.results(thread); len(rs) != 1 || rs[0].ID != grid.ID {
		t.Errorf("%d results after the repost, want the first grid alone", len(rs))
	}
	srv.Click(t, srv.Alice, grid, picks(grid)[0])
	h.waitResults(thread, 2)
}
