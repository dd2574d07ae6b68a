// Package storage keeps Easel's refinement sessions in a bbolt database:
// easel.db in a data dir holds sessions, turns, the job index, usage
// counters, the inbox of deliveries and processed event ids. Image bytes
// live apart (see storage/imagedir, which keeps them in the data dir's
// images/): bbolt files never shrink.
//
// DB implements core.SessionStore and passes the contract suite of
// storage/storetest. Every write is one bbolt transaction; bbolt allows
// one writer at a time, so concurrent updates of a session are serialised
// and none is lost. Concurrent writes share a commit, and so its fsyncs
// (see commit.go). No transaction spans anything but bbolt itself.
package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// DBFile is the name of the bbolt file inside a data dir.
const DBFile = "easel.db"

// DefaultOpenTimeout is how long Open waits for the database file lock by
// default.
const DefaultOpenTimeout = 2 * time.Second

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Timeout bounds the wait for the database file lock, which another
	// Easel process on the same data dir holds. Default DefaultOpenTimeout.
	Timeout time.Duration
	// Logger receives notes about schema migrations and odd inputs.
	// Default: discard.
	Logger *slog.Logger
	// Now returns the current time; tests set it. Default time.Now.
	Now func() time.Time
}

// DB is an open data dir. Its methods may be called from many goroutines.
type DB struct {
	dir  string
	bolt *bolt.DB
	log  *slog.Logger
	now  func() time.Time

	writes  committer // writes waiting for a shared commit
	journal *journal  // the inbox journal; nil until Open has migrated the schema
}

// DB is Easel's session store.
var _ core.SessionStore = (*DB)(nil)

// Open opens the data dir, creating it (mode 0700) and its database (mode
// 0600) as needed, and brings the database's schema
// up to date. It returns an error naming dir when the database stays locked
// by another process for opts.Timeout, is not a valid Easel database (empty,
// truncated, damaged, or another program's), or was written by a newer
// Easel; the message says what to do, so show it as it is.
func Open(ctx context.Context, dir string, opts Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultOpenTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	dir = abs // the path is shown to people: make it unambiguous
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	db := &DB{dir: dir, log: opts.Logger, now: opts.Now}
	if err := db.open(ctx, opts.Timeout); err != nil {
		return nil, err
	}
	return db, nil
}

// Dir returns the absolute path of the data dir the DB was opened on.
func (db *DB) Dir() string { return db.dir }

// Location names the store for people: its data dir.
func (db *DB) Location() string { return db.dir }

// Close moves what the inbox journal holds into the database, closes the
// journal and releases the database and its lock. It returns the first
// error in closing them. The DB must not be used afterwards.
func (db *DB) Close() error {
	jerr := db.journal.close(db)
	if err := db.bolt.Close(); err != nil {
		return err
	}
	return jerr
}

// update runs fn in a write transaction, after checking ctx, and returns
// once it is committed. It returns fn's error unchanged (then nothing fn
// wrote is kept) or bbolt's failure to commit. Concurrent updates share
// commits (see commit): fn may run more than once and must read what it
// changes from its transaction. fn returns unchanged(err) to fail without
// having written anything.
func (db *DB) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	err := db.commit(func(tx *bolt.Tx) error {
		fnErr = nil
		err := fn(tx)
		if u, ok := err.(unchangedError); ok {
			fnErr = u.err
		} else {
			fnErr = err
		}
		return err
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("storage: write %s: %w", db.bolt.Path(), err)
	}
	return err
}

// view runs fn in a read-only transaction, after checking ctx. It returns
// fn's error unchanged.
func (db *DB) view(ctx context.Context, fn func(*bolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer db.recoverDamage(&err)
	return db.bolt.View(fn)
}

// recoverDamage turns a panic inside a transaction (bbolt panics on some
// damaged pages) into an error, so one bad read fails one request instead of
// the process. bbolt has already rolled the transaction back, so nothing
// was written. The error names the database file in the data dir, also when
// db reads a snapshot of it.
func (db *DB) recoverDamage(err *error) {
	if r := recover(); r != nil {
		path := filepath.Join(db.dir, DBFile)
		*err = fmt.Errorf("storage: %s is damaged (%v); Easel has not changed it (the operation was rolled back): stop Easel, move the damaged file aside and restore %s from a backup", path, r, path)
	}
}

// Commits returns how many write transactions have been committed to the
// database file since it was created (bbolt's transaction id). Each commit
// costs two fdatasyncs, one for its pages and one for its meta page, so
// benchmarks count fsyncs per turn as twice the commits they made.
func (db *DB) Commits(ctx context.Context) (uint64, error) {
	var id int
	err := db.view(ctx, func(tx *bolt.Tx) error {
		id = tx.ID()
		return nil
	})
	return uint64(id), err
}
