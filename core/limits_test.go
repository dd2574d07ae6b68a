package core_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// Two engines given the same Limiters, as two processes given a shared
// implementation would be, keep the limits together: a user's turns in
// flight, the quota, the provider slots and the order of a session's turns
// count across both.
func TestEnginesShareTheirLimiters(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gate := make(chan struct{})
	gen := coretest.Gated(gate)
	shared := core.LocalLimiters(2)
	cfg := core.EngineConfig{DefaultProvider: "fake", MaxPerUser: 3, MaxQueue: 50, Limiters: shared,
		Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}, Quotas: core.Quotas{ImagesPerUserDay: 5}}
	var engines [2]*core.Engine
	for i := range engines {
		e, err := core.NewEngine(cfg, db, coretest.ImageDir(t, dir), map[string]core.Generator{"fake": gen}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
	}
	defer func() {
		close(gate)
		for _, e := range engines {
			_ = e.Close(context.Background())
		}
	}()
	ctx := context.Background()
	th := coretest.NewThread()

	// 40 requests from one user at once, spread over both engines: exactly
	// 3 (the turns one user may have in flight) are accepted.
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			m := core.Message{Platform: "chat", Thread: fmt.Sprint("t", i), User: core.User{ID: "U1"}, Text: "a fox"}
			if _, err := engines[i%2].Handle(ctx, th, m); err == nil {
				accepted.Add(1)
			} else if core.KindOf(err) != core.Busy {
				t.Errorf("request %d: %v, want accepted or Busy", i, err)
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n != 3 {
		t.Errorf("%d of 40 requests accepted across two engines, want 3 (max_per_user)", n)
	}
	// The quota counts what either engine holds: 3 images held, 2 left.
	m := core.Message{Platform: "chat", Thread: "q", User: core.User{ID: "U2"}, Text: "a fox --n 4"}
	if _, err := engines[0].Handle(ctx, th, m); err != nil {
		t.Fatalf("4 of U2's 5 images: %v", err)
	}
	m.Text, m.Thread = "a fox --n 2", "q2"
	if _, err := engines[1].Handle(ctx, th, m); core.KindOf(err) != core.Quota {
		t.Errorf("2 more images held by the other engine: %v, want a Quota error", err)
	}
	// Provider slots: 2 in all, though each engine alone would allow 2.
	deadline := time.Now().Add(20 * time.Second)
	for gen.Calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a third call would have started by now
	if n := gen.Running.Load(); n != 2 {
		t.Errorf("%d provider calls at once across two engines, want 2", n)
	}
}
