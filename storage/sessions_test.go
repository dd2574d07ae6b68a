package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

func TestSessionRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)

	s := newSession("s1", "C1/1700000000.000100")
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !s.CreatedAt.Equal(clk.Now()) || !s.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("times not set: created %v updated %v", s.CreatedAt, s.UpdatedAt)
	}
	got, err := db.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, s) {
		t.Errorf("Session = %s\nwant %s", mustJSON(t, got), mustJSON(t, s))
	}
	got, err = db.SessionByThread(ctx, "slack", "C1/1700000000.000100")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "s1" {
		t.Errorf("SessionByThread = %s, want s1", got.ID)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())

	check := func(what string, err error, name string) {
		t.Helper()
		var e *core.Error
		if !errors.As(err, &e) || e.Kind != core.NotFound {
			t.Errorf("%s: err = %v, want a NotFound *core.Error", what, err)
		} else if !strings.Contains(e.Message, name) {
			t.Errorf("%s: message %q does not name %q", what, e.Message, name)
		}
	}
	_, err := db.Session(ctx, "nope")
	check("Session", err, "nope")
	_, err = db.SessionByThread(ctx, "discord", "thread-9")
	check("SessionByThread", err, "thread-9")
	_, err = db.UpdateSession(ctx, "gone", func(*core.Session) error { return nil })
	check("UpdateSession", err, "gone")
}

func TestCreateSessionExisting(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	err := db.CreateSession(ctx, newSession("s1", "b"))
	if core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "s1") {
		t.Fatalf("second CreateSession: err = %v, want a Conflict naming s1", err)
	}
	if _, err := db.SessionByThread(ctx, "slack", "b"); core.KindOf(err) != core.NotFound {
		t.Errorf("refused CreateSession bound its thread: err = %v", err)
	}
}

func TestThreadRebinding(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	for _, id := range []string{"old", "new"} {
		if err := db.CreateSession(ctx, newSession(id, "dm-42")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.SessionByThread(ctx, "slack", "dm-42")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "new" {
		t.Errorf("thread bound to %s, want new", got.ID)
	}
	if _, err := db.Session(ctx, "old"); err != nil {
		t.Errorf("old session lost: %v", err)
	}
	// The same thread key on another platform is another thread.
	if _, err := db.SessionByThread(ctx, "discord", "dm-42"); core.KindOf(err) != core.NotFound {
		t.Errorf("discord thread dm-42: err = %v, want NotFound", err)
	}
}

func TestUpdateSessionFnError(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Session(ctx, "s1")
	clk.Advance(time.Minute)

	boom := core.Errorf(core.Conflict, "nothing to undo")
	got, err := db.UpdateSession(ctx, "s1", func(s *core.Session) error {
		_ = queue("U1", clk.Now())(s)
		s.Head = 7
		return boom
	})
	if err != boom || got != nil {
		t.Fatalf("UpdateSession = %v, %v; want nil, fn's error unchanged", got, err)
	}
	after, _ := db.Session(ctx, "s1")
	if mustJSON(t, after) != mustJSON(t, before) {
		t.Errorf("session changed by a failed update:\n%s\nwas\n%s", mustJSON(t, after), mustJSON(t, before))
	}
	if jobs, _ := db.ActiveJobs(ctx); len(jobs) != 0 {
		t.Errorf("failed update left jobs %v", jobs)
	}
}

func TestUpdateSessionKeepsID(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateSession(ctx, "s1", func(s *core.Session) error { s.ID = "s2"; return nil }); err == nil {
		t.Fatal("changing the id succeeded")
	}
	if _, err := db.Session(ctx, "s2"); core.KindOf(err) != core.NotFound {
		t.Errorf("s2 exists: %v", err)
	}
}

func TestUpdateSessionSetsUpdatedAt(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	got, err := db.UpdateSession(ctx, "s1", queue("U1", clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := db.Session(ctx, "s1")
	if !got.UpdatedAt.Equal(clk.Now()) || !stored.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("UpdatedAt = %v (stored %v), want %v", got.UpdatedAt, stored.UpdatedAt, clk.Now())
	}
	if len(stored.Turns) != 1 {
		t.Errorf("stored %d turns, want 1", len(stored.Turns))
	}
}

func TestConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := db.UpdateSession(ctx, "s1", queue(fmt.Sprint("U", i), clk.Now())); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, err := db.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]bool{}
	for i, turn := range s.Turns {
		if turn.ID != i+1 {
			t.Errorf("turn %d has id %d", i+1, turn.ID)
		}
		users[turn.User.ID] = true
	}
	if len(s.Turns) != n || len(users) != n {
		t.Errorf("%d turns from %d users, want %d", len(s.Turns), len(users), n)
	}
	if jobs, _ := db.ActiveJobs(ctx); len(jobs) != n {
		t.Errorf("%d active jobs, want %d", len(jobs), n)
	}
}

func TestSessionsList(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	for _, id := range []string{"a", "b", "c"} {
		clk.Advance(time.Minute)
		if err := db.CreateSession(ctx, newSession(id, id)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	if _, err := db.UpdateSession(ctx, "a", queue("U1", clk.Now())); err != nil {
		t.Fatal(err)
	}
	list, err := db.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, ","); got != "a,c,b" {
		t.Errorf("Sessions order = %s, want a,c,b", got)
	}
}

func TestCanceledContext(t *testing.T) {
	db := openTest(t, t.TempDir(), newClock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.CreateSession(ctx, newSession("s1", "a")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession: err = %v, want context.Canceled", err)
	}
	if _, err := db.Session(ctx, "s1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Session: err = %v, want context.Canceled", err)
	}
	if _, err := db.MarkEvent(ctx, "e", time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("MarkEvent: err = %v, want context.Canceled", err)
	}
	if _, err := Open(ctx, t.TempDir(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: err = %v, want context.Canceled", err)
	}
}
