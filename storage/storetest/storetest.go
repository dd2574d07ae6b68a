// Package storetest is the contract every session store of Easel passes:
// sessions and their thread bindings, updates and the effects core decides
// for them (core.EffectsOf: the job index, usage counters, handled
// deliveries), the durable inbox, dedupe marks with their expiry, and the
// record of starts, and the Slack installations. A backend's tests call Run with a Harness that opens it.
//
// The suite checks each method's documented results and errors, that
// effects are applied in the same transaction as the update that caused
// them (and not at all when the update fails), that concurrent updates of
// one session and of many sessions lose nothing, and that what a backend
// stores survives reopening it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/core"
)

// Backend is what a session store provides to the engine and the adapters.
type Backend interface {
	// SessionByThread, Session, CreateSession, UpdateSession and
	// ActiveJobs are documented on core.Store.
	SessionByThread(ctx context.Context, platform, thread string) (*core.Session, error)
	Session(ctx context.Context, id string) (*core.Session, error)
	CreateSession(ctx context.Context, s *core.Session) error
	UpdateSession(ctx context.Context, id string, fn func(*core.Session) error) (*core.Session, error)
	ActiveJobs(ctx context.Context) ([]core.JobRef, error)
	// Sessions returns every session, most recently updated first.
	Sessions(ctx context.Context) ([]*core.Session, error)
	// UsageTotals is documented on core.UsageReader. Usage returns the
	// counters whose keys start with prefix, in key order.
	UsageTotals(ctx context.Context, key string) (core.UsageTotals, error)
	Usage(ctx context.Context, prefix string) ([]core.UsageRow, error)
	// Receive records a delivery under key, marking key for dedupe for
	// ttl, and reports whether it is the first within ttl; a first
	// delivery is kept until Handled. Handled forgets a delivery (its
	// dedupe mark stays). Unhandled lists the kept deliveries, oldest
	// first.
	Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (bool, error)
	Handled(ctx context.Context, key string) error
	Unhandled(ctx context.Context) ([]core.Delivery, error)
	// MarkEvent marks key for dedupe for ttl and reports whether it was
	// not marked already.
	MarkEvent(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// RecordStart records a start of name at at, forgets those before
	// at-keep and returns those kept, oldest first. Starts returns those
	// at or after since.
	RecordStart(ctx context.Context, name string, at time.Time, keep time.Duration) ([]time.Time, error)
	Starts(ctx context.Context, name string, since time.Time) ([]time.Time, error)
	// SaveInstallation stores a Slack installation under its Key,
	// replacing the one there; Installation returns the one stored under
	// key and whether there is one; DeleteInstallation forgets it and
	// reports whether there was one.
	SaveInstallation(ctx context.Context, rec install.Record) error
	Installation(ctx context.Context, key string) (install.Record, bool, error)
	DeleteInstallation(ctx context.Context, key string) (bool, error)
	// Styles, PutStyle, DeleteStyle, ChannelDefaults and
	// PutChannelDefaults are documented on core.StyleStore. EveryStyle
	// and EveryChannelDefaults call fn with each one of every workspace,
	// in platform, workspace and name (or channel) order.
	core.StyleStore
	EveryStyle(ctx context.Context, fn func(platform, workspace string, s core.Style) error) error
	EveryChannelDefaults(ctx context.Context, fn func(platform, workspace, channel string, d core.ChannelDefaults) error) error
}

// Harness opens the backend under test.
type Harness struct {
	// Open returns a new, empty backend whose clock is now; it is closed
	// when the test ends.
	Open func(t *testing.T, now func() time.Time) Backend
	// Reopen closes b and returns the same store opened again, with the
	// same clock.
	Reopen func(t *testing.T, b Backend) Backend
}

// Run runs the contract suite against the backend h opens.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"Sessions", testSessions},
		{"ThreadRebinding", testThreadRebinding},
		{"UpdateSession", testUpdateSession},
		{"UpdateFailureWritesNothing", testUpdateFailureWritesNothing},
		{"JobLifecycle", testJobLifecycle},
		{"ActiveJobsOrder", testActiveJobsOrder},
		{"UsageCountedOnceWhenDone", testUsage},
		{"TurnHandlesItsDelivery", testTurnHandlesItsDelivery},
		{"Inbox", testInbox},
		{"DedupeExpires", testDedupe},
		{"Starts", testStarts},
		{"Installations", testInstallations},
		{"Styles", testStyles},
		{"ChannelDefaults", testChannelDefaults},
		{"ConcurrentUpdatesOfOneSession", testConcurrentOneSession},
		{"ConcurrentUpdatesOfManySessions", testConcurrentManySessions},
		{"ConcurrentDeliveries", testConcurrentDeliveries},
		{"Durable", testDurable},
		{"CanceledContext", testCanceled},
		{"CanceledTurn", testCanceledTurn},
		{"DeletedVersion", testDeletedVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{t: t, h: h, clock: &clock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}}
			s.b = h.Open(t, s.clock.now)
			tc.run(t, s)
		})
	}
}

// suite is one subtest's backend and clock.
type suite struct {
	t     *testing.T
	h     Harness
	b     Backend
	clock *clock
}

var ctx = context.Background()

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newSession returns a session with no turns bound to thread.
func newSession(id, thread string) *core.Session {
	return &core.Session{ID: id, Platform: "chat", Workspace: "W1", Channel: "C1", Thread: thread,
		CreatedBy: core.User{ID: "U1", Name: "ana"}}
}

