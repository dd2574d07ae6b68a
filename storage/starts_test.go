package storage

import (
	"context"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

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
