package slack

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
)

// grid waits for the pick buttons of the grid in the thread and returns
// the ts of their message and the values by action_id.
func (h *harness) grid(channel, root string) (ts string, picks map[string]string) {
	h.t.Helper()
	h.fake.WaitFor(h.t, "pick buttons", func() bool {
		for _, m := range h.fake.Replies(channel, root) {
			if b := buttonsOf(m.Blocks); b["pick_1"] != "" {
				ts, picks = m.TS, b
				return true
			}
		}
		return false
	})
	return ts, picks
}

// uploadsTitled returns the completed uploads whose title starts with prefix.
func (h *harness) uploadsTitled(prefix string) []slacktest.Upload {
	var ups []slacktest.Upload
	for _, u := range h.fake.Uploads() {
		if u.Completed && strings.HasPrefix(u.Title, prefix) {
			ups = append(ups, u)
		}
	}
	return ups
}

// stored returns the bytes stored for version n of the session of root.
func (h *harness) stored(root string, n int) []byte {
	h.t.Helper()
	sess, err := h.engine.Session(context.Background(), Platform, threadKey("C1", root))
	if err != nil {
		h.t.Fatal(err)
	}
	img, err := h.store.Get(context.Background(), sess.Version(n).Image)
	if err != nil {
		h.t.Fatal(err)
	}
	return img.Data
}

// forge returns a click on pick_1 of message ts whose value picks
// version v instead.
func (h *harness) forge(user, ts, session string, v int) slacktest.Envelope {
	h.t.Helper()
	env := h.fake.Click(h.t, user, "C1", ts, "pick_1")
	env.Payload = bytes.Replace(env.Payload, []byte(`"value":"`+session+`:1:1"`), []byte(`"value":"`+pickValue(session, 1, v)+`"`), 1)
	return env
}

func TestVariationsPostOneGridAndAPickPostsTheCandidate(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot --n 4")
	ts, picks := h.grid("C1", root)
	h.settle()
	if ups := h.uploadsTitled("v"); len(ups) != 1 || ups[0].Title != "v1–v4 (preview)" || !strings.Contains(ups[0].InitialComment, "preview — pick one") {
		t.Fatalf("uploads for 4 candidates: %+v, want one grid", ups)
	}
	session, _, _ := parseValue(picks["pick_1"])
	for i, want := range []string{"1", "2", "3", "4"} {
		if picks["pick_"+want] != pickValue(session, 1, i+1) {
			t.Errorf("pick_%s = %q", want, picks["pick_"+want])
		}
	}

	h.deliver(h.fake.Click(t, ana, "C1", ts, "pick_3"))
	h.buttons("C1", root, 3)
	ups := h.uploadsTitled("v3")
	if len(ups) != 1 || ups[0].ThreadTS != root {
		t.Fatalf("uploads of v3 after the pick: %+v", ups)
	}
	if !bytes.Equal(ups[0].Data, h.stored(root, 3)) {
		t.Error("the picked image is not v3's stored bytes")
	}
	h.settle()

	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it blue", ThreadTS: root})
	h.deliver(envs...)
	h.buttons("C1", root, 5)
	if req := h.gen.Requests()[1]; req.Kind != core.KindRefine || req.Base == nil || !bytes.Equal(req.Base.Data, h.stored(root, 3)) {
		t.Errorf("the reply after the pick did not refine v3: %s", req.Kind)
	}
	h.settle()

	// A forged pick of v5, a refinement and no candidate, is refused.
	h.deliver(h.forge(ana, ts, session, 5))
	h.ephemeral(ana, "v5 is not a candidate of this grid")
	// Someone else may not pick.
	h.deliver(h.fake.Click(t, bob, "C1", ts, "pick_2"))
	h.ephemeral(bob, "only ana")
	h.settle()
	if n := len(h.gen.Requests()); n != 2 {
		t.Errorf("%d provider calls, want 2 (picks call none)", n)
	}
	if ups := h.uploadsTitled("v2"); len(ups) != 0 {
		t.Errorf("a refused pick posted v2")
	}
}

func TestPickAfterRestart(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot --n 2")
	ts, _ := h.grid("C1", root)
	h.settle()
	// A new bot value knows nothing of the thread: the button's value and
	// the stored session are enough.
	h.bot.threads = newThreadCache()
	h.deliver(h.fake.Click(t, ana, "C1", ts, "pick_2"))
	h.buttons("C1", root, 2)
	if ups := h.uploadsTitled("v2"); len(ups) != 1 || !bytes.Equal(ups[0].Data, h.stored(root, 2)) {
		t.Errorf("uploads of v2 after a restart: %d, or not its stored bytes", len(ups))
	}
}

// A grid reposted after a crash is found in the thread and not posted again.
func TestGridRepostSkipsWhatTheThreadShows(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot --n 2")
	_, picks := h.grid("C1", root)
	h.settle()
	session, _, _ := parseValue(picks["pick_1"])
	grid := h.uploadsTitled("v1–v2")[0]
	th := h.bot.thread(teamID{team: h.fake.TeamID}, "C1", root)
	post := core.ImagePost{SessionID: session, Version: 1, Image: core.Image{Data: grid.Data, MIME: "image/png"},
		Caption: "grid", Buttons: core.PickButtons([]int{1, 2}), Candidates: []int{1, 2}, Retry: true, Since: time.Now().Add(-time.Minute)}
	if err := th.PostImage(context.Background(), post); err != nil {
		t.Fatal(err)
	}
	buttons := 0
	for _, m := range h.fake.Replies("C1", root) {
		if buttonsOf(m.Blocks)["pick_1"] != "" {
			buttons++
		}
	}
	if ups := h.uploadsTitled("v1–v2"); len(ups) != 1 || buttons != 1 {
		t.Errorf("after a repost of a grid: %d uploads, %d pick messages; want 1 and 1", len(ups), buttons)
	}
}