// create stores a new session, failing the test on error.
func (s *suite) create(id, thread string) *core.Session {
	s.t.Helper()
	sess := newSession(id, thread)
	if err := s.b.CreateSession(ctx, sess); err != nil {
		s.t.Fatalf("CreateSession(%s): %v", id, err)
	}
	return sess
}

// update applies fn to session id, failing the test on error.
func (s *suite) update(id string, fn func(*core.Session) error) *core.Session {
	s.t.Helper()
	sess, err := s.b.UpdateSession(ctx, id, fn)
	if err != nil {
		s.t.Fatalf("UpdateSession(%s): %v", id, err)
	}
	return sess
}

// queue returns an update that appends a queued turn by user, asked for by
// delivery (may be "").
func queue(user, delivery string, at time.Time) func(*core.Session) error {
	return func(s *core.Session) error {
		s.Turns = append(s.Turns, core.Turn{ID: len(s.Turns) + 1, Kind: core.KindGenerate, Action: core.ActionPrompt,
			User: core.User{ID: user}, Text: "a red fox", Prompt: "a red fox", Status: core.StatusQueued,
			QueuedAt: at, Delivery: delivery})
		return nil
	}
}

// set returns an update that changes turn id with fn.
func set(id int, fn func(*core.Turn)) func(*core.Session) error {
	return func(s *core.Session) error {
		fn(s.Turn(id))
		return nil
	}
}

// finish returns an update that ends turn id done with n images costing
// cost, not yet posted.
func finish(id, n int, cost float64, at time.Time) func(*core.Session) error {
	return func(s *core.Session) error {
		t := s.Turn(id)
		for range n {
			v := len(s.Versions) + 1
			s.Versions = append(s.Versions, core.Version{N: v, Turn: id})
			t.Outputs = append(t.Outputs, v)
		}
		t.Status, t.CostUSD, t.FinishedAt, t.Posting = core.StatusDone, cost, at, true
		return nil
	}
}

func (s *suite) jobs() []core.JobRef {
	s.t.Helper()
	jobs, err := s.b.ActiveJobs(ctx)
	if err != nil {
		s.t.Fatalf("ActiveJobs: %v", err)
	}
	return jobs
}

func (s *suite) usage(key string) core.UsageTotals {
	s.t.Helper()
	u, err := s.b.UsageTotals(ctx, key)
	if err != nil {
		s.t.Fatalf("UsageTotals(%s): %v", key, err)
	}
	return u
}

func (s *suite) inbox() []string {
	s.t.Helper()
	ds, err := s.b.Unhandled(ctx)
	if err != nil {
		s.t.Fatalf("Unhandled: %v", err)
	}
	var keys []string
	for _, d := range ds {
		keys = append(keys, d.Key)
	}
	return keys
}

func testSessions(t *testing.T, s *suite) {
	created := s.create("s1", "t1")
	if created.CreatedAt.IsZero() || !created.UpdatedAt.Equal(created.CreatedAt) {
		t.Errorf("CreateSession set CreatedAt %v, UpdatedAt %v; want both now", created.CreatedAt, created.UpdatedAt)
	}
	for name, get := range map[string]func() (*core.Session, error){
		"Session":         func() (*core.Session, error) { return s.b.Session(ctx, "s1") },
		"SessionByThread": func() (*core.Session, error) { return s.b.SessionByThread(ctx, "chat", "t1") },
	} {
		got, err := get()
		if err != nil || got.ID != "s1" || got.Thread != "t1" || got.CreatedBy.Name != "ana" || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("%s = %+v, %v; want the stored session", name, got, err)
		}
	}
	if err := s.b.CreateSession(ctx, newSession("s1", "t2")); core.KindOf(err) != core.Conflict {
		t.Errorf("CreateSession of an existing id: %v, want a Conflict *core.Error", err)
	}
	if err := s.b.CreateSession(ctx, newSession("", "t3")); err == nil {
		t.Error("CreateSession with an empty id succeeded")
	}
	if _, err := s.b.Session(ctx, "nope"); core.KindOf(err) != core.NotFound {
		t.Errorf("Session of an unknown id: %v, want NotFound", err)
	}
	if _, err := s.b.SessionByThread(ctx, "chat", "nope"); core.KindOf(err) != core.NotFound {
		t.Errorf("SessionByThread of an unknown thread: %v, want NotFound", err)
	}
	if _, err := s.b.SessionByThread(ctx, "other", "t1"); core.KindOf(err) != core.NotFound {
		t.Errorf("SessionByThread on another platform: %v, want NotFound (threads are per platform)", err)
	}
	if _, err := s.b.UpdateSession(ctx, "nope", queue("U1", "", s.clock.now())); core.KindOf(err) != core.NotFound {
		t.Errorf("UpdateSession of an unknown id: %v, want NotFound", err)
	}

	s.clock.advance(time.Minute)
	s.create("s2", "t2")
	s.clock.advance(time.Minute)
	s.create("s3", "t3")
	s.clock.advance(time.Minute)
	s.update("s1", queue("U1", "", s.clock.now()))
	list, err := s.b.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sess := range list {
		ids = append(ids, sess.ID)
	}
	if !slices.Equal(ids, []string{"s1", "s3", "s2"}) {
		t.Errorf("Sessions = %v, want most recently updated first: s1 s3 s2", ids)
	}
}

