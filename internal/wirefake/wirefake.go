// Package wirefake holds what the loopback fakes of OpenAI, Slack and
// Discord share: a way for a test to wait until a fake's state changes, and
// queues of faults that the fakes answer upcoming calls with.
package wirefake

import (
	"sync"
	"testing"
	"time"
)

// Changes lets tests wait for a fake's state to change. The zero value is
// ready to use; it is safe for concurrent use, and Notify may be called
// with the fake's own lock held.
type Changes struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced by Notify
}

// Notify wakes every Wait in progress.
func (c *Changes) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
	}
	c.ch = make(chan struct{})
}

// changed returns the channel the next Notify closes.
func (c *Changes) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// Wait returns once cond holds, checking it after every Notify and every
// poll (for conditions on state the fake does not own), and fails t,
// naming fake and what, if that takes longer than timeout. It is a hang
// guard, not a speed assertion. cond is called without any lock held, so
// it may call the fake's methods.
func (c *Changes) Wait(t testing.TB, fake, what string, timeout, poll time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		ch := c.changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: timed out after %s waiting for %s", fake, timeout, what)
		}
	}
}

// Faults queues faults of type F for upcoming calls, per key (a method name,
// or "" for a fake with one queue). The zero value is ready to use; it is
// safe for concurrent use.
type Faults[F any] struct {
	mu sync.Mutex
	q  map[string][]F
}

// Add queues faults for the next calls of key, in order.
func (f *Faults[F]) Add(key string, faults ...F) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.q == nil {
		f.q = map[string][]F{}
	}
	f.q[key] = append(f.q[key], faults...)
}

// Take removes and returns the next fault queued for key, if any.
func (f *Faults[F]) Take(key string) (F, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.q[key]
	if len(q) == 0 {
		var zero F
		return zero, false
	}
	if len(q) == 1 {
		delete(f.q, key)
	} else {
		f.q[key] = q[1:]
	}
	return q[0], true
}

// Pending returns how many faults queued for key are still unused.
func (f *Faults[F]) Pending(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.q[key])
}
