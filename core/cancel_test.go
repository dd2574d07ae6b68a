package core_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

var bob = core.User{ID: "U2", Name: "bob"}

// cancel asks the engine to cancel turn id of thread as by.
func (h *harness) cancel(th core.Thread, thread string, by core.User, id int) error {
	return h.engine.Cancel(context.Background(), th, core.Message{Platform: "test", Thread: thread, User: by}, id)
}

// A running turn canceled by its requester: the provider call is stopped,
// the thread says so once, nothing is posted or counted, and the user's
// slot is free again.
func TestCancelRunningTurn(t *testing.T) {
	h := newHarness(t, core.EngineConfig{MaxPerUser: 1})
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox"))
	waitCalls(t, h.gen, 1)

	if err := h.cancel(th, "t1", ana, q.TurnID); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 1)
	s := h.session(q.SessionID)
	tu := s.Turn(q.TurnID)
	if tu.Status != core.StatusCanceled || tu.Cancel == nil || tu.Cancel.By.ID != ana.ID || tu.Posting || len(tu.Outputs) != 0 {
		t.Fatalf("canceled turn recorded as %+v", tu)
	}
	if len(th.Posts) != 0 || !slices.Equal(th.Replies, []string{"🛑 canceled by ana"}) || !slices.Equal(th.Finished, []bool{false}) {
		t.Errorf("thread shows posts %d, replies %q, finished %v", len(th.Posts), th.Replies, th.Finished)
	}
	u, err := h.db.UsageTotals(context.Background(), core.UserDayKey("test", ana.ID, time.Now()))
	if err != nil || u.Turns != 0 || u.Images != 0 {
		t.Errorf("usage after a canceled call: %+v, %v", u, err)
	}
	// The slot is free again: with one allowed, a new turn is taken.
	close(gate)
	h.send(th, msg("t1", "a blue fox"))
	th.WaitTurns(t, 2)
	if len(th.Posts) != 1 || th.Posts[0].Version != 1 {
		t.Errorf("after the cancel: posts %+v", th.Posts)
	}
}

// A queued turn is dropped without a provider call; the one before it
// runs as usual, and statuses carry the turn they are about.
func TestCancelQueuedTurn(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	th := &offerThread{Thread: coretest.NewThread()}
	h.send(th, msg("t1", "a red fox"))
	q := h.send(th, msg("t1", "make it blue"))
	waitCalls(t, h.gen, 1)
	if err := h.cancel(th, "t1", ana, q.TurnID); err != nil {
		t.Fatal(err)
	}
	if s := h.session(q.SessionID); s.Turn(q.TurnID).Status != core.StatusCanceled {
		t.Fatalf("queued turn after cancel: %s", s.Turn(q.TurnID).Status)
	}
	close(gate)
	th.WaitTurns(t, 2)
	if n := h.gen.Calls.Load(); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
	if len(th.Posts) != 1 || !slices.Contains(th.Replies, "🛑 canceled by ana") || len(th.Replies) != 1 {
		t.Errorf("posts %d, replies %q", len(th.Posts), th.Replies)
	}
	if !slices.Contains(th.refs(), core.JobRef{SessionID: q.SessionID, TurnID: q.TurnID}) {
		t.Errorf("no status line offered to cancel the queued turn: %v", th.refs())
	}
}

// Only the requester or an admin may cancel; others change nothing.
func TestCancelWhoMayPress(t *testing.T) {
	h := newHarness(t, core.EngineConfig{Admins: []string{"UADMIN"}})
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	defer close(gate)
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox"))
	waitCalls(t, h.gen, 1)

	err := h.cancel(th, "t1", bob, q.TurnID)
	if core.KindOf(err) != core.Forbidden || !strings.Contains(err.Error(), "only ana") {
		t.Fatalf("bob's cancel: %v", err)
	}
	if s := h.session(q.SessionID); s.Turn(q.TurnID).Cancel != nil {
		t.Fatal("a refused cancel was recorded")
	}
	if err := h.cancel(th, "t1", core.User{ID: "UADMIN", Name: "root"}, q.TurnID); err != nil {
		t.Fatalf("admin's cancel: %v", err)
	}
	th.WaitFor(t, "the cancel note", func(th *coretest.Thread) bool { return slices.Contains(th.Replies, "🛑 canceled by root") })
}

