package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestRecordStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir, newClock())
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	record := func(at time.Duration, want ...time.Duration) {
		t.Helper()
		got, err := db.RecordStart(ctx, "discord", t0.Add(at), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(g time.Time, w time.Duration) bool { return g.Equal(t0.Add(w)) }) {
			t.Errorf("RecordStart(+%s) = %v, want offsets %v", at, got, want)
		}
	}
	if got, err := db.Starts(ctx, "discord", t0); err != nil || len(got) != 0 {
		t.Errorf("Starts before any = %v, %v", got, err)
	}
	record(0, 0)
	record(time.Minute, 0, time.Minute)
	record(30*time.Second, 0, 30*time.Second, time.Minute) // out of order: kept sorted
	record(61*time.Minute, time.Minute, 61*time.Minute)    // older than an hour: pruned
	if _, err := db.RecordStart(ctx, "other", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordStart(ctx, "", t0, time.Hour); err == nil {
		t.Error("empty name accepted")
	}

	// Durable: a new process sees them.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, newClock())
	got, err := db.Starts(ctx, "discord", t0.Add(2*time.Minute))
	if err != nil || len(got) != 1 || !got[0].Equal(t0.Add(61*time.Minute)) {
		t.Errorf("Starts after reopen = %v, %v; want only +61m", got, err)
	}
	if got, _ := db.Starts(ctx, "other", t0); len(got) != 1 {
		t.Errorf("names mixed up: other has %v", got)
	}
}

func TestRecordStartKeepsAtMostMaxStarts(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	full := make([]time.Time, maxStarts)
	for i := range full {
		full[i] = t0.Add(time.Duration(i) * time.Millisecond)
	}
	err := db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStarts)
		if err != nil {
			return err
		}
		return b.Put([]byte("loop"), encodeStarts(full))
	})
	if err != nil {
		t.Fatal(err)
	}
	last := t0.Add(time.Hour)
	got, err := db.RecordStart(ctx, "loop", last, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxStarts || !got[0].Equal(full[1]) || !got[len(got)-1].Equal(last) {
		t.Errorf("kept %d starts from %v to %v, want the newest %d", len(got), got[0], got[len(got)-1], maxStarts)
	}
}
