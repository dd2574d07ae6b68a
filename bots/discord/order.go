package discord

import (
	"context"
)

// lane is the work waiting for one channel, behind the task running.
type lane struct {
	queue []func(context.Context)
}

// inOrder runs fn after everything queued before it for the same channel:
// a channel's messages are handled one at a time, in the order they came
// (the gateway's order, and a catch-up's before the live messages queued
// behind it), while channels run side by side within maxBusy. It does no
// I/O, so it may run on the gateway's reader. Nothing is queued once Run is
// returning; what is queued then is dropped (a message recorded in the
// inbox is handled on the next start).
func (b *Bot) inOrder(ctx context.Context, channel string, fn func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if l := b.lanes[channel]; l != nil {
		l.queue = append(l.queue, fn)
		return
	}
	b.lanes[channel] = &lane{}
	b.running.Add(1)
	go b.drain(ctx, channel, fn)
}

// drain runs fn and then the channel's queue, until it is empty.
func (b *Bot) drain(ctx context.Context, channel string, fn func(context.Context)) {
	defer b.running.Done()
	for {
		if ctx.Err() == nil {
			b.work(ctx, func() {
				ctx, cancel := context.WithTimeout(ctx, eventTimeout)
				defer cancel()
				fn(ctx)
			})
		}
		b.mu.Lock()
		l := b.lanes[channel]
		if len(l.queue) == 0 {
			delete(b.lanes, channel)
			b.mu.Unlock()
			return
		}
		fn, l.queue = l.queue[0], l.queue[1:]
		b.mu.Unlock()
	}
}