func testThreadRebinding(t *testing.T, s *suite) {
	s.create("old", "t")
	s.create("new", "t") // "new" in the same thread starts over
	if got, err := s.b.SessionByThread(ctx, "chat", "t"); err != nil || got.ID != "new" {
		t.Errorf("SessionByThread after rebinding = %v, %v; want the new session", got, err)
	}
	if got, err := s.b.Session(ctx, "old"); err != nil || got.ID != "old" {
		t.Errorf("the earlier session by id = %v, %v; want it still readable", got, err)
	}
	s.update("old", queue("U1", "", s.clock.now())) // an old button
	if got, _ := s.b.SessionByThread(ctx, "chat", "t"); got.ID != "new" {
		t.Errorf("updating the old session rebound the thread to it")
	}
}

func testUpdateSession(t *testing.T, s *suite) {
	created := s.create("s1", "t")
	s.clock.advance(time.Minute)
	got := s.update("s1", queue("U1", "", s.clock.now()))
	if len(got.Turns) != 1 || !got.UpdatedAt.Equal(s.clock.now()) || !got.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("UpdateSession returned %d turns, UpdatedAt %v; want 1 turn, now", len(got.Turns), got.UpdatedAt)
	}
	stored, _ := s.b.Session(ctx, "s1")
	if len(stored.Turns) != 1 || stored.Turns[0].Prompt != "a red fox" || !stored.UpdatedAt.Equal(got.UpdatedAt) {
		t.Errorf("stored %+v; want what UpdateSession returned", stored)
	}
	_, err := s.b.UpdateSession(ctx, "s1", func(sess *core.Session) error {
		sess.ID = "other"
		return nil
	})
	if err == nil {
		t.Error("an update that changes the session's id succeeded")
	}
	if _, err := s.b.Session(ctx, "other"); core.KindOf(err) != core.NotFound {
		t.Errorf("a session %q exists after a refused id change", "other")
	}
}

func testUpdateFailureWritesNothing(t *testing.T, s *suite) {
	s.create("s1", "t")
	if _, err := s.b.Receive(ctx, "ev1", "event", []byte("{}"), time.Hour); err != nil {
		t.Fatal(err)
	}
	refusal := core.Errorf(core.Busy, "full")
	_, err := s.b.UpdateSession(ctx, "s1", func(sess *core.Session) error {
		if err := queue("U1", "ev1", s.clock.now())(sess); err != nil {
			return err
		}
		sess.Turns[0].Status, sess.Turns[0].Outputs = core.StatusDone, []int{1}
		return refusal
	})
	if !errors.Is(err, refusal) {
		t.Errorf("UpdateSession returned %v, want fn's error unchanged", err)
	}
	stored, _ := s.b.Session(ctx, "s1")
	if len(stored.Turns) != 0 || len(s.jobs()) != 0 || s.usage(core.UserDayKey("chat", "U1", s.clock.now())).Turns != 0 ||
		!slices.Equal(s.inbox(), []string{"ev1"}) {
		t.Errorf("a failed update left %d turns, jobs %v, usage or a handled delivery (inbox %v)", len(stored.Turns), s.jobs(), s.inbox())
	}
}

func testJobLifecycle(t *testing.T, s *suite) {
	s.create("s1", "t")
	now := s.clock.now()
	s.update("s1", queue("U1", "", now))
	ref := core.JobRef{SessionID: "s1", TurnID: 1}
	steps := []struct {
		what    string
		fn      func(*core.Session) error
		pending bool
	}{
		{"queued", nil, true},
		{"running", set(1, func(t *core.Turn) { t.Status, t.Attempts = core.StatusRunning, 1 }), true},
		{"done, not posted", finish(1, 1, 0, now), true},
		{"posted", set(1, func(t *core.Turn) { t.Posting, t.Posted = false, []int{1} }), false},
	}
	for _, st := range steps {
		if st.fn != nil {
			s.update("s1", st.fn)
		}
		if got := slices.Contains(s.jobs(), ref); got != st.pending {
			t.Errorf("%s: in ActiveJobs = %v, want %v", st.what, got, st.pending)
		}
	}
	// A failed turn is pending until its failure message is posted.
	s.update("s1", queue("U1", "", now))
	s.update("s1", set(2, func(t *core.Turn) { t.Status, t.Posting = core.StatusFailed, true }))
	if !slices.Contains(s.jobs(), core.JobRef{SessionID: "s1", TurnID: 2}) {
		t.Error("a failed turn whose message is not posted left ActiveJobs")
	}
	s.update("s1", set(2, func(t *core.Turn) { t.Posting = false }))
	if len(s.jobs()) != 0 {
		t.Errorf("ActiveJobs = %v after every turn ended and was posted", s.jobs())
	}
	// A session created with a queued turn indexes it at once.
	sess := newSession("s2", "t2")
	_ = queue("U2", "", now)(sess)
	if err := s.b.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.jobs(), []core.JobRef{{SessionID: "s2", TurnID: 1}}) {
		t.Errorf("ActiveJobs = %v, want the turn the new session was created with", s.jobs())
	}
}

func testActiveJobsOrder(t *testing.T, s *suite) {
	base := s.clock.now()
	s.create("a", "ta")
	s.create("b", "tb")
	s.update("b", queue("U1", "", base.Add(2*time.Second)))
	s.update("a", queue("U1", "", base.Add(3*time.Second)))
	s.update("a", queue("U1", "", base.Add(1*time.Second)))
	want := []core.JobRef{{SessionID: "a", TurnID: 2}, {SessionID: "b", TurnID: 1}, {SessionID: "a", TurnID: 1}}
	if got := s.jobs(); !slices.Equal(got, want) {
		t.Errorf("ActiveJobs = %v, want oldest queued first %v", got, want)
	}
}

