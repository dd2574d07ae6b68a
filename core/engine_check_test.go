package core_test

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

// TestEngineCheck checks that Check refuses what Handle would, with the
// same error, and records and holds nothing: not a session, not a slot of
// the sender's turns in flight, not a share of a quota.
func TestEngineCheck(t *testing.T) {
	gen := &fakeGen{gate: make(chan struct{})}
	r := newRig(t, core.EngineConfig{MaxPerUser: 2, MaxQueue: 1, Quotas: core.Quotas{ImagesPerUserDay: 3},
		Access: core.Access{Users: []string{ana.ID, bo.ID}}}, gen)
	openGate := opener(t, gen.gate)
	r.open()
	ctx := context.Background()
	check := func(thread string, user core.User, text string) error {
		return r.engine.Check(ctx, core.Message{Platform: "slack", Workspace: "W1", Thread: thread, User: user, Text: text})
	}
	th := newThread()
	r.mustAsk(th, "t1", ana, "a fox") // running, held at the gate: 1 of ana's 2 slots, 1 of her 3 images

	cases := []struct {
		thread string
		user   core.User
		text   string
		kind   core.ErrorKind
		says   string
	}{
		{"t2", ana, strings.Repeat("x", 32001), core.Invalid, "the limit is 32000"},
		{"t2", ana, "a fox --n 9", core.Invalid, "--n 9"},
		{"t2", ana, "a fox --provider nope", core.Invalid, "--provider nope"},
		{"t2", ana, "   ", core.Invalid, "the prompt is empty"},
		{"t2", core.User{ID: "U3", Name: "cy"}, "a fox", core.Forbidden, "you don't have access"},
		{"t2", ana, "a fox --n 3", core.Quota, "only 2 of your 3 images"},
		{"t1", bo, "a fox", core.Busy, "this thread already has 1 requests waiting"},
		{"t2", ana, "a fox", "", ""},
	}
	for _, c := range cases {
		err := check(c.thread, c.user, c.text)
		_, herr := r.engine.Handle(ctx, newThread(), core.Message{Platform: "slack", Workspace: "W1", Thread: c.thread, User: c.user, Text: c.text})
		switch {
		case c.kind == "" && (err != nil || herr != nil):
			t.Errorf("Check(%.20q) = %v and Handle %v, want both to accept it", c.text, err, herr)
		case c.kind != "" && (core.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.says)):
			t.Errorf("Check(%.20q) = %v, want %s saying %q", c.text, err, c.kind, c.says)
		case c.kind != "" && (herr == nil || herr.Error() != err.Error()):
			t.Errorf("Check(%.20q) = %v but Handle says %v", c.text, err, herr)
		}
	}
	// Ana now has 2 turns in flight, her most.
	if err := check("t3", ana, "a fox"); core.KindOf(err) != core.Busy || !strings.Contains(err.Error(), "2 requests in progress") {
		t.Errorf("Check with every slot taken = %v, want Busy", err)
	}
	if err := check("t3", bo, "a fox --n 3"); err != nil {
		t.Errorf("Check for another sender = %v", err)
	}

	// Nothing Check saw was recorded or held: bo's whole quota is still his.
	for range 5 {
		if err := check("t4", bo, "a fox --n 3"); err != nil {
			t.Fatalf("Check again: %v", err)
		}
	}
	r.mustAsk(newThread(), "t4", bo, "a fox --n 3")
	sessions, err := r.db.Sessions(ctx)
	if err != nil || len(sessions) != 3 {
		t.Errorf("%d sessions stored (%v), want those of the 3 accepted requests", len(sessions), err)
	}
	openGate()
}