// Canceling a finished turn, a canceled one, an unknown one or through a
// button of another thread's session gets a clear note and changes nothing.
func TestCancelBadInput(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox"))
	th.WaitTurns(t, 1)
	other := h.send(th, msg("t2", "a green owl"))
	th.WaitTurns(t, 2)

	err := h.cancel(th, "t1", ana, q.TurnID)
	if core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "already finished") {
		t.Errorf("cancel of a done turn: %v", err)
	}
	if err := h.cancel(th, "t1", ana, 9); core.KindOf(err) != core.NotFound {
		t.Errorf("cancel of turn 9: %v", err)
	}
	if err := h.cancel(th, "t1", ana, 0); core.KindOf(err) != core.NotFound {
		t.Errorf("cancel of nothing in progress: %v", err)
	}
	forged := core.Message{Platform: "test", Thread: "t1", User: ana, SessionID: other.SessionID}
	if err := h.engine.Cancel(context.Background(), th, forged, 1); core.KindOf(err) != core.NotFound {
		t.Errorf("cancel through a button naming another thread's session: %v", err)
	}
	if s := h.session(other.SessionID); s.Turn(1).Status != core.StatusDone || s.Turn(1).Cancel != nil {
		t.Errorf("the other session changed: %+v", s.Turn(1))
	}

	gate := make(chan struct{})
	h.gen.SetGate(gate)
	q = h.send(th, msg("t1", "make it blue"))
	waitCalls(t, h.gen, 3)
	if err := h.cancel(th, "t1", ana, 0); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 3)
	close(gate)
	err = h.cancel(th, "t1", ana, q.TurnID)
	if core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "canceled already") {
		t.Errorf("second cancel: %v", err)
	}
	if n := strings.Count(strings.Join(th.Replies, "\n"), "🛑"); n != 1 {
		t.Errorf("the cancel was told %d times: %q", n, th.Replies)
	}
}

// A cancel recorded by another engine sharing the store and limits (a
// replica that does not run the turn) stops the call within the poll.
func TestCancelFromAnotherReplica(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gen := &coretest.Generator{}
	gate := make(chan struct{})
	defer close(gate)
	gen.SetGate(gate)
	limits := core.LocalLimiters(2)
	open := func() *core.Engine {
		e, err := core.NewEngine(core.EngineConfig{DefaultProvider: "fake", Limiters: limits, CancelPoll: 20 * time.Millisecond,
			Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}}, db, coretest.ImageDir(t, dir), map[string]core.Generator{"fake": gen}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e.Close(ctx)
		})
		return e
	}
	runs, presses := open(), open()
	th := coretest.NewThread()
	q, err := runs.Handle(context.Background(), th, msg("t1", "a red fox"))
	if err != nil {
		t.Fatal(err)
	}
	waitCalls(t, gen, 1)
	other := coretest.NewThread()
	if err := presses.Cancel(context.Background(), other, core.Message{Platform: "test", Thread: "t1", User: ana}, q.TurnID); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 1)
	if !slices.Equal(th.Replies, []string{"🛑 canceled by ana"}) || len(other.Replies) != 0 {
		t.Errorf("the running replica said %q, the pressed one %q", th.Replies, other.Replies)
	}
	s, err := db.Session(context.Background(), q.SessionID)
	if err != nil || s.Turn(q.TurnID).Status != core.StatusCanceled {
		t.Fatalf("turn after a cancel from another replica: %+v, %v", s.Turn(q.TurnID), err)
	}
}

// offerThread is a Thread whose status line offers Cancel buttons: it
// records each line's buttons.
type offerThread struct {
	*coretest.Thread
	lines [][]core.CancelButton
}

func (o *offerThread) SetTurnStatus(ctx context.Context, status string, buttons []core.CancelButton) error {
	o.Lock()
	o.lines = append(o.lines, slices.Clone(buttons))
	o.Unlock()
	return o.SetStatus(ctx, status)
}

// refs returns every turn a line offered to cancel.
func (o *offerThread) refs() []core.JobRef {
	o.Lock()
	defer o.Unlock()
	var refs []core.JobRef
	for _, l := range o.lines {
		for _, b := range l {
			refs = append(refs, b.Turn)
		}
	}
	return refs
}

// last returns the buttons of the latest line.
func (o *offerThread) last() []core.CancelButton {
	o.Lock()
	defer o.Unlock()
	if len(o.lines) == 0 {
		return nil
	}
	return o.lines[len(o.lines)-1]
}

