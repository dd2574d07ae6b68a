package storage

import (
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Writes share commits. Each bbolt commit costs two fdatasyncs, and bbolt
// admits one writer at a time, so writes made one commit each queue up
// behind each other's fsyncs under load. Instead, every write joins a
// queue: when no commit is in flight, the write is committed at once, in a
// transaction of its own (no waiting window, unlike bbolt's Batch, whose
// 10 ms window delayed a lone delivery's ack); writes that arrive while a
// commit is in flight are committed together in the next one, as soon as
// it ends. Each write still returns only once its commit is durable.
//
// Every commit begins by moving the records synced to the inbox journal
// into bbolt (see journal.go), so that a write queued after a delivery was
// journaled finds it in bbolt. The journal asks for a commit of its own
// (kick) when records it synced were not moved by another within
// moveDelay.

// committer is the queue of writes waiting for a commit.
type committer struct {
	mu      sync.Mutex
	queue   []*write
	leading bool // a goroutine is committing the queue
	again   bool // the journal asked for a commit while one was in flight
}

// write is one queued write transaction function and its outcome.
type write struct {
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{} // closed when err is known, for a caller of commit
	then func(error)   // or called with err, for the journal's writes
}

// finish hands w's outcome over.
func (w *write) finish() {
	if w.then != nil {
		w.then(w.err)
		return
	}
	close(w.done)
}

// unchangedError is the error of a write that failed before changing
// anything in its transaction: the writes sharing its commit go on.
type unchangedError struct{ err error }

func (u unchangedError) Error() string { return u.err.Error() }

// unchanged marks err as returned by a write function before it changed
// anything.
func unchanged(err error) error { return unchangedError{err} }

// commit runs fn in a write transaction, possibly shared with concurrent
// writes, and returns once that transaction is committed (nil) or rolled
// back (fn's error, or bbolt's). fn may run again in a new transaction if
// a write sharing its transaction fails after changing it (the rest are
// then retried without that one), so fn must be idempotent: it reads what
// it changes from tx.
func (db *DB) commit(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan struct{})}
	c := &db.writes
	c.mu.Lock()
	c.queue = append(c.queue, w)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if lead {
		db.lead()
	}
	<-w.done
	return w.err
}

// lead commits the queued writes, which include the caller's, after
// moving what the inbox journal holds, then hands the queue on to a
// goroutine of its own if more writes arrived meanwhile (or the journal
// asked for a commit), so that the caller returns as soon as its own
// commit is done.
func (db *DB) lead() {
	c := &db.writes
	c.mu.Lock()
	group := c.queue
	c.queue, c.again = nil, false
	c.mu.Unlock()
	if m := db.journal.migration(db); m != nil {
		group = append([]*write{m}, group...)
	}
	if len(group) > 0 {
		db.commitGroup(group)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 && !c.again {
		c.leading = false
		return
	}
	go db.lead()
}

// kick makes a commit happen soon, with no write of its own, to move what
// the inbox journal holds: at once in a goroutine of its own when no
// commit is in flight, else right after the one in flight.
func (db *DB) kick() {
	c := &db.writes
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leading {
		c.again = true
		return
	}
	c.leading = true
	go db.lead()
}

// commitGroup commits group's writes in one transaction. A write that
// fails before changing anything gets its error and the others carry on;
// one that fails after changing the transaction gets its error, the
// transaction is rolled back and the others are committed without it.
func (db *DB) commitGroup(group []*write) {
	for len(group) > 0 {
		failed := -1
		var failErr error
		var skip []int // writes that failed unchanged
		err := db.guardedUpdate(func(tx *bolt.Tx) error {
			for i, w := range group {
				err := db.runWrite(tx, w.fn)
				if u, ok := err.(unchangedError); ok {
					w.err = u.err
					skip = append(skip, i)
					continue
				}
				if err != nil {
					failed, failErr = i, err
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			w := group[failed]
			w.err = failErr
			group = slices.Delete(group, failed, failed+1)
			for _, w := range group {
				w.err = nil // to be run again
			}
			w.finish()
			continue
		}
		for i, w := range group {
			if !slices.Contains(skip, i) {
				w.err = err
			}
			w.finish()
		}
		return
	}
}

// runWrite runs fn in tx, turning a panic (bbolt panics on some damaged
// pages) into an error.
func (db *DB) runWrite(tx *bolt.Tx, fn func(*bolt.Tx) error) (err error) {
	defer db.recoverDamage(&err)
	return fn(tx)
}

// guardedUpdate is bbolt's Update, with a panic in the commit itself turned
// into an error; bbolt has rolled the transaction back.
func (db *DB) guardedUpdate(fn func(*bolt.Tx) error) (err error) {
	defer db.recoverDamage(&err)
	return db.bolt.Update(fn)
}
