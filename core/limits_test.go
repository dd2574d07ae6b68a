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

// pausingGen stands for a provider whose process is paused between the
// check of its slot before an attempt and the request's sending: it
// reports the attempt, waits, and then runs the engine's check before
// sending, as the OpenAI providers do.
type pausingGen struct{ pause time.Duration }

func (g pausingGen) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	if err := req.Attempt(1); err != nil {
		return core.Result{}, err
	}
	time.Sleep(g.pause)
	if err := core.BeforeSend(ctx); err != nil {
		return core.Result{}, err
	}
	return core.Result{Images: []core.Image{{Data: coretest.PNG(1)}}, Attempts: 1}, nil
}

// keepCounter counts Keep calls, and reports the slot lost at the second.
type keepCounter struct {
	core.ProviderSlots
	keeps, acquires atomic.Int64
}

func (k *keepCounter) Keep(ctx context.Context) error {
	if k.keeps.Add(1) == 2 {
		return core.ErrLeaseLost
	}
	return nil
}

func (k *keepCounter) Acquire(ctx context.Context) error {
	k.acquires.Add(1)
	return k.ProviderSlots.Acquire(ctx)
}

// Right before a request leaves, a slot checked less than a second ago is
// trusted as it is; one checked longer ago (the process was paused in
// between) is checked again, and replaced if it was taken over.
func TestSlotCheckedAgainBeforeALateSend(t *testing.T) {
	for _, tc := range []struct {
		pause           time.Duration
		keeps, acquires int64
	}{
		{0, 1, 0},
		{1100 * time.Millisecond, 2, 1},
	} {
		db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		limits := core.LocalLimiters(2) // the slot "lost" stays taken here
		slots := &keepCounter{ProviderSlots: limits.Providers}
		limits.Providers = slots
		cfg := core.EngineConfig{DefaultProvider: "fake", MaxPerUser: 3, MaxQueue: 5, Limiters: limits,
			Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}}
		e, err := core.NewEngine(cfg, db, coretest.ImageDir(t, ""), map[string]core.Generator{"fake": pausingGen{tc.pause}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		th := coretest.NewThread()
		if _, err := e.Handle(context.Background(), th, core.Message{Platform: "chat", Thread: "t", User: core.User{ID: "U1"}, Text: "a fox"}); err != nil {
			t.Fatal(err)
		}
		th.WaitTurns(t, 1)
		if k, a := slots.keeps.Load(), slots.acquires.Load(); k != tc.keeps || a != tc.acquires {
			t.Errorf("paused %s before sending: %d checks of the slot and %d slots waited for, want %d and %d", tc.pause, k, a, tc.keeps, tc.acquires)
		}
		_ = e.Close(context.Background())
		db.Close()
	}
}
