package slack

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutter counts the cuts of one hold and signals the first.
type cutter struct {
	n    atomic.Int64
	once sync.Once
	done chan struct{}
}

func newCutter() *cutter { return &cutter{done: make(chan struct{})} }

func (c *cutter) cut() {
	c.n.Add(1)
	c.once.Do(func() { close(c.done) })
}

// holdNow holds size bytes of bb, failing the test if that has to wait.
func holdNow(t *testing.T, bb *bodyBudget, size int64, c *cutter) *bodyHold {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a hold that must wait fails at once
	if bb.used+bb.kept+size > bb.limit {
		t.Fatalf("no room for %d bytes", size)
	}
	h, err := bb.hold(ctx, size, c.cut)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// holdLater starts holding size bytes of bb and returns the hold once it
// is granted.
func holdLater(bb *bodyBudget, size int64, c *cutter) <-chan *bodyHold {
	got := make(chan *bodyHold, 1)
	go func() {
		h, err := bb.hold(context.Background(), size, c.cut)
		if err != nil {
			panic(err)
		}
		got <- h
	}()
	return got
}

func TestBodyBudgetCutsTheOldestRead(t *testing.T) {
	bb := newBodyBudget(100)
	ca, cb, cc := newCutter(), newCutter(), newCutter()
	a := holdNow(t, bb, 40, ca)
	holdNow(t, bb, 40, cb)
	got := holdLater(bb, 40, cc)
	<-ca.done // the newcomer cut the oldest read short...
	select {
	case <-got:
		t.Fatal("granted before the read cut short let go of its bytes")
	default:
	}
	bb.release(a) // ...whose handler then lets go
	c := <-got
	if cb.n.Load() != 0 || ca.n.Load() != 1 {
		t.Errorf("cuts: oldest %d, next %d; want only the oldest, once", ca.n.Load(), cb.n.Load())
	}
	if bb.used != 80 || bb.kept != 0 || len(bb.reading) != 2 || bb.reading[1] != c {
		t.Errorf("used %d by %d reads after the swap", bb.used, len(bb.reading))
	}
}

func TestBodyBudgetCutsOnlyWhatMakesRoom(t *testing.T) {
	bb := newBodyBudget(100)
	cuts := []*cutter{newCutter(), newCutter(), newCutter(), newCutter()}
	holds := make([]*bodyHold, 4)
	for i, c := range cuts {
		holds[i] = holdNow(t, bb, 25, c)
	}
	got := holdLater(bb, 50, newCutter())
	<-cuts[1].done
	bb.release(holds[0])
	bb.release(holds[1])
	<-got
	for i, want := range []int64{1, 1, 0, 0} { // the two oldest, once each
		if n := cuts[i].n.Load(); n != want {
			t.Errorf("read %d cut %d times, want %d", i, n, want)
		}
	}
}

// TestBodyBudgetNewcomersWaitOnlyForTheirOwnCuts checks that each newcomer
// cuts the room it needs, rather than counting on a cut already made for an
// earlier one, and gets it as soon as its own cut reads let go, not behind
// the earlier newcomers.
func TestBodyBudgetNewcomersWaitOnlyForTheirOwnCuts(t *testing.T) {
	bb := newBodyBudget(100)
	ca, cb := newCutter(), newCutter()
	a := holdNow(t, bb, 50, ca)
	b := holdNow(t, bb, 50, cb)
	gotC := holdLater(bb, 50, newCutter())
	<-ca.done
	gotD := holdLater(bb, 50, newCutter())
	<-cb.done // d cut b: a's room is c's
	bb.release(b)
	<-gotD // d does not wait for c, whose cut read is still reading
	select {
	case <-gotC:
		t.Fatal("the first newcomer was granted before the read it cut let go")
	default:
	}
	bb.release(a)
	<-gotC
	if bb.used != 100 || bb.kept != 0 {
		t.Errorf("used %d, kept %d; want 100 and 0", bb.used, bb.kept)
	}
}

// TestBodyBudgetGivesUpCleanly checks that a newcomer whose deadline ends
// before the reads it cut let go leaves their room to everyone.
func TestBodyBudgetGivesUpCleanly(t *testing.T) {
	bb := newBodyBudget(100)
	ca, cb := newCutter(), newCutter()
	a := holdNow(t, bb, 60, ca)
	b := holdNow(t, bb, 40, cb)
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan error)
	go func() {
		_, err := bb.hold(ctx, 100, newCutter().cut)
		failed <- err
	}()
	<-cb.done // both cut
	bb.release(a)
	cancel()
	if err := <-failed; err != context.Canceled {
		t.Fatalf("hold after its context ended: %v", err)
	}
	bb.release(b)
	if bb.used != 0 || bb.kept != 0 {
		t.Errorf("used %d, kept %d after giving up; want 0 and 0", bb.used, bb.kept)
	}
	holdNow(t, bb, 100, newCutter())
}

func TestBodyBudgetNeverCutsABodyAlreadyRead(t *testing.T) {
	bb := newBodyBudget(100)
	ca := newCutter()
	a := holdNow(t, bb, 60, ca)
	bb.read(a) // being handled now: its bytes are let go when it is done
	got := holdLater(bb, 60, newCutter())

	// With no read to cut, the newcomer waits for its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := bb.hold(ctx, 60, newCutter().cut); err != context.DeadlineExceeded {
		t.Errorf("hold past its deadline: %v", err)
	}
	bb.release(a)
	<-got
	if ca.n.Load() != 0 {
		t.Error("a body already read was cut")
	}
}

// TestBodyBudgetIsNeverExceeded runs many holds of random sizes at once,
// each read ending either by itself or by being cut, and checks after
// every grant that the bytes held stay within the limit.
func TestBodyBudgetIsNeverExceeded(t *testing.T) {
	const limit = 1000
	bb := newBodyBudget(limit)
	var wg sync.WaitGroup
	var peak atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for range 50 {
				c := newCutter()
				h, err := bb.hold(context.Background(), 1+r.Int64N(limit), c.cut)
				if err != nil {
					t.Error(err)
					return
				}
				bb.mu.Lock()
				used := bb.used + bb.kept
				bb.mu.Unlock()
				for p := peak.Load(); used > p && !peak.CompareAndSwap(p, used); p = peak.Load() {
				}
				if r.IntN(2) == 0 { // a sender holding its last byte back
					select {
					case <-c.done:
					case <-time.After(time.Duration(r.IntN(5)) * time.Millisecond):
					}
				}
				bb.read(h)
				bb.release(h)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit || p == 0 {
		t.Errorf("peak %d bytes held, limit %d", p, limit)
	}
	if bb.used != 0 || bb.kept != 0 || len(bb.reading) != 0 {
		t.Errorf("left: used %d, kept %d, %d reads", bb.used, bb.kept, len(bb.reading))
	}
}
