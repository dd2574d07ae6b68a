package storage

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// holdCommits starts a write that blocks inside its transaction until the
// returned release is called, so that writes made meanwhile queue up for
// the next commit.
func holdCommits(t *testing.T, db *DB) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	var once sync.Once
	go func() {
		done <- db.commit(func(*bolt.Tx) error {
			once.Do(func() { close(entered) })
			<-gate
			return nil
		})
	}()
	<-entered
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding write: %v", err)
		}
	}
}

// queued waits until n writes wait in db's queue.
func queued(db *DB, n int) {
	for {
		db.writes.mu.Lock()
		k := len(db.writes.queue)
		db.writes.mu.Unlock()
		if k >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestWritesShareCommits(t *testing.T) {
	db := openTest(t, t.TempDir(), newClock())
	ctx := context.Background()
	before, err := db.Commits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := holdCommits(t, db)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := db.CreateSession(ctx, newSession(fmt.Sprint("s", i), fmt.Sprint(i))); err != nil {
				t.Errorf("create session %d: %v", i, err)
			}
		})
	}
	queued(db, n)
	release()
	wg.Wait()
	after, err := db.Commits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The held write's commit, then one for the 20 queued behind it.
	if got := after - before; got != 2 {
		t.Errorf("%d writes made %d commits, want 2", n+1, got)
	}
	list, err := db.Sessions(ctx)
	if err != nil || len(list) != n {
		t.Fatalf("sessions: %d, err %v; want %d", len(list), err, n)
	}
}

func TestFailingWriteSparesItsCommit(t *testing.T) {
	for _, dirty := range []bool{false, true} {
		t.Run(fmt.Sprintf("changed=%v", dirty), func(t *testing.T) {
			db := openTest(t, t.TempDir(), newClock())
			ctx := context.Background()
			release := holdCommits(t, db)
			var runs atomic.Int64
			put := func(key string) func(*bolt.Tx) error {
				return func(tx *bolt.Tx) error {
					runs.Add(1)
					return tx.Bucket(bucketInbox).Put([]byte(key), []byte(`{}`))
				}
			}
			boom := errors.New("boom")
			errs := make([]error, 3)
			var wg sync.WaitGroup
			wg.Go(func() { errs[0] = db.commit(put("a")) })
			queued(db, 1)
			wg.Go(func() {
				errs[1] = db.commit(func(tx *bolt.Tx) error {
					if !dirty {
						return unchanged(boom)
					}
					if err := tx.Bucket(bucketInbox).Put([]byte("bad"), []byte(`{}`)); err != nil {
						return err
					}
					return boom
				})
			})
			queued(db, 2)
			wg.Go(func() { errs[2] = db.commit(put("c")) })
			queued(db, 3)
			release()
			wg.Wait()
			if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], boom) {
				t.Fatalf("errors %v, want nil, boom, nil", errs)
			}
			err := db.view(ctx, func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketInbox)
				if b.Get([]byte("a")) == nil || b.Get([]byte("c")) == nil || b.Get([]byte("bad")) != nil {
					return errors.New("want a and c kept and bad not")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// A write that failed unchanged leaves the others alone; one that
			// failed after changing the transaction makes the ones before it
			// run again.
			want := int64(2)
			if dirty {
				want = 3
			}
			if got := runs.Load(); got != want {
				t.Errorf("the other writes ran %d times, want %d", got, want)
			}
		})
	}
}

// Writes are committed in the order they were queued: within a commit,
// when the commit is made again without a write that failed after changing
// it, and across commits.
func TestWritesCommitInOrder(t *testing.T) {
	db := openTest(t, t.TempDir(), newClock())
	ctx := context.Background()
	gate, reached := make(chan struct{}), make(chan struct{})
	var once sync.Once
	appendName := func(name string, gate chan struct{}) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			if gate != nil {
				once.Do(func() { close(reached) })
				<-gate
			}
			b, err := tx.CreateBucketIfNotExists([]byte("test"))
			if err != nil {
				return err
			}
			return b.Put([]byte("order"), append(slices.Clone(b.Get([]byte("order"))), name...))
		}
	}
	release := holdCommits(t, db)
	var wg sync.WaitGroup
	for i, name := range []string{"a", "b", "x", "c"} {
		wg.Go(func() {
			var err error
			switch name {
			case "x":
				err = db.commit(func(tx *bolt.Tx) error {
					if err := appendName(name, nil)(tx); err != nil {
						return err
					}
					return errors.New("boom")
				})
			case "c": // held inside the first commit, while d and e queue
				err = db.commit(appendName(name, gate))
			default:
				err = db.commit(appendName(name, nil))
			}
			if (err != nil) != (name == "x") {
				t.Errorf("write %s: %v", name, err)
			}
		})
		queued(db, i+1)
	}
	release()
	<-reached // the first commit has taken a to c off the queue
	for i, name := range []string{"d", "e"} {
		wg.Go(func() {
			if err := db.commit(appendName(name, nil)); err != nil {
				t.Errorf("write %s: %v", name, err)
			}
		})
		queued(db, i+1)
	}
	close(gate)
	wg.Wait()
	var got string
	if err := db.view(ctx, func(tx *bolt.Tx) error {
		got = string(tx.Bucket([]byte("test")).Get([]byte("order")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != "abcde" {
		t.Errorf("writes committed in the order %q, want abcde", got)
	}
}
