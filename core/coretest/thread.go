package coretest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

// Thread is a core.Thread, Previewer and Finisher that records what the
// engine shows in a thread, for tests. Lock it to read its fields while the
// engine may be writing them; WaitFor holds the lock while its condition
// runs.
type Thread struct {
	sync.Mutex
	Replies  []string
	Posts    []core.ImagePost
	Statuses []string
	Previews int
	Finished []bool // one per turn ended, whether it succeeded
	// OnPost and OnReply, if set, run after each image post or reply,
	// without the lock.
	OnPost  func(core.ImagePost)
	OnReply func(string)

	changed chan struct{}
}

// NewThread returns an empty Thread.
func NewThread() *Thread { return &Thread{changed: make(chan struct{}, 1)} }

// note wakes a WaitFor.
func (t *Thread) note() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Reply records text.
func (t *Thread) Reply(_ context.Context, text string) error {
	t.Lock()
	t.Replies = append(t.Replies, text)
	hook := t.OnReply
	t.Unlock()
	if hook != nil {
		hook(text)
	}
	t.note()
	return nil
}

// PostImage records p.
func (t *Thread) PostImage(_ context.Context, p core.ImagePost) error {
	t.Lock()
	t.Posts = append(t.Posts, p)
	hook := t.OnPost
	t.Unlock()
	if hook != nil {
		hook(p)
	}
	t.note()
	return nil
}

// Preview counts a partial image.
func (t *Thread) Preview(context.Context, core.Image) error {
	t.Lock()
	defer t.Unlock()
	t.Previews++
	return nil
}

// SetStatus records status ("" for cleared).
func (t *Thread) SetStatus(_ context.Context, status string) error {
	t.Lock()
	defer t.Unlock()
	t.Statuses = append(t.Statuses, status)
	return nil
}

// Finish records a turn's end.
func (t *Thread) Finish(_ context.Context, _ string, ok bool) error {
	t.Lock()
	t.Finished = append(t.Finished, ok)
	t.Unlock()
	t.note()
	return nil
}

// WaitFor waits until cond holds for the thread, failing tb after a
// generous deadline (a hang guard, not a speed assertion).
func (t *Thread) WaitFor(tb testing.TB, what string, cond func(*Thread) bool) {
	tb.Helper()
	deadline := time.After(20 * time.Second)
	for {
		t.Lock()
		ok := cond(t)
		t.Unlock()
		if ok {
			return
		}
		select {
		case <-t.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Lock()
			defer t.Unlock()
			tb.Fatalf("timed out waiting for %s; replies %q, %d posts", what, t.Replies, len(t.Posts))
		}
	}
}

// WaitTurns waits until n turns have ended.
func (t *Thread) WaitTurns(tb testing.TB, n int) {
	tb.Helper()
	t.WaitFor(tb, fmt.Sprintf("%d finished turns", n), func(t *Thread) bool { return len(t.Finished) >= n })
}
