package slack

import (
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// TestEditRegionMenu: each result carries an "Edit region" menu (a Block
// Kit static_select offering the regions); after ana chooses one, the
// thread says so, bob's reply is still a whole-image edit, and ana's next
// reply edits only that region of the version the menu was under (a mask
// reaches the provider, the caption names the region); her reply after
// that is a whole-image edit again. Bob may not choose on ana's image, and
// a forged option is refused with a note to the chooser alone.
func TestEditRegionMenu(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot")
	h.images(1)
	b1, session := h.buttons("C1", root, 1)
	h.settle()

	// The menu offers every region, then the whole image.
	m, _ := h.fake.Message("C1", b1)
	blocks := string(m.Blocks)
	for _, o := range core.RegionOptions() {
		if !strings.Contains(blocks, `"value":"`+session+`:1:`+o.Value+`"`) {
			t.Errorf("the menu lacks %q", o.Value)
		}
	}
	if !strings.Contains(blocks, `"type":"static_select"`) || !strings.Contains(blocks, "Edit region") {
		t.Fatalf("no Edit region menu under v1: %s", blocks)
	}

	h.deliver(h.fake.Select(t, bob, "C1", b1, regionActionID, session+":1:top"))
	h.ephemeral(bob, "only ana")
	h.deliver(h.fake.SelectForged(t, ana, "C1", b1, regionActionID, session+":1:top-left\x1b[2J"))
	h.ephemeral(ana, "is not a choice of the Edit region menu")
	h.deliver(h.fake.SelectForged(t, ana, "C1", b1, regionActionID, session+":1:10,10,50,50"))
	h.ephemeral(ana, `"10,10,50,50" is not a choice`)

	h.deliver(h.fake.Select(t, ana, "C1", b1, regionActionID, session+":1:top-left"))
	h.fake.WaitFor(t, "the choice said in the thread", func() bool {
		for _, r := range h.fake.Replies("C1", root) {
			if strings.Contains(r.Text, "ana chose the top-left part of v1: their next reply in this thread changes only that part of v1") {
				return true
			}
		}
		return false
	})

	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: bob, Text: "add a bird", ThreadTS: root})
	h.deliver(envs...)
	h.images(2)
	_, envs = h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "a red lid", ThreadTS: root})
	h.deliver(envs...)
	h.images(3)
	_, envs = h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "brighter", ThreadTS: root})
	h.deliver(envs...)
	ups := h.images(4)
	h.settle()

	reqs := h.gen.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d provider calls, want 4", len(reqs))
	}
	if reqs[1].Mask != nil || reqs[1].Flags.Region != "" {
		t.Error("bob's reply was a region edit")
	}
	if r := reqs[2]; r.Mask == nil || r.Flags.Region != "top-left" || r.Parent != 1 {
		t.Errorf("ana's reply: mask %v, region %q, from v%d; want a top-left edit of v1", r.Mask != nil, r.Flags.Region, r.Parent)
	}
	if reqs[3].Mask != nil {
		t.Error("ana's second reply was a region edit too")
	}
	if !strings.Contains(ups[2].InitialComment, "region top-left") {
		t.Errorf("v3's caption %q does not name the region", ups[2].InitialComment)
	}
}

// TestHostileRegionValues: a reply whose --region carries escape
// sequences, a huge number, NaN or thousands of commas, and menu choices
// forged with control characters, are each refused with a note to the
// sender alone that carries no control or bidirectional character; nothing
// reaches the provider.
func TestHostileRegionValues(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot")
	h.images(1)
	b1, session := h.buttons("C1", root, 1)
	h.settle()

	replies := []struct{ text, says string }{
		{"red --region \"\x1b]0;pwned\x07top\"", "is not a region"},
		{"red --region 99999999999999999999,0,1,1", "out of range"},
		{"red --region NaN,0,10,10", "not a percentage"},
		{"red --region -5,0,10,10", "not a percentage"},
		{"red --region " + strings.Repeat(",", 3000), "has 3001 numbers"},
		{"red --region 1,2,3,\u202e4", "not a percentage"},
	}
	for _, r := range replies {
		_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: r.text, ThreadTS: root})
		h.deliver(envs...)
		h.ephemeral(ana, r.says)
	}
	h.deliver(h.fake.SelectForged(t, ana, "C1", b1, regionActionID, session+":1:\u202etop\x1b[2J"))
	h.ephemeral(ana, "is not a choice")
	h.deliver(h.fake.SelectForged(t, ana, "C1", b1, regionActionID, "nosuchsession:1:top"))
	h.settle()
	for _, e := range h.fake.Ephemerals() {
		if err := coretest.Inert(e.Text); err != nil {
			t.Errorf("note %q: %v", e.Text, err)
		}
	}
	if n := len(h.gen.Requests()); n != 1 {
		t.Errorf("%d provider calls, want only the first image's", n)
	}
}
