package inbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
)

var ctx = context.Background()

// open returns the store in dir, closed when the test ends.
func open(t *testing.T, dir string) *storage.DB {
	t.Helper()
	db, err := storage.Open(ctx, dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// keys returns the keys of an inbox's unhandled deliveries.
func keys(t *testing.T, in *inbox.Inbox) []string {
	t.Helper()
	left, err := in.Left(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range left {
		out = append(out, d.Key)
	}
	return out
}

// A delivery is recorded once: its retry, also after a restart, is a
// duplicate. It is left unhandled until its job is over, and each
// platform's inbox hands back only its own deliveries.
func TestRecordHandleAndReplay(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	slack, discord := inbox.New(db, "slack", time.Hour, nil), inbox.New(db, "discord", time.Hour, nil)

	key, first, err := slack.Record(ctx, "Ev1", "events_api", []byte(`{"a":1}`))
	if err != nil || !first || key != "slack:Ev1" {
		t.Fatalf("Record = %q, %v, %v; want slack:Ev1, true, nil", key, first, err)
	}
	if _, first, err := slack.Record(ctx, "Ev1", "events_api", []byte(`{"a":1}`)); err != nil || first {
		t.Fatalf("a retry is first = %v (%v), want a duplicate", first, err)
	}
	if _, first, _ := discord.Record(ctx, "Ev1", "message", []byte(`{}`)); !first {
		t.Error("another platform's delivery of the same id counted as a duplicate")
	}
	if got := keys(t, slack); len(got) != 0 {
		t.Errorf("left = %v while this process handles Ev1, want none", got)
	}
	if got := keys(t, inbox.New(db, "slack", time.Hour, nil)); len(got) != 1 || got[0] != "slack:Ev1" {
		t.Errorf("slack's left, seen afresh = %v, want [slack:Ev1]", got)
	}

	// The process stops: the next one finds the delivery, and a retry is
	// still a duplicate.
	db.Close()
	db = open(t, dir)
	slack = inbox.New(db, "slack", time.Hour, nil)
	left, err := slack.Left(ctx)
	if err != nil || len(left) != 1 || left[0].Kind != "events_api" || string(left[0].Payload) != `{"a":1}` {
		t.Fatalf("after a restart, left = %+v, %v", left, err)
	}
	if _, first, _ := slack.Record(ctx, "Ev1", "events_api", nil); first {
		t.Error("a retry after a restart counted as a first delivery")
	}

	var got string
	slack.Handle(ctx, left[0].Key, func(_ context.Context, key string) bool { got = key; return true })
	if got != "slack:Ev1" {
		t.Errorf("the job was given key %q", got)
	}
	if left := keys(t, slack); len(left) != 0 {
		t.Errorf("left after the job = %v, want none", left)
	}
}

// The turn a job records marks its delivery handled in the same commit,
// before the job returns.
func TestTurnMarksItsDeliveryHandled(t *testing.T) {
	db := open(t, t.TempDir())
	in := inbox.New(db, "chat", time.Hour, nil)
	key, _, err := in.Record(ctx, "m1", "message", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	in.Handle(ctx, key, func(ctx context.Context, key string) bool {
		s := &core.Session{ID: "S1", Platform: "chat", Thread: "T1",
			Turns: []core.Turn{{ID: 1, Status: core.StatusDone, Delivery: key}}}
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if left := keys(t, in); len(left) != 0 {
			t.Errorf("left once the turn is recorded = %v, want none", left)
		}
		return true
	})
}

// A job that parks its delivery, or is stopped short, leaves it unhandled.
func TestUnfinishedHandlingLeavesTheDelivery(t *testing.T) {
	db := open(t, t.TempDir())
	in := inbox.New(db, "chat", time.Hour, nil)
	parked, _, _ := in.Record(ctx, "parked", "message", nil)
	in.Handle(ctx, parked, func(context.Context, string) bool { return false })

	stopped, _, _ := in.Record(ctx, "stopped", "message", nil)
	cctx, cancel := context.WithCancel(ctx)
	in.Handle(cctx, stopped, func(context.Context, string) bool { cancel(); return true })

	if got := strings.Join(keys(t, inbox.New(db, "chat", time.Hour, nil)), " "); got != "chat:parked chat:stopped" {
		t.Errorf("left, seen afresh = %q, want both", got)
	}
	// The process still holds the parked one, not the one stopped short.
	if got := strings.Join(keys(t, in), " "); got != "chat:stopped" {
		t.Errorf("left, seen by the process = %q, want chat:stopped", got)
	}
}

// A delivery id too long for a key is kept under its digest.
func TestLongIDs(t *testing.T) {
	db := open(t, t.TempDir())
	in := inbox.New(db, "chat", time.Hour, nil)
	long := strings.Repeat("x", 4000)
	key, first, err := in.Record(ctx, long, "message", nil)
	if err != nil || !first || len(key) > 64 {
		t.Fatalf("Record of a 4000-byte id = %q, %v, %v", key, first, err)
	}
	if again, first, _ := in.Record(ctx, long, "message", nil); again != key || first {
		t.Errorf("a retry of the long id: key %q, first %v", again, first)
	}
	if _, _, err := in.Record(ctx, "", "message", nil); err == nil {
		t.Error("a delivery without an id was recorded")
	}
}

// A store that cannot record says so: the adapter must not acknowledge.
func TestRecordFailure(t *testing.T) {
	in := inbox.New(failing{}, "chat", time.Hour, nil)
	if _, first, err := in.Record(ctx, "m1", "message", nil); err == nil || first {
		t.Errorf("Record on a failing store = %v, %v; want an error", first, err)
	}
}

type failing struct{ inbox.Store }

func (failing) Receive(context.Context, string, string, []byte, time.Duration) (bool, error) {
	return false, errors.New("disk full")
}

// A parked delivery is retried when its topic is woken, once, and parked
// deliveries of one topic are retried in the order they were parked.
func TestParkAndWake(t *testing.T) {
	in := inbox.New(open(t, t.TempDir()), "chat", time.Hour, nil)
	t.Cleanup(in.Close)
	ran := make(chan string, 3)
	far := time.Now().Add(time.Hour)
	for _, name := range []string{"first", "second"} {
		if _, ok := in.Park("T1", far, func() { ran <- name }); !ok {
			t.Fatal("Park refused")
		}
	}
	other, _ := in.Park("T2", far, func() { ran <- "other" })
	in.Wake("T1")
	if got := <-ran + " " + <-ran; got != "first second" {
		t.Errorf("retried %q, want first then second", got)
	}
	in.Wake("T1") // nothing is parked there any more
	if !other() {
		t.Error("unpark of a delivery still parked reported false")
	}
	in.Wake("T2")
	select {
	case name := <-ran:
		t.Errorf("%s retried after Wake found nothing, or after unpark", name)
	default:
	}
}

// A delivery is retried at its deadline if nothing wakes it first, and a
// job that finds its wait over after parking takes it back only if it was
// not retried meanwhile.
func TestParkDeadlineAndUnpark(t *testing.T) {
	in := inbox.New(open(t, t.TempDir()), "chat", time.Hour, nil)
	t.Cleanup(in.Close)
	ran := make(chan struct{}, 1)
	unpark, _ := in.Park("T1", time.Now(), func() { ran <- struct{}{} })
	<-ran
	if unpark() {
		t.Error("unpark reported true after the deadline's retry")
	}
	unpark, _ = in.Park("T1", time.Now().Add(time.Hour), func() { ran <- struct{}{} })
	if !unpark() {
		t.Error("unpark before any wake reported false")
	}
	in.Wake("T1")
	select {
	case <-ran:
		t.Error("a delivery taken back by unpark was retried")
	default:
	}
}

// Close drops parked deliveries (they stay unhandled, for the next start)
// and starts no retry after it; Park after Close parks nothing and tells
// the job not to carry on.
func TestCloseStopsParking(t *testing.T) {
	in := inbox.New(open(t, t.TempDir()), "chat", time.Hour, nil)
	ran := make(chan struct{}, 2)
	in.Park("T1", time.Now().Add(time.Hour), func() { ran <- struct{}{} })
	in.Close()
	in.Wake("T1")
	unpark, ok := in.Park("T1", time.Now(), func() { ran <- struct{}{} })
	if !ok || unpark() {
		t.Errorf("Park after Close = %v, unpark %v; want parked nothing and a job that waits", ok, unpark())
	}
	select {
	case <-ran:
		t.Error("a retry ran after Close")
	default:
	}
}

// Left may be called again while the process runs, to take up what another
// process sharing the store left: it hands back each delivery once, and
// never one this process is handling.
func TestLeftAgainTakesUpOnlyWhatNobodyHandles(t *testing.T) {
	db := open(t, t.TempDir())
	dead := inbox.New(db, "chat", time.Hour, nil) // a process that died with m1
	if _, _, err := dead.Record(ctx, "m1", "message", nil); err != nil {
		t.Fatal(err)
	}
	in := inbox.New(db, "chat", time.Hour, nil)
	mine, _, _ := in.Record(ctx, "m2", "message", nil)
	if got := strings.Join(keys(t, in), " "); got != "chat:m1" {
		t.Fatalf("first take-up = %q, want chat:m1", got)
	}
	if got := keys(t, in); len(got) != 0 {
		t.Errorf("second take-up = %v, want none: m1 is being handled", got)
	}
	in.Handle(ctx, mine, func(context.Context, string) bool { return true })
	in.Handle(ctx, "chat:m1", func(context.Context, string) bool { return true })
	if got := keys(t, inbox.New(db, "chat", time.Hour, nil)); len(got) != 0 {
		t.Errorf("left after both were handled = %v", got)
	}
}
