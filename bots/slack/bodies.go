package slack

import (
	"context"
	"slices"
	"sync"
)

// bodyBudget bounds the memory of the http-mode request bodies held at
// once: each request holds its size from before its buffer is made until
// its handler returns. A request that does not fit cuts short the oldest
// reads still waiting for bytes, as many as it needs, and waits, in order of
// arrival, only until they have let go, which they do at once. It never
// waits for a slow sender: a flood of connections that each hold the last
// byte of a large body back cannot starve genuine requests, because Slack
// sends a request whole, so a genuine read finishes in moments and is never
// the oldest for long.
type bodyBudget struct {
	limit int64

	mu      sync.Mutex
	used    int64       // bytes held, by reads and by bodies being handled
	cutting int64       // of used: bytes of reads cut short but not yet let go
	reading []*bodyHold // holds granted and still reading, oldest first
	waiting []*bodyHold // holds not yet granted, in order of arrival
	wanted  int64       // bytes the waiting holds need
}

// bodyHold is one request's share of a bodyBudget.
type bodyHold struct {
	size    int64
	cut     func()        // makes the request's pending read return at once
	gone    bool          // cut short: its size is in cutting
	granted chan struct{} // closed when a waiting hold is granted
}

func newBodyBudget(limit int64) *bodyBudget {
	return &bodyBudget{limit: limit}
}

// hold reserves size bytes (at most the limit) for a request body about to
// be read and returns the hold; cut is how a later request cuts this one
// short. The caller must call read when the body is in and release when it
// is done with it. hold returns ctx's error if ctx ends before the room is
// free, which happens only when bodies being handled, not read, fill the
// budget.
func (bb *bodyBudget) hold(ctx context.Context, size int64, cut func()) (*bodyHold, error) {
	bb.mu.Lock()
	h := &bodyHold{size: size, cut: cut}
	if len(bb.waiting) == 0 && bb.used+size <= bb.limit {
		bb.grant(h)
		bb.mu.Unlock()
		return h, nil
	}
	// Cut the oldest reads until what they will let go makes room for
	// every waiting hold and this one.
	for bb.used-bb.cutting+bb.wanted+size > bb.limit {
		i := slices.IndexFunc(bb.reading, func(r *bodyHold) bool { return !r.gone })
		if i < 0 {
			break // the rest is held by bodies being handled
		}
		victim := bb.reading[i]
		victim.gone = true
		bb.cutting += victim.size
		victim.cut()
	}
	h.granted = make(chan struct{})
	bb.waiting = append(bb.waiting, h)
	bb.wanted += size
	bb.mu.Unlock()

	select {
	case <-h.granted:
		return h, nil
	case <-ctx.Done():
	}
	bb.mu.Lock()
	defer bb.mu.Unlock()
	i := slices.Index(bb.waiting, h)
	if i < 0 { // granted meanwhile
		bb.unhold(h)
		return nil, ctx.Err()
	}
	bb.waiting = slices.Delete(bb.waiting, i, i+1)
	bb.wanted -= size
	bb.admit()
	return nil, ctx.Err()
}

// read marks h's body as read: it is no longer cut short to make room,
// only let go when its request is done.
func (bb *bodyBudget) read(h *bodyHold) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	bb.reading = slices.DeleteFunc(bb.reading, func(r *bodyHold) bool { return r == h })
}

// release lets go of h's bytes.
func (bb *bodyBudget) release(h *bodyHold) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	bb.unhold(h)
}

// grant gives h its bytes; bb.mu is held.
func (bb *bodyBudget) grant(h *bodyHold) {
	bb.used += h.size
	bb.reading = append(bb.reading, h)
}

// unhold takes back the bytes of granted hold h and grants the waiting
// holds that then fit; bb.mu is held.
func (bb *bodyBudget) unhold(h *bodyHold) {
	bb.reading = slices.DeleteFunc(bb.reading, func(r *bodyHold) bool { return r == h })
	bb.used -= h.size
	if h.gone {
		bb.cutting -= h.size
	}
	bb.admit()
}

// admit grants the waiting holds that fit, in order of arrival; bb.mu is
// held.
func (bb *bodyBudget) admit() {
	for len(bb.waiting) > 0 && bb.used+bb.waiting[0].size <= bb.limit {
		w := bb.waiting[0]
		bb.waiting = bb.waiting[1:]
		bb.wanted -= w.size
		bb.grant(w)
		close(w.granted)
	}
}
