package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

// replica is one Easel process of a test: its own connections, limits and
// engine, on the shared database and image directory.
type replica struct {
	db     *postgres.DB
	limits *postgres.Limits
	engine *core.Engine
	gen    *coretest.Generator
}

// replicas starts n replicas on a new database with cfg; each has its own
// fake provider, gated when gate is set.
func replicas(t *testing.T, n int, cfg core.EngineConfig, lease time.Duration, gated bool) []*replica {
	t.Helper()
	url := pgtest.Start(t).DB(t)
	images := coretest.ImageDir(t, "")
	var rs []*replica
	for range n {
		db, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		limits, err := db.NewLimits(context.Background(), max(cfg.MaxConcurrent, 1), lease)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{db: db, limits: limits, gen: &coretest.Generator{}}
		if gated {
			r.gen.SetGate(make(chan struct{}))
		}
		c := cfg
		c.DefaultProvider, c.Limiters = "fake", limits.Limiters()
		c.Limits = core.Limits{MaxN: 4, MaxPromptChars: 1000}
		if r.engine, err = core.NewEngine(c, db, images, map[string]core.Generator{"fake": r.gen}, nil); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	t.Cleanup(func() {
		for _, r := range rs {
			if g := r.gen.Gate(); g != nil {
				close(g)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = r.engine.Close(ctx)
			cancel()
			r.limits.Close()
			_ = r.db.Close()
		}
	})
	return rs
}

// The per-user cap and the quota hold exactly across replicas: 50
// simultaneous requests from one user, spread over 3 replicas, with room
// for 3 turns (or 3 images), and exactly 3 are accepted.
func TestLimitsHoldAcrossReplicas(t *testing.T) {
	for name, cfg := range map[string]core.EngineConfig{
		"max_per_user": {MaxPerUser: 3, MaxQueue: 100},
		"quota":        {MaxPerUser: 100, MaxQueue: 100, Quotas: core.Quotas{ImagesPerUserDay: 3}},
	} {
		t.Run(name, func(t *testing.T) {
			rs := replicas(t, 3, cfg, 10*time.Second, true)
			var accepted atomic.Int64
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					m := core.Message{Platform: "chat", Workspace: "W1", Thread: fmt.Sprint("t", i), User: core.User{ID: "U1"}, Text: "a fox"}
					_, err := rs[i%3].engine.Handle(context.Background(), coretest.NewThread(), m)
					switch core.KindOf(err) {
					case "":
						accepted.Add(1)
					case core.Busy, core.Quota:
					default:
						t.Errorf("request %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if n := accepted.Load(); n != 3 {
				t.Errorf("%d of 50 requests accepted over 3 replicas, want exactly 3", n)
			}
		})
	}
}

// The provider cap holds across replicas: with 2 slots in all, 3 replicas
// with work each never have more than 2 provider calls in flight, and the
// slots of finished calls go to the waiting ones.
func TestProviderSlotsAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3, core.EngineConfig{MaxConcurrent: 2, MaxPerUser: 10}, 10*time.Second, true)
	threads := make([]*coretest.Thread, 6)
	for i := range threads {
		threads[i] = coretest.NewThread()
		m := core.Message{Platform: "chat", Thread: fmt.Sprint("t", i), User: core.User{ID: fmt.Sprint("U", i)}, Text: "a fox"}
		if _, err := rs[i%3].engine.Handle(context.Background(), threads[i], m); err != nil {
			t.Fatal(err)
		}
	}
	running := func() int64 {
		var n int64
		for _, r := range rs {
			n += r.gen.Running.Load()
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for running() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a third call, were one allowed, would be running by now
	if n := running(); n != 2 {
		t.Fatalf("%d provider calls in flight over 3 replicas, want the 2 slots", n)
	}
	for _, r := range rs {
		close(r.gen.Gate())
		r.gen.SetGate(nil)
	}
	for _, th := range threads {
		th.WaitTurns(t, 1)
	}
	for i, th := range threads {
		if len(th.Posts) != 1 {
			t.Errorf("thread %d got %d images, want 1", i, len(th.Posts))
		}
	}
}

// A session's turns run on the replica holding its lease: one recorded on
// another replica is run there, in order. When the holder freezes past its
// lease, another replica takes the session over (Resume), and the frozen
// one's writes are fenced off: the turn ends once, posted once.
func TestSessionLeasesAndFencing(t *testing.T) {
	rs := replicas(t, 2, core.EngineConfig{MaxConcurrent: 4, MaxPerUser: 10}, time.Second, true)
	a, b := rs[0], rs[1]
	ctx := context.Background()
	th := coretest.NewThread()
	q, err := a.engine.Handle(ctx, th, core.Message{Platform: "chat", Thread: "s", User: core.User{ID: "U1"}, Text: "a fox"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to render", func() bool { return a.gen.Calls.Load() == 1 })
	// B records a refinement; A holds the session, so B runs nothing.
	if _, err := b.engine.Handle(ctx, th, core.Message{Platform: "chat", Thread: "s", User: core.User{ID: "U1"}, Text: "make it blue"}); err != nil {
		t.Fatal(err)
	}

	// A freezes: its lease runs out. B's resume takes the session over and
	// runs both turns; A's render, finishing late, is fenced off.
	a.limits.Freeze()
	time.Sleep(1500 * time.Millisecond)
	b.gen.SetGate(nil)
	open := func(*core.Session) (core.Thread, bool) { return th, true }
	if _, err := b.engine.Resume(ctx, open); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 2)
	close(a.gen.Gate())
	a.gen.SetGate(nil)
	time.Sleep(500 * time.Millisecond) // A's late write, were it let through, would land now

	sess, err := b.db.Session(ctx, q.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Versions) != 2 || sess.Turn(1).Status != core.StatusDone || sess.Turn(2).Status != core.StatusDone {
		t.Errorf("after the takeover: %d versions, turns %s and %s; want 2 versions, both done", len(sess.Versions), sess.Turn(1).Status, sess.Turn(2).Status)
	}
	th.Lock()
	posts := len(th.Posts)
	th.Unlock()
	if posts != 2 {
		t.Errorf("%d images posted, want 2: each turn's once", posts)
	}
	if n := b.gen.Calls.Load(); n != 2 {
		t.Errorf("B made %d provider calls, want 2 (the taken-over turn and the refinement)", n)
	}
}

// A replica looking for work (Resume) leaves alone the thread of a session
// another replica runs: it shows nothing there, and clears nothing, or it
// would take down the status line the other shows.
func TestResumeLeavesAnotherReplicasThreadAlone(t *testing.T) {
	rs := replicas(t, 2, core.EngineConfig{MaxConcurrent: 4, MaxPerUser: 10}, 10*time.Second, true)
	a, b := rs[0], rs[1]
	ctx := context.Background()
	if _, err := a.engine.Handle(ctx, coretest.NewThread(), core.Message{Platform: "chat", Thread: "s", User: core.User{ID: "U1"}, Text: "a fox"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to render", func() bool { return a.gen.Calls.Load() == 1 })
	th := coretest.NewThread()
	for range 3 {
		if _, err := b.engine.Resume(ctx, func(*core.Session) (core.Thread, bool) { return th, true }); err != nil {
			t.Fatal(err)
		}
	}
	th.Lock()
	defer th.Unlock()
	if len(th.Statuses) != 0 || len(th.Replies) != 0 || len(th.Posts) != 0 {
		t.Errorf("B, looking for work, touched the thread of the session A runs: statuses %q, replies %q, %d posts", th.Statuses, th.Replies, len(th.Posts))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// oneSlot returns a function that starts a process on a new database with
// one provider slot and leases of a second, returning its limits.
func oneSlot(t *testing.T) func() *postgres.Limits {
	url := pgtest.Start(t).DB(t)
	return func() *postgres.Limits {
		ctx := context.Background()
		db, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := db.NewLimits(ctx, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(); _ = db.Close() })
		return l
	}
}

// A process whose slot ran out before it renewed it (renewing was late)
// does not take that slot again for another turn: it still uses it, and
// two calls would go through one slot. A slot it lost track of, it may.
func TestProviderSlotNotTakenTwice(t *testing.T) {
	ctx := context.Background()
	la := oneSlot(t)()
	a := la.Limiters().Providers
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a takes the only slot: %v %v", ok, err)
	}
	la.Freeze()
	time.Sleep(1500 * time.Millisecond) // past the slot's lease
	if ok, err := a.TryAcquire(ctx); ok || err != nil {
		t.Errorf("a took the slot it uses a second time: %v %v", ok, err)
	}
	la.LoseSlots()
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Errorf("a could not take back the slot it lost track of: %v %v", ok, err)
	}
}

// A provider slot taken over while its holder was frozen is not used by it
// again: Keep, which the engine calls before each provider call, reports
// it lost, so the holder waits for another instead of going over the cap.
func TestProviderSlotLostWhileFrozen(t *testing.T) {
	ctx := context.Background()
	process := oneSlot(t)
	la := process()
	a, b := la.Limiters().Providers, process().Limiters().Providers
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a takes the only slot: %v %v", ok, err)
	}
	if err := a.Keep(ctx); err != nil {
		t.Fatalf("a keeps its slot: %v", err)
	}
	la.Freeze()
	waitFor(t, "b to take the slot a froze with", func() bool { ok, _ := b.TryAcquire(ctx); return ok })
	if err := a.Keep(ctx); !errors.Is(err, core.ErrLeaseLost) {
		t.Fatalf("a, thawed, keeps a slot b holds: %v", err)
	}
	if err := a.Keep(ctx); err != nil {
		t.Errorf("a, having let the lost slot go: %v", err)
	}
	if ok, _ := a.TryAcquire(ctx); ok {
		t.Error("a took a slot while b holds the only one")
	}
}

// A provider slot its live holder no longer counts (freeing it failed) is
// not renewed with the slots it uses: it is free again once its lease runs
// out, instead of being held for as long as the process runs.
func TestProviderSlotAstrayRunsOut(t *testing.T) {
	ctx := context.Background()
	process := oneSlot(t)
	la := process()
	a, b := la.Limiters().Providers, process().Limiters().Providers
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a takes the only slot: %v %v", ok, err)
	}
	la.LoseSlots()
	waitFor(t, "b to take the slot a renews no more", func() bool { ok, _ := b.TryAcquire(ctx); return ok })
	if err := a.Keep(ctx); err != nil {
		t.Errorf("a, holding no slot: %v", err)
	}
}

// Held tells the holder of a session's lease whether it still holds it:
// not once its lease ran out while it was frozen and another took the
// session over, so that it posts nothing the other posts too.
func TestSessionLeaseHeld(t *testing.T) {
	ctx := context.Background()
	process := oneSlot(t)
	la := process()
	a, b := la.Limiters().Sessions, process().Limiters().Sessions
	token, ok, err := a.TryLock(ctx, "s1")
	if !ok || err != nil {
		t.Fatalf("a locks s1: %v %v", ok, err)
	}
	if held, err := a.Held(ctx, "s1", token); !held || err != nil {
		t.Fatalf("a holds s1: %v %v", held, err)
	}
	la.Freeze()
	waitFor(t, "b to take s1 over", func() bool { _, ok, _ := b.TryLock(ctx, "s1"); return ok })
	if held, err := a.Held(ctx, "s1", token); held || err != nil {
		t.Errorf("a, thawed, still holds s1: %v %v", held, err)
	}
}
