package storage

import (
	"context"
	"encoding/json"
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

// ref returns the JobRef of a session's turn.
func ref(session string, turn int) core.JobRef {
	return core.JobRef{SessionID: session, TurnID: turn}
}