func testUsage(t *testing.T, s *suite) {
	s.create("s1", "t")
	at := s.clock.now()
	for range 3 {
		s.update("s1", queue("U1", "", at))
	}
	s.update("s1", finish(1, 2, 0.25, at))
	s.update("s1", finish(2, 1, 0.5, at.Add(24*time.Hour))) // the next day
	s.update("s1", set(3, func(t *core.Turn) { t.Status, t.Outputs, t.CostUSD = core.StatusFailed, nil, 9 }))
	s.update("s1", set(1, func(t *core.Turn) { t.Posting, t.Attempts = false, 3 })) // stored again: not counted again
	day, next := core.UserDayKey("chat", "U1", at), core.UserDayKey("chat", "U1", at.Add(24*time.Hour))
	month := core.WorkspaceMonthKey("chat", "W1", at)
	for key, want := range map[string]core.UsageTotals{
		day:                               {Turns: 1, Images: 2, CostUSD: 0.25},
		next:                              {Turns: 1, Images: 1, CostUSD: 0.5},
		month:                             {Turns: 2, Images: 3, CostUSD: 0.75},
		core.UserDayKey("chat", "U9", at): {},
	} {
		if got := s.usage(key); got != want {
			t.Errorf("UsageTotals(%s) = %+v, want %+v", key, got, want)
		}
	}
	s.create("s2", "t2")
	s.update("s2", queue("U_2", "", at)) // "_" is no wildcard in a prefix
	s.update("s2", finish(1, 1, 0, at))
	for prefix, want := range map[string][]string{
		"":             {day, next, core.UserDayKey("chat", "U_2", at), month},
		"user/chat/U1": {day, next},
		"user/chat/U_": {core.UserDayKey("chat", "U_2", at)},
		"workspace/":   {month},
		"nothing/":     nil,
	} {
		rows, err := s.b.Usage(ctx, prefix)
		var keys []string
		for _, r := range rows {
			keys = append(keys, r.Key)
		}
		if err != nil || !slices.Equal(keys, want) {
			t.Errorf("Usage(%q) = %v, %v; want %v in key order", prefix, keys, err, want)
		}
	}
	if rows, _ := s.b.Usage(ctx, day); len(rows) != 1 || rows[0].UsageTotals != (core.UsageTotals{Turns: 1, Images: 2, CostUSD: 0.25}) {
		t.Errorf("Usage(%q) = %+v", day, rows)
	}
}

func testTurnHandlesItsDelivery(t *testing.T, s *suite) {
	s.create("s1", "t")
	for _, key := range []string{"ev1", "ev2"} {
		if first, err := s.b.Receive(ctx, key, "event", []byte(`{"k":"`+key+`"}`), time.Hour); err != nil || !first {
			t.Fatalf("Receive(%s) = %v, %v", key, first, err)
		}
	}
	s.update("s1", queue("U1", "ev1", s.clock.now()))
	if got := s.inbox(); !slices.Equal(got, []string{"ev2"}) {
		t.Errorf("Unhandled = %v after recording ev1's turn, want [ev2]", got)
	}
	if first, _ := s.b.Receive(ctx, "ev1", "event", nil, time.Hour); first {
		t.Error("a redelivery of a handled delivery was taken as a first delivery")
	}
	// A second turn for the handled delivery, or one for a delivery never
	// received, is refused and writes nothing.
	for _, key := range []string{"ev1", "never"} {
		_, err := s.b.UpdateSession(ctx, "s1", queue("U1", key, s.clock.now()))
		if !errors.Is(err, core.ErrDeliveryTaken) {
			t.Errorf("a turn for delivery %s: %v, want ErrDeliveryTaken", key, err)
		}
	}
	if sess, err := s.b.Session(ctx, "s1"); err != nil || len(sess.Turns) != 1 {
		t.Errorf("after the refused turns: %d turns, %v; want 1", len(sess.Turns), err)
	}
}

func testInbox(t *testing.T, s *suite) {
	if _, err := s.b.Receive(ctx, "", "event", nil, time.Hour); err == nil {
		t.Error("Receive with an empty key succeeded")
	}
	payloads := map[string]string{"a": `{"n":1}`, "b": `{"n":2}`, "c": `{"n":3}`}
	for _, key := range []string{"b", "a", "c"} { // received in this order
		first, err := s.b.Receive(ctx, key, "kind-"+key, []byte(payloads[key]), time.Hour)
		if err != nil || !first {
			t.Fatalf("Receive(%s) = %v, %v", key, first, err)
		}
		s.clock.advance(time.Second)
	}
	if first, err := s.b.Receive(ctx, "a", "kind-a", []byte(`{"n":99}`), time.Hour); err != nil || first {
		t.Errorf("a second Receive of a = %v, %v; want a duplicate", first, err)
	}
	ds, err := s.b.Unhandled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].Key != "b" || ds[1].Key != "a" || ds[2].Key != "c" {
		t.Fatalf("Unhandled = %+v, want b, a, c (oldest first)", ds)
	}
	if ds[1].Kind != "kind-a" || string(ds[1].Payload) != payloads["a"] || ds[1].At.IsZero() {
		t.Errorf("Unhandled kept %q %s at %v; want the first delivery's kind and payload", ds[1].Kind, ds[1].Payload, ds[1].At)
	}
	if err := s.b.Handled(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.b.Handled(ctx, "never-received"); err != nil {
		t.Errorf("Handled of an unknown key: %v, want nil", err)
	}
	if got := s.inbox(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Unhandled = %v after handling a, want [b c]", got)
	}
	if first, _ := s.b.Receive(ctx, "a", "kind-a", nil, time.Hour); first {
		t.Error("a delivery handled within its ttl was taken as new")
	}
}

