package storage

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// storedJob returns the job record of a turn, and whether it is active.
func storedJob(t *testing.T, db *DB, session string, turn int) (j job, active bool) {
	t.Helper()
	err := db.bolt.View(func(tx *bolt.Tx) error {
		key := jobKey(session, turn)
		active = tx.Bucket(bucketActive).Get(key) != nil
		return json.Unmarshal(tx.Bucket(bucketJobs).Get(key), &j)
	})
	if err != nil {
		t.Fatalf("job %s/%d: %v", session, turn, err)
	}
	return j, active
}

func TestJobLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	queuedAt := clk.Now()
	for range 2 {
		if _, err := db.UpdateSession(ctx, "s1", queue("U7", queuedAt)); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		fn     func(*core.Session) error
		turn   int
		status core.TurnStatus
		active []core.JobRef
	}{
		{setStatus(1, core.StatusRunning), 1, core.StatusRunning, []core.JobRef{ref("s1", 1), ref("s1", 2)}},
		{finish(1, 2, 0.08, clk.Now()), 1, core.StatusDone, []core.JobRef{ref("s1", 2)}},
		{setStatus(2, core.StatusRunning), 2, core.StatusRunning, []core.JobRef{ref("s1", 2)}},
		{setStatus(2, core.StatusFailed), 2, core.StatusFailed, nil},
	}
	for _, st := range steps {
		clk.Advance(time.Second)
		if _, err := db.UpdateSession(ctx, "s1", st.fn); err != nil {
			t.Fatal(err)
		}
		j, active := storedJob(t, db, "s1", st.turn)
		want := job{Status: st.status, Kind: core.KindGenerate, User: "U7", QueuedAt: queuedAt, UpdatedAt: clk.Now()}
		if mustJSON(t, j) != mustJSON(t, want) {
			t.Errorf("turn %d job = %+v, want %+v", st.turn, j, want)
		}
		if active != st.status.Active() {
			t.Errorf("turn %d %s: active = %v", st.turn, st.status, active)
		}
		got, err := db.ActiveJobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, st.active) {
			t.Errorf("after turn %d %s: ActiveJobs = %v, want %v", st.turn, st.status, got, st.active)
		}
	}
}

func TestJobAttemptsRecorded(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateSession(ctx, "s1", queue("U1", clk.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateSession(ctx, "s1", func(s *core.Session) error { s.Turns[0].Attempts = 3; return nil }); err != nil {
		t.Fatal(err)
	}
	if j, _ := storedJob(t, db, "s1", 1); j.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", j.Attempts)
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	clk := newClock() // 2026-03-04
	db := openTest(t, t.TempDir(), clk)
	console := &core.Session{ID: "c1", Platform: "console", Thread: "tty"}
	for _, s := range []*core.Session{newSession("s1", "a"), newSession("s2", "b"), console} {
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	day1, day2 := clk.Now(), clk.Now().Add(24*time.Hour)
	update := func(id string, fn func(*core.Session) error) {
		t.Helper()
		if _, err := db.UpdateSession(ctx, id, fn); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		update("s1", queue("U1", day1))
	}
	update("s2", queue("U2", day1))
	update("c1", queue("me", day1))

	update("s1", finish(1, 1, 0.04, day1))
	update("s1", finish(2, 4, 0.16, day2))
	update("s1", setStatus(3, core.StatusFailed)) // consumes nothing
	update("s2", finish(1, 2, 0.5, day1))
	update("c1", finish(1, 1, 0, day1))
	// Storing done turns again, or touching them, must not count them again.
	update("s1", func(s *core.Session) error { s.Turns[0].Error = "edited"; return nil })
	update("s1", func(*core.Session) error { return nil })

	rows, err := db.Usage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []UsageRow{
		{Key: "user/console/me/2026-03-04", Turns: 1, Images: 1},
		{Key: "user/slack/U1/2026-03-04", Turns: 1, Images: 1, CostUSD: 0.04},
		{Key: "user/slack/U1/2026-03-05", Turns: 1, Images: 4, CostUSD: 0.16},
		{Key: "user/slack/U2/2026-03-04", Turns: 1, Images: 2, CostUSD: 0.5},
		{Key: "workspace/console/-/2026-03", Turns: 1, Images: 1},
		{Key: "workspace/slack/T1/2026-03", Turns: 3, Images: 7, CostUSD: 0.7},
	}
	if !usageEqual(rows, want) {
		t.Errorf("Usage = %+v\nwant %+v", rows, want)
	}
	rows, err = db.Usage(ctx, "user/slack/U1/")
	if err != nil {
		t.Fatal(err)
	}
	if !usageEqual(rows, want[1:3]) {
		t.Errorf("Usage(user/slack/U1/) = %+v\nwant %+v", rows, want[1:3])
	}
}

// ref returns the JobRef of a session's turn.
func ref(session string, turn int) core.JobRef {
	return core.JobRef{SessionID: session, TurnID: turn}
}

// usageEqual reports whether a and b are equal, costs to within rounding.
func usageEqual(a, b []UsageRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Key != y.Key || x.Turns != y.Turns || x.Images != y.Images || math.Abs(x.CostUSD-y.CostUSD) > 1e-9 {
			return false
		}
	}
	return true
}
