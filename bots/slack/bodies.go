package slack

import (
	"context"
	"slices"
	"sync"
)

// bodyBudget bounds the memory of the http-mode request bodies held at
// once: each request holds its size from before its buffer is made until
// its handler returns. A request that does not fit cuts short the oldest
// reads still waiting for bytes, as many as it needs, and waits only for
// those to let go, which they do at once; what they let go is kept for it.
// It never waits for a slow sender, nor behind other newcomers: a flood of
// connections that each hold the last byte of a large body back cannot
// starve genuine requests, because Slack sends a request whole, so a
// genuine read finishes in moments and is never the oldest for long.
type bodyBudget struct {
	limit int64

	mu       sync.Mutex
	used     int64         // bytes held by granted holds, cut ones included
	kept     int64         // bytes let go by cut holds, kept for the holds that cut them
	reading  []*bodyHold   // granted holds still reading, oldest first
	released chan struct{} // closed and replaced whenever a hold lets go
}

// bodyHold is one request's share of a bodyBudget.
type bodyHold struct {
	size int64
	cut  func()        // makes the request's pending read return at once
	owed bool          // cut short: what it lets go is kept for the hold that cut it
	gone chan struct{} // closed when it lets go
}

func newBodyBudget(limit int64) *bodyBudget {
	return &bodyBudget{limit: limit, released: make(chan struct{})}
}

// hold reserves size bytes (at most the limit) for a request body about to
// be read and returns the hold; cut is how a later request cuts this one
// short. The caller must call read when the body is in and release when it
// is done with it. hold returns ctx's error if ctx ends before the room is
// free, which happens only when bodies being handled, not read, fill the
// budget.
func (bb *bodyBudget) hold(ctx context.Context, size int64, cut func()) (*bodyHold, error) {
	bb.mu.Lock()
	for {
		free := bb.limit - bb.used - bb.kept
		if free >= size {
			h := &bodyHold{size: size, cut: cut, gone: make(chan struct{})}
			bb.used += size
			bb.reading = append(bb.reading, h)
			bb.mu.Unlock()
			return h, nil
		}
		// Cut the oldest reads until what they let go, kept for this
		// request, makes room.
		var victims []*bodyHold
		for got := int64(0); free+got < size; {
			i := slices.IndexFunc(bb.reading, func(r *bodyHold) bool { return !r.owed })
			if i < 0 {
				break // the rest is held by bodies being handled
			}
			v := bb.reading[i]
			v.owed = true
			v.cut()
			victims = append(victims, v)
			got += v.size
		}
		released := bb.released
		bb.mu.Unlock()

		err := waitGone(ctx, victims)
		if err == nil && free+sizes(victims) < size {
			select { // for any hold to let go
			case <-released:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		bb.mu.Lock()
		for _, v := range victims {
			select {
			case <-v.gone:
				bb.kept -= v.size // ours now, or free again if we give up
			default:
				v.owed = false // gave up: it lets go to everyone
			}
		}
		if err != nil {
			bb.mu.Unlock()
			return nil, err
		}
	}
}

// waitGone waits until every hold of hs has let go, or ctx ends.
func waitGone(ctx context.Context, hs []*bodyHold) error {
	for _, h := range hs {
		select {
		case <-h.gone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sizes returns the bytes of hs.
func sizes(hs []*bodyHold) int64 {
	var n int64
	for _, h := range hs {
		n += h.size
	}
	return n
}

// read marks h's body as read: it is no longer cut short to make room,
// only let go when its request is done.
func (bb *bodyBudget) read(h *bodyHold) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	bb.reading = slices.DeleteFunc(bb.reading, func(r *bodyHold) bool { return r == h })
}

// release lets go of h's bytes: to the hold that cut h short, if any.
func (bb *bodyBudget) release(h *bodyHold) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	bb.reading = slices.DeleteFunc(bb.reading, func(r *bodyHold) bool { return r == h })
	bb.used -= h.size
	if h.owed {
		bb.kept += h.size
	}
	close(h.gone)
	close(bb.released)
	bb.released = make(chan struct{})
}
