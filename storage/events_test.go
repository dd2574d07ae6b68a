package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestMarkEventPrunes(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	for i := range 250 {
		if _, err := db.MarkEvent(ctx, fmt.Sprint("old", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	for i, want := range []int{151, 52, 3} { // each call prunes at most 100
		if _, err := db.MarkEvent(ctx, fmt.Sprint("new", i), time.Minute); err != nil {
			t.Fatal(err)
		}
		if n := countEvents(t, db); n != want {
			t.Errorf("after call %d: %d event records, want %d", i+1, n, want)
		}
	}
}

func TestMarkEventConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			first, err := db.MarkEvent(ctx, "discord/123", time.Hour)
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Errorf("%d callers saw the event first, want 1", n)
	}
}

// countEvents returns the number of event records, checking the two
// indexes agree.
func countEvents(t *testing.T, db *DB) int {
	t.Helper()
	var ids, byExpiry int
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		ids = events.Bucket(bucketEventIDs).Stats().KeyN
		byExpiry = events.Bucket(bucketEventExpiry).Stats().KeyN
		return nil
	})
	if ids != byExpiry {
		t.Fatalf("%d event ids but %d expiry entries", ids, byExpiry)
	}
	return ids
}
