package slack

import (
	"context"
	"slices"
	"sync"
)

// bodyBudget bounds the memory of the http-mode request bodies held at
// once: each request holds its size from before its buffer is made until
// its handler returns. A request that does not fit cuts short the oldest
// reads still waiting for bytes until it does, then waits for them to let
// go, which they do at once. It never waits for a slow sender: a flood of
// connections that each hold the last byte of a large body back cannot
// starve genuine requests, because Slack sends a request whole, so a
// genuine read finishes in moments and is never the oldest for long.
type bodyBudget struct {
	limit int64

	mu      sync.Mutex
	used    int64         // bytes held, by reads and by bodies being handled
	cutting int64         // of used: bytes of reads cut short but not yet let go
	reading []*bodyHold   // holds still reading, oldest first
	freed   chan struct{} // closed and replaced whenever bytes are let go
}

// bodyHold is one request's share of a bodyBudget.
type bodyHold struct {
	size int64
	cut  func() // makes the request's pending read return at once
	gone bool   // cut short: its size is in cutting
}

func newBodyBudget(limit int64) *bodyBudget {
	return &bodyBudget{limit: limit, freed: make(chan struct{})}
}

// hold reserves size bytes (at most the limit) for a request body about to
// be read, cutting short the oldest reads to make room, and returns the
// hold; cut is how a later request cuts this one short. The caller must
// call read when the body is in and release when it is done with it. hold
// returns ctx's error if ctx ends before the room is free.
func (bb *bodyBudget) hold(ctx context.Context, size int64, cut func()) (*bodyHold, error) {
	bb.mu.Lock()
	for bb.used+size > bb.limit {
		// Cut the oldest reads until what they will let go makes room:
		// reads already cut are on their way out and count as free.
		for bb.used-bb.cutting+size > bb.limit {
			i := slices.IndexFunc(bb.reading, func(h *bodyHold) bool { return !h.gone })
			if i < 0 {
				break // the rest is held by bodies being handled
			}
			victim := bb.reading[i]
			victim.gone = true
			bb.cutting += victim.size
			victim.cut()
		}
		freed := bb.freed
		bb.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		bb.mu.Lock()
	}
	h := &bodyHold{size: size, cut: cut}
	bb.used += size
	bb.reading = append(bb.reading, h)
	bb.mu.Unlock()
	return h, nil
}

// read marks h's body as read: it is no longer cut short to make room,
// only let go when its request is done.
func (bb *bodyBudget) read(h *bodyHold) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	bb.reading = slices.DeleteFunc(bb.reading, func(x *bodyHold) bool { return x == h })
}

// release lets go of h's bytes.
func (bb *bodyBudget) release(h *bodyHold) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	bb.reading = slices.DeleteFunc(bb.reading, func(x *bodyHold) bool { return x == h })
	bb.used -= h.size
	if h.gone {
		bb.cutting -= h.size
	}
	close(bb.freed)
	bb.freed = make(chan struct{})
}
