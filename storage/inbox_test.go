package storage

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

func TestInboxKeepsDeliveriesUntilHandled(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	db := openTest(t, dir, clock)
	ctx := context.Background()
	for i, key := range []string{"slack:Ev1", "slack:Ev2", "slack:Ev1"} {
		first, err := db.Receive(ctx, key, "events_api", fmt.Appendf(nil, `{"n":%d}`, i), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 2; first != want {
			t.Errorf("Receive(%s) #%d first = %v, want %v", key, i, first, want)
		}
		clock.Advance(time.Second)
	}
	if err := db.Handled(ctx, "slack:Ev2"); err != nil {
		t.Fatal(err)
	}
	// A restart finds what was received and not handled, and still knows
	// the handled one as a duplicate.
	db.Close()
	db = openTest(t, dir, clock)
	left, err := db.Unhandled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Key != "slack:Ev1" || left[0].Kind != "events_api" || string(left[0].Payload) != `{"n":0}` {
		t.Errorf("unhandled after restart = %+v, want slack:Ev1 with its first payload", left)
	}
	if first, _ := db.Receive(ctx, "slack:Ev2", "events_api", []byte(`{}`), time.Hour); first {
		t.Error("a handled delivery was taken as new after a restart")
	}
	// After its ttl a key counts as new again.
	clock.Advance(2 * time.Hour)
	if first, _ := db.Receive(ctx, "slack:Ev2", "events_api", []byte(`{}`), time.Hour); !first {
		t.Error("a delivery whose mark expired was taken as a duplicate")
	}
}

func TestInboxConcurrentDuplicates(t *testing.T) {
	db := openTest(t, t.TempDir(), newClock())
	ctx := context.Background()
	// 20 keys, each delivered 10 times at once: exactly one first each.
	var mu sync.Mutex
	firsts := map[string]int{}
	var wg sync.WaitGroup
	for i := range 200 {
		key := fmt.Sprintf("k%d", i%20)
		wg.Go(func() {
			first, err := db.Receive(ctx, key, "x", []byte(`{}`), time.Hour)
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		if n := firsts[fmt.Sprintf("k%d", i)]; n != 1 {
			t.Errorf("k%d was first %d times", i, n)
		}
	}
	if left, _ := db.Unhandled(ctx); len(left) != 20 {
		t.Errorf("%d deliveries kept, want 20", len(left))
	}
}

func TestRecordingATurnHandlesItsDelivery(t *testing.T) {
	db := openTest(t, t.TempDir(), newClock())
	ctx := context.Background()
	for _, key := range []string{"slack:T1", "slack:T2"} {
		if _, err := db.Receive(ctx, key, "slash_commands", []byte(`{}`), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	s := newSession("s1", "C1/1.000001")
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	_, err := db.UpdateSession(ctx, "s1", func(s *core.Session) error {
		s.Turns = append(s.Turns, core.Turn{ID: 1, Status: core.StatusQueued, Delivery: "slack:T1"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	left, err := db.Unhandled(ctx)
	if err != nil || len(left) != 1 || left[0].Key != "slack:T2" {
		t.Errorf("unhandled after recording T1's turn = %+v, %v; want T2 alone", left, err)
	}
}
