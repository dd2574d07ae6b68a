package wirefake

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitWakesOnNotify(t *testing.T) {
	var c Changes
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(5 * time.Millisecond)
			n.Add(1)
			c.Notify()
		}
	}()
	// A poll far longer than the test: only Notify can wake the wait.
	c.Wait(t, "fake", "three changes", time.Minute, time.Hour, func() bool { return n.Load() == 3 })
}

func TestWaitPollsStateItDoesNotOwn(t *testing.T) {
	var c Changes
	start := time.Now()
	c.Wait(t, "fake", "time to pass", time.Minute, time.Millisecond, func() bool { return time.Since(start) > 20*time.Millisecond })
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r)
}

func TestWaitFailsAfterTimeout(t *testing.T) {
	var c Changes
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Wait did not fail the test: %v", p)
			}
		}()
		c.Wait(r, "fake", "never", 10*time.Millisecond, time.Millisecond, func() bool { return false })
	}()
	if want := "fake: timed out after 10ms waiting for never"; r.msg != want {
		t.Fatalf("failure %q, want %q", r.msg, want)
	}
}

func TestFaultsInOrderPerKey(t *testing.T) {
	var f Faults[int]
	if _, ok := f.Take("a"); ok {
		t.Fatal("fault from an empty queue")
	}
	f.Add("a", 1, 2)
	f.Add("b", 3)
	f.Add("a", 4)
	if f.Pending("a") != 3 || f.Pending("b") != 1 {
		t.Fatalf("pending a=%d b=%d", f.Pending("a"), f.Pending("b"))
	}
	var got []int
	for {
		v, ok := f.Take("a")
		if !ok {
			break
		}
		got = append(got, v)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 4 {
		t.Fatalf("a's faults = %v, want [1 2 4]", got)
	}
	if v, ok := f.Take("b"); !ok || v != 3 {
		t.Fatalf("b's fault = %v %v", v, ok)
	}
}
