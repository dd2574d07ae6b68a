package slack

import (
	"context"
	"time"
)

// jobTimeout bounds the work done for one delivery after its ack: finding
// the session, downloading attachments, posting the root message and
// queueing the turn. Rendering happens later, in the engine.
const jobTimeout = 2 * time.Minute

// startWorkers starts cfg.Workers goroutines that run the jobs enqueued
// after each ack. Jobs outlive ctx: a delivery that was acknowledged is
// handled even while the bot stops.
func (b *Bot) startWorkers(ctx context.Context) {
	b.jobs = make(chan func(context.Context), 64*b.cfg.Workers)
	base := context.WithoutCancel(ctx)
	for range b.cfg.Workers {
		b.wg.Go(func() {
			for job := range b.jobs {
				jctx, cancel := context.WithTimeout(base, jobTimeout)
				job(jctx)
				cancel()
			}
		})
	}
}

// enqueue hands job to a worker. It waits while the queue is full, which
// holds back further acks rather than dropping acknowledged work.
func (b *Bot) enqueue(job func(context.Context)) {
	b.jobs <- job
}

// stopWorkers waits for the queued jobs to finish. No enqueue may follow.
func (b *Bot) stopWorkers() {
	close(b.jobs)
	b.wg.Wait()
}