// While a turn renders and others wait behind it, the status line offers
// to cancel each of them, the one rendering first, and says so.
func TestStatusLineOffersEveryTurn(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	th := &offerThread{Thread: coretest.NewThread()}
	first := h.send(th, msg("t1", "a red fox"))
	waitCalls(t, h.gen, 1)
	th.WaitFor(t, "the rendering line", func(*coretest.Thread) bool { return len(th.lines) == 1 }) // locked by WaitFor
	if b := th.last(); b[0].Label != "Cancel" || b[0].Turn.TurnID != first.TurnID {
		t.Errorf("one turn: buttons %+v", b)
	}
	h.send(th, msg("t1", "make it blue"))
	h.send(th, msg("t1", "add a hat, a very tall and very silly one"))
	want := []string{"Cancel “a red fox”", "Cancel “make it blue”", "Cancel “add a hat, a very tall …”"}
	var labels []string
	for _, b := range th.last() {
		labels = append(labels, b.Label)
	}
	if !slices.Equal(labels, want) {
		t.Errorf("buttons %q, want %q", labels, want)
	}
	th.Lock()
	got := th.Statuses[len(th.Statuses)-1]
	th.Unlock()
	if got != "🎨 rendering v1 with fake (2 more queued)…" {
		t.Errorf("status %q", got)
	}
	// A prompt's control and bidi characters do not reach a button.
	hostile := msg("t1", "\u202eevil\x1b[2J prompt")
	hostile.User = bob // ana has three in progress, her most
	h.send(th, hostile)
	if l := th.last(); len(l) != 4 || strings.ContainsAny(l[3].Label, "\u202e\x1b") || !strings.Contains(l[3].Label, "evil") {
		t.Errorf("a hostile prompt's button: %+v", l)
	}
	// The rendering turn's button still cancels it.
	if err := h.cancel(th, "t1", ana, th.last()[0].Turn.TurnID); err != nil {
		t.Fatal(err)
	}
	close(gate)
	th.WaitTurns(t, 4)
	if s := h.session(first.SessionID); s.Turn(first.TurnID).Status != core.StatusCanceled {
		t.Errorf("the first turn ended %s", s.Turn(first.TurnID).Status)
	}
}

// A turn waiting for a provider slot is canceled at once, without the slot.
func TestCancelWhileWaitingForASlot(t *testing.T) {
	h := newHarness(t, core.EngineConfig{MaxConcurrent: 1})
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	first, waiting := coretest.NewThread(), coretest.NewThread()
	h.send(first, msg("t1", "a red fox"))
	waitCalls(t, h.gen, 1)
	q := h.send(waiting, msg("t2", "a green owl"))
	waiting.WaitFor(t, "the wait for a renderer", func(th *coretest.Thread) bool {
		return slices.ContainsFunc(th.Statuses, func(s string) bool { return strings.Contains(s, "waiting for a free renderer") })
	})
	if err := h.cancel(waiting, "t2", ana, q.TurnID); err != nil {
		t.Fatal(err)
	}
	waiting.WaitTurns(t, 1)
	if !slices.Equal(waiting.Replies, []string{"🛑 canceled by ana"}) {
		t.Errorf("replies %q", waiting.Replies)
	}
	close(gate)
	first.WaitTurns(t, 1)
	if n := h.gen.Calls.Load(); n != 1 || len(first.Posts) != 1 {
		t.Errorf("%d provider calls, %d posts; want the first turn's only", n, len(first.Posts))
	}
}

// A canceled turn's quota hold is released: with one image a day, the
// next request is taken, and the canceled one counted nothing.
func TestCancelReleasesTheQuotaHold(t *testing.T) {
	h := newHarness(t, core.EngineConfig{Quotas: core.Quotas{ImagesPerUserDay: 1}})
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox"))
	waitCalls(t, h.gen, 1)
	if _, err := h.engine.Handle(context.Background(), coretest.NewThread(), msg("t2", "a green owl")); core.KindOf(err) != core.Quota {
		t.Fatalf("a second image while the first is held: %v", err)
	}
	if err := h.cancel(th, "t1", ana, q.TurnID); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 1)
	close(gate)
	h.send(th, msg("t1", "a blue fox"))
	th.WaitTurns(t, 2)
	if len(th.Posts) != 1 {
		t.Errorf("%d posts, want the second request's", len(th.Posts))
	}
}