func testDedupe(t *testing.T, s *suite) {
	if _, err := s.b.MarkEvent(ctx, "", time.Hour); err == nil {
		t.Error("MarkEvent with an empty key succeeded")
	}
	for i, want := range []bool{true, false, false} {
		if first, err := s.b.MarkEvent(ctx, "e1", time.Hour); err != nil || first != want {
			t.Errorf("MarkEvent #%d = %v, %v; want %v", i+1, first, err, want)
		}
	}
	if first, _ := s.b.Receive(ctx, "e1", "event", nil, time.Hour); first {
		t.Error("Receive of a key MarkEvent marked was taken as new: they share one dedupe record")
	}
	s.clock.advance(59 * time.Minute)
	if first, _ := s.b.MarkEvent(ctx, "e1", time.Hour); first {
		t.Error("a mark expired before its ttl")
	}
	s.clock.advance(2 * time.Minute)
	if first, _ := s.b.MarkEvent(ctx, "e1", time.Hour); !first {
		t.Error("a mark outlived its ttl")
	}
	// Many expired marks do not stop new ones.
	for i := range 300 {
		if _, err := s.b.MarkEvent(ctx, fmt.Sprint("old", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	s.clock.advance(2 * time.Minute)
	for i := range 300 {
		if first, err := s.b.MarkEvent(ctx, fmt.Sprint("old", i), time.Minute); err != nil || !first {
			t.Fatalf("MarkEvent(old%d) after expiry = %v, %v", i, first, err)
		}
	}
}

func testStarts(t *testing.T, s *suite) {
	if _, err := s.b.RecordStart(ctx, "", s.clock.now(), time.Hour); err == nil {
		t.Error("RecordStart with an empty name succeeded")
	}
	base := s.clock.now()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	for _, m := range []int{0, 10, 5} { // out of order
		if _, err := s.b.RecordStart(ctx, "gw", at(m), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	kept, err := s.b.RecordStart(ctx, "gw", at(70), time.Hour)
	if err != nil || !slices.EqualFunc(kept, []time.Time{at(10), at(70)}, time.Time.Equal) {
		t.Errorf("RecordStart kept %v, %v; want the starts within the hour, oldest first", kept, err)
	}
	got, err := s.b.Starts(ctx, "gw", at(11))
	if err != nil || !slices.EqualFunc(got, []time.Time{at(70)}, time.Time.Equal) {
		t.Errorf("Starts since minute 11 = %v, %v", got, err)
	}
	if got, err := s.b.Starts(ctx, "other", base); err != nil || len(got) != 0 {
		t.Errorf("Starts of a name never recorded = %v, %v; want none", got, err)
	}
}

// teamInstall returns a workspace's installation with token as its sealed
// token.
func teamInstall(team, token string, at time.Time) install.Record {
	return install.Record{Team: team, Enterprise: "E1", BotUser: "U" + team, Token: []byte(token),
		Scopes: []string{"chat:write", "commands"}, Installer: "U0", InstalledAt: at}
}

func testInstallations(t *testing.T, s *suite) {
	at := s.clock.now()
	t1 := teamInstall("T1", "sealed-1", at)
	org := install.Record{Enterprise: "E1", EnterpriseInstall: true, BotUser: "UORG", Token: []byte{0, 1, 2, 255},
		Installer: "U9", InstalledAt: at.Add(time.Minute)}
	for _, rec := range []install.Record{t1, teamInstall("T2", "sealed-2", at), org} {
		if err := s.b.SaveInstallation(ctx, rec); err != nil {
			t.Fatalf("SaveInstallation(%s): %v", rec.Key(), err)
		}
	}
	same := func(a, b install.Record) bool {
		return a.Team == b.Team && a.Enterprise == b.Enterprise && a.EnterpriseInstall == b.EnterpriseInstall &&
			a.BotUser == b.BotUser && string(a.Token) == string(b.Token) && slices.Equal(a.Scopes, b.Scopes) &&
			a.Installer == b.Installer && a.InstalledAt.Equal(b.InstalledAt)
	}
	for _, want := range []install.Record{t1, org} {
		got, found, err := s.b.Installation(ctx, want.Key())
		if err != nil || !found || !same(got, want) {
			t.Errorf("Installation(%s) = %+v, %v, %v; want %+v", want.Key(), got, found, err, want)
		}
	}
	if _, found, err := s.b.Installation(ctx, install.TeamKey("T9")); err != nil || found {
		t.Errorf("Installation of a team never installed: found %v, %v", found, err)
	}
	if _, found, _ := s.b.Installation(ctx, install.TeamKey("E1")); found {
		t.Error("an organization's installation was found as a team's")
	}

	// Installing again replaces the installation.
	again := teamInstall("T1", "sealed-1b", at.Add(time.Hour))
	again.Scopes, again.Installer = []string{"chat:write"}, "U7"
	if err := s.b.SaveInstallation(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.b.Installation(ctx, install.TeamKey("T1")); !same(got, again) {
		t.Errorf("after installing again: %+v, want %+v", got, again)
	}

	for _, bad := range []install.Record{
		{Enterprise: "E1", BotUser: "U", Token: []byte("x")},        // no team
		{EnterpriseInstall: true, BotUser: "U", Token: []byte("x")}, // no enterprise
		{Team: "T3", BotUser: "U"},                                  // no token
	} {
		if err := s.b.SaveInstallation(ctx, bad); err == nil {
			t.Errorf("SaveInstallation(%+v) succeeded", bad)
		}
	}
	if _, found, _ := s.b.Installation(ctx, install.TeamKey("T3")); found {
		t.Error("a refused installation was stored")
	}

	if gone, err := s.b.DeleteInstallation(ctx, install.TeamKey("T1")); err != nil || !gone {
		t.Errorf("DeleteInstallation(T1) = %v, %v", gone, err)
	}
	if gone, err := s.b.DeleteInstallation(ctx, install.TeamKey("T1")); err != nil || gone {
		t.Errorf("DeleteInstallation(T1) again = %v, %v; want false", gone, err)
	}
	if _, found, _ := s.b.Installation(ctx, install.TeamKey("T1")); found {
		t.Error("a deleted installation is still found")
	}
	if _, found, _ := s.b.Installation(ctx, install.TeamKey("T2")); !found {
		t.Error("deleting T1 removed T2")
	}
}

func testStyles(t *testing.T, s *suite) {
	at := s.clock.now()
	brand := core.Style{Name: "brand", Prompt: "flat vector art, teal and coral", Flags: core.Flags{Aspect: "16:9", Size: "1536x864", Quality: "high", Transparent: true, Format: "png"},
		Refs: []core.ImageRef{{SHA256: "ab12", MIME: "image/png", Size: 3, Width: 1, Height: 1}}, By: core.User{ID: "U1", Name: "ana"}, At: at}
	put := func(platform, workspace string, st core.Style) {
		t.Helper()
		if err := s.b.PutStyle(ctx, platform, workspace, st); err != nil {
			t.Fatalf("PutStyle(%s): %v", st.Name, err)
		}
	}
	names := func(platform, workspace string) []string {
		t.Helper()
		got, err := s.b.Styles(ctx, platform, workspace)
		if err != nil {
			t.Fatalf("Styles: %v", err)
		}
		var out []string
		for _, st := range got {
			out = append(out, st.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names("slack", "T1"); len(got) != 0 {
		t.Fatalf("a new store has styles %v", got)
	}
	put("slack", "T1", brand)
	put("slack", "T1", core.Style{Name: "noir", Prompt: "black and white"})
	put("slack", "T2", core.Style{Name: "brand", Prompt: "another team's"})
	put("discord", "T1", core.Style{Name: "sketch", Prompt: "pencil"})
	if got := names("slack", "T1"); !slices.Equal(got, []string{"brand", "noir"}) {
		t.Errorf("Styles(slack, T1) = %v, want [brand noir]: each workspace has its own", got)
	}
	got, _ := s.b.Styles(ctx, "slack", "T1")
	i := slices.IndexFunc(got, func(st core.Style) bool { return st.Name == "brand" })
	if i < 0 || !reflect.DeepEqual(got[i].Flags, brand.Flags) || got[i].Prompt != brand.Prompt ||
		!slices.Equal(got[i].Refs, brand.Refs) || got[i].By != brand.By || !got[i].At.Equal(at) {
		t.Errorf("the stored style reads back as %+v, want %+v", got, brand)
	}

	// Setting a name again replaces the style.
	put("slack", "T1", core.Style{Name: "noir", Prompt: "film noir"})
	got, _ = s.b.Styles(ctx, "slack", "T1")
	if i := slices.IndexFunc(got, func(st core.Style) bool { return st.Name == "noir" }); i < 0 || got[i].Prompt != "film noir" || len(got) != 2 {
		t.Errorf("after replacing noir: %+v", got)
	}

	var every []string
	err := s.b.EveryStyle(ctx, func(platform, workspace string, st core.Style) error {
		every = append(every, platform+"/"+workspace+"/"+st.Name)
		return nil
	})
	if want := []string{"discord/T1/sketch", "slack/T1/brand", "slack/T1/noir", "slack/T2/brand"}; err != nil || !slices.Equal(every, want) {
		t.Errorf("EveryStyle listed %v, %v; want %v", every, err, want)
	}
	if err := s.b.DeleteStyle(ctx, "slack", "T1", "noir"); err != nil {
		t.Fatalf("DeleteStyle: %v", err)
	}
	if err := s.b.DeleteStyle(ctx, "slack", "T1", "noir"); core.KindOf(err) != core.NotFound {
		t.Errorf("deleting noir twice: %v, want NotFound", err)
	}
	if err := s.b.DeleteStyle(ctx, "slack", "T9", "brand"); core.KindOf(err) != core.NotFound {
		t.Errorf("deleting another workspace's name: %v, want NotFound", err)
	}
	if got := names("slack", "T2"); !slices.Equal(got, []string{"brand"}) {
		t.Errorf("deleting in T1 changed T2: %v", got)
	}
	s.b = s.h.Reopen(t, s.b)
	if got := names("slack", "T1"); !slices.Equal(got, []string{"brand"}) {
		t.Errorf("after reopening: %v, want [brand]", got)
	}
}

func testChannelDefaults(t *testing.T, s *suite) {
	read := func(workspace, channel string) core.ChannelDefaults {
		t.Helper()
		d, err := s.b.ChannelDefaults(ctx, "discord", workspace, channel)
		if err != nil {
			t.Fatalf("ChannelDefaults: %v", err)
		}
		return d
	}
	if d := read("G1", "C1"); !d.IsZero() {
		t.Fatalf("a new store has defaults %+v", d)
	}
	d := core.ChannelDefaults{Style: "brand", Model: "gpt-image-1", Aspect: "3:2", Size: "1536x1024", Quality: "low",
		By: core.User{ID: "U1"}, At: s.clock.now()}
	if err := s.b.PutChannelDefaults(ctx, "discord", "G1", "C1", d); err != nil {
		t.Fatal(err)
	}
	if got := read("G1", "C1"); got.String() != d.String() || got.By != d.By || !got.At.Equal(d.At) {
		t.Errorf("read back %+v, want %+v", got, d)
	}
	if err := s.b.PutChannelDefaults(ctx, "discord", "G0", "K9", core.ChannelDefaults{Quality: "high"}); err != nil {
		t.Fatal(err)
	}
	var every []string
	err := s.b.EveryChannelDefaults(ctx, func(platform, workspace, channel string, d core.ChannelDefaults) error {
		every = append(every, platform+"/"+workspace+"/"+channel+" "+d.String())
		return nil
	})
	if want := []string{"discord/G0/K9 --quality high", "discord/G1/C1 " + d.String()}; err != nil || !slices.Equal(every, want) {
		t.Errorf("EveryChannelDefaults listed %q, %v; want %q", every, err, want)
	}
	if got := read("G1", "C2"); !got.IsZero() {
		t.Errorf("another channel has %+v", got)
	}
	if got := read("G2", "C1"); !got.IsZero() {
		t.Errorf("the same channel id in another workspace has %+v", got)
	}
	s.b = s.h.Reopen(t, s.b)
	if got := read("G1", "C1"); got.String() != d.String() {
		t.Errorf("after reopening: %+v", got)
	}
	if err := s.b.PutChannelDefaults(ctx, "discord", "G1", "C1", core.ChannelDefaults{}); err != nil {
		t.Fatal(err)
	}
	if got := read("G1", "C1"); !got.IsZero() {
		t.Errorf("cleared defaults read back as %+v", got)
	}
	if err := s.b.PutChannelDefaults(ctx, "discord", "G1", "C1", core.ChannelDefaults{}); err != nil {
		t.Errorf("clearing defaults twice: %v", err)
	}
}

func testConcurrentOneSession(t *testing.T, s *suite) {
	s.create("s1", "t")
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.b.UpdateSession(ctx, "s1", queue(fmt.Sprint("U", i), "", s.clock.now())); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sess, _ := s.b.Session(ctx, "s1")
	users := map[string]bool{}
	for i, turn := range sess.Turns {
		if turn.ID != i+1 {
			t.Errorf("turn %d has id %d", i+1, turn.ID)
		}
		users[turn.User.ID] = true
	}
	if len(sess.Turns) != n || len(users) != n || len(s.jobs()) != n {
		t.Errorf("%d turns from %d users, %d jobs; want %d of each: an update was lost", len(sess.Turns), len(users), len(s.jobs()), n)
	}
}

func testConcurrentManySessions(t *testing.T, s *suite) {
	const sessions, turns = 20, 10
	for i := range sessions {
		s.create(fmt.Sprint("s", i), fmt.Sprint("t", i))
	}
	at := s.clock.now()
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			id := fmt.Sprint("s", i)
			for j := range turns {
				if _, err := s.b.UpdateSession(ctx, id, queue("U1", "", at)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.b.UpdateSession(ctx, id, finish(j+1, 1, 0.01, at)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := core.UsageTotals{Turns: sessions * turns, Images: sessions * turns}
	got := s.usage(core.UserDayKey("chat", "U1", at))
	if got.Turns != want.Turns || got.Images != want.Images || fmt.Sprintf("%.2f", got.CostUSD) != "2.00" {
		t.Errorf("usage after %d concurrent turns = %+v, want %+v costing $2.00", sessions*turns, got, want)
	}
	if n := len(s.jobs()); n != sessions*turns {
		t.Errorf("%d pending jobs, want %d (done, not yet posted)", n, sessions*turns)
	}
}

func testConcurrentDeliveries(t *testing.T, s *suite) {
	const keys, copies = 20, 5
	var firsts sync.Map
	var wg sync.WaitGroup
	for k := range keys {
		for range copies {
			wg.Go(func() {
				key := fmt.Sprint("ev", k)
				first, err := s.b.Receive(ctx, key, "event", []byte("{}"), time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if first {
					if _, dup := firsts.LoadOrStore(key, true); dup {
						t.Errorf("%s was a first delivery twice", key)
					}
				}
			})
		}
	}
	wg.Wait()
	if n := len(s.inbox()); n != keys {
		t.Errorf("%d deliveries kept, want %d", n, keys)
	}
}

func testDurable(t *testing.T, s *suite) {
	s.create("s1", "t")
	at := s.clock.now()
	s.update("s1", queue("U1", "", at))
	s.update("s1", finish(1, 2, 0.5, at))
	if _, err := s.b.Receive(ctx, "ev1", "event", []byte(`{"x":1}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.b.RecordStart(ctx, "gw", at, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.b.SaveInstallation(ctx, teamInstall("T1", "sealed-1", at)); err != nil {
		t.Fatal(err)
	}
	s.b = s.h.Reopen(t, s.b)
	if got, err := s.b.SessionByThread(ctx, "chat", "t"); err != nil || len(got.Turns) != 1 || got.Turns[0].Status != core.StatusDone {
		t.Errorf("after reopening: session %+v, %v", got, err)
	}
	if !slices.Equal(s.jobs(), []core.JobRef{{SessionID: "s1", TurnID: 1}}) || !slices.Equal(s.inbox(), []string{"ev1"}) {
		t.Errorf("after reopening: jobs %v, inbox %v", s.jobs(), s.inbox())
	}
	if got := s.usage(core.UserDayKey("chat", "U1", at)); got.Images != 2 {
		t.Errorf("after reopening: usage %+v", got)
	}
	if first, _ := s.b.MarkEvent(ctx, "ev1", time.Hour); first {
		t.Error("after reopening, a dedupe mark was forgotten")
	}
	if got, _ := s.b.Starts(ctx, "gw", at); len(got) != 1 {
		t.Errorf("after reopening: starts %v", got)
	}
	if _, found, err := s.b.Installation(ctx, install.TeamKey("T1")); err != nil || !found {
		t.Errorf("after reopening: installation found %v, %v", found, err)
	}
}

func testCanceled(t *testing.T, s *suite) {
	s.create("s1", "t")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.b.CreateSession(cctx, newSession("s2", "t2")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession: %v, want context.Canceled", err)
	}
	if _, err := s.b.Session(cctx, "s1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Session: %v, want context.Canceled", err)
	}
	if _, err := s.b.UpdateSession(cctx, "s1", queue("U1", "", s.clock.now())); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateSession: %v, want context.Canceled", err)
	}
	if _, err := s.b.MarkEvent(cctx, "e", time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("MarkEvent: %v, want context.Canceled", err)
	}
	if _, err := s.b.Receive(cctx, "e", "event", nil, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive: %v, want context.Canceled", err)
	}
	if err := s.b.SaveInstallation(cctx, teamInstall("T1", "sealed", s.clock.now())); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveInstallation: %v, want context.Canceled", err)
	}
	if _, _, err := s.b.Installation(cctx, install.TeamKey("T1")); !errors.Is(err, context.Canceled) {
		t.Errorf("Installation: %v, want context.Canceled", err)
	}
	if _, err := s.b.Session(ctx, "s2"); core.KindOf(err) != core.NotFound {
		t.Errorf("a canceled CreateSession stored its session")
	}
}

// A canceled turn keeps who canceled it, stays pending until its note is
// posted, and counts only what the provider charged for it.
func testCanceledTurn(t *testing.T, s *suite) {
	s.create("s1", "t")
	at := s.clock.now()
	s.update("s1", queue("U1", "", at))
	s.update("s1", queue("U1", "", at))
	by := core.CancelRequest{By: core.User{ID: "U1", Name: "ana"}, At: at}
	s.update("s1", set(1, func(t *core.Turn) {
		t.Cancel, t.Status, t.Posting, t.FinishedAt = &by, core.StatusCanceled, true, at
	}))
	s.update("s1", set(2, func(t *core.Turn) {
		t.Cancel, t.Status, t.Posting, t.FinishedAt, t.CostUSD = &by, core.StatusCanceled, true, at, 0.25
	}))
	got, err := s.b.Session(ctx, "s1")
	if err != nil || got.Turn(1).Cancel == nil || *got.Turn(1).Cancel != by || got.Turn(1).Status != core.StatusCanceled {
		t.Fatalf("canceled turn read back as %+v, %v", got.Turn(1), err)
	}
	if !slices.Equal(s.jobs(), []core.JobRef{{SessionID: "s1", TurnID: 1}, {SessionID: "s1", TurnID: 2}}) {
		t.Errorf("ActiveJobs = %v, want both canceled turns until their notes are posted", s.jobs())
	}
	s.update("s1", set(1, func(t *core.Turn) { t.Posting = false }))
	s.update("s1", set(2, func(t *core.Turn) { t.Posting = false }))
	if len(s.jobs()) != 0 {
		t.Errorf("ActiveJobs = %v after the notes were posted", s.jobs())
	}
	if got := s.usage(core.UserDayKey("chat", "U1", at)); got != (core.UsageTotals{Turns: 1, CostUSD: 0.25}) {
		t.Errorf("usage of canceled turns: %+v, want only the charged one", got)
	}
}

// A deleted version keeps its place in the tree and who deleted it.
func testDeletedVersion(t *testing.T, s *suite) {
	s.create("s1", "t")
	at := s.clock.now()
	s.update("s1", queue("U1", "", at))
	s.update("s1", finish(1, 2, 0.5, at))
	by := core.Deletion{By: core.User{ID: "U1", Name: "ana"}, At: at}
	s.update("s1", func(sess *core.Session) error {
		sess.Version(1).Deleted = &by
		return nil
	})
	got, err := s.b.Session(ctx, "s1")
	if err != nil || len(got.Versions) != 2 || got.Version(1).Deleted == nil || *got.Version(1).Deleted != by || got.Version(2).Deleted != nil {
		t.Fatalf("versions read back as %+v, %v", got.Versions, err)
	}
}
