package slack

import (
	"context"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

// A result reposted after a crash (core.ImagePost.Retry) is looked for in
// the thread first: what is there is not posted again, what is missing is.
func TestRepostSkipsWhatTheThreadShows(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a heron")
	up := h.images(1)[0]
	_, session := h.buttons("C1", root, 1)
	h.reacted("C1", root, reactDone)
	th := h.bot.thread(teamID{team: h.fake.TeamID}, "C1", root)
	post := core.ImagePost{SessionID: session, Version: 1, Image: core.Image{Data: up.Data, MIME: "image/png"},
		Caption: "v1", Buttons: core.Buttons, Retry: true, Since: time.Now().Add(-time.Minute)}
	ctx := context.Background()
	if err := th.PostImage(ctx, post); err != nil {
		t.Fatal(err)
	}
	uploads, buttons := 0, 0
	count := func() {
		uploads, buttons = 0, 0
		for _, u := range h.fake.Uploads() {
			if u.Completed && u.Title == "v1" {
				uploads++
			}
		}
		for _, m := range h.fake.Replies("C1", root) {
			if buttonsOf(m.Blocks)["regenerate"] == session+":1" {
				buttons++
			}
		}
	}
	if count(); uploads != 1 || buttons != 1 {
		t.Errorf("after a repost of a whole result: %d uploads, %d buttons messages; want 1 and 1", uploads, buttons)
	}
	// Version 2 was shared but its buttons never posted: only they are.
	post.Version = 2
	post.Retry = false
	post.Buttons = nil
	if err := th.PostImage(ctx, post); err != nil {
		t.Fatal(err)
	}
	post.Buttons, post.Retry = core.Buttons, true
	if err := th.PostImage(ctx, post); err != nil {
		t.Fatal(err)
	}
	v2 := 0
	for _, u := range h.fake.Uploads() {
		if u.Completed && u.Title == "v2" {
			v2++
		}
	}
	if v2 != 1 {
		t.Errorf("v2 shared %d times, want once", v2)
	}
	if !hasText(h, root, "v2: reply in this thread to refine it") {
		t.Error("the missing buttons of v2 were not posted")
	}
	// A reply already in the thread is found; another is not.
	if ok, err := th.Posted(ctx, "v2: reply in this thread to refine it", time.Now().Add(-time.Minute)); err != nil || !ok {
		t.Errorf("Posted(an existing reply) = %v, %v", ok, err)
	}
	if ok, _ := th.Posted(ctx, "never said", time.Now().Add(-time.Minute)); ok {
		t.Error("Posted(a text never posted) = true")
	}
}

func hasText(h *harness, root, text string) bool {
	for _, m := range h.fake.Replies("C1", root) {
		if m.Text == text {
			return true
		}
	}
	return false
}
