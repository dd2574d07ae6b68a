package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/easel-bot/easel/internal/atomicfile"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// open opens and locks dir/easel.db, checks that it is whole, brings its
// schema up to date and replays the inbox journal, setting db.bolt and
// db.journal. bbolt trusts the file it maps: a damaged one can make it
// panic, or fault on a page past the end of the file. Both are caught here
// and reported as an invalid database.
func (db *DB) open(ctx context.Context, timeout time.Duration) error {
	path := filepath.Join(db.dir, DBFile)
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		// bbolt would quietly start a new database in an empty file, hiding
		// the loss of the old one.
		return notDatabase(db.dir, errors.New("the file is empty"))
	}
	err := db.guardedOpen(path, bolt.Options{Timeout: timeout}, func(err error) error {
		if err != nil {
			return openError(db.dir, timeout, err)
		}
		if err := db.checkSize(); err != nil {
			return err
		}
		if err := db.migrate(ctx); err != nil {
			return err
		}
		return db.openJournal(ctx)
	})
	if err != nil {
		return err
	}
	return atomicfile.SyncDir(db.dir) // make the new easel.db entry durable
}

// guardedOpen opens path with opts as db.bolt and passes bolt.Open's error
// to then, which explains it or checks the open database. A panic or memory fault in
// bbolt, which a damaged file can cause, becomes an invalid-database error;
// on any error the database is closed, or the lock released if bolt.Open
// got no further than taking it.
func (db *DB) guardedOpen(path string, opts bolt.Options, then func(error) error) (err error) {
	var file *os.File // kept to release the lock if bolt.Open panics
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = notDatabase(db.dir, fmt.Errorf("bbolt: %v", r))
		}
		if err == nil {
			return
		}
		if db.bolt != nil {
			_ = db.bolt.Close()
			db.bolt = nil
		} else if file != nil {
			unlock(file)
			_ = file.Close()
		}
	}()
	db.bolt, err = bolt.Open(path, 0o600, &opts)
	return then(err)
}

// openError explains an error from bolt.Open.
func openError(dir string, timeout time.Duration, err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("data dir %s is in use by another Easel process (could not lock %s within %s); stop it or use another data dir",
			dir, filepath.Join(dir, DBFile), timeout)
	case errors.As(err, new(*fs.PathError)), errors.As(err, &errno):
		return fmt.Errorf("data dir %s: open %s: %w", dir, DBFile, err)
	default: // bbolt's own complaints about the file's contents
		return notDatabase(dir, err)
	}
}

// notDatabase returns the error for a data dir whose easel.db cannot be
// used, with why.
func notDatabase(dir string, why error) error {
	return fmt.Errorf("data dir %s: %s is not a valid Easel database (%w); move it aside or restore a backup", dir, DBFile, why)
}

// checkSize refuses a file shorter than the pages its metadata claims.
// Reading those pages would fault, so this runs before anything else reads.
func (db *DB) checkSize() error {
	fi, err := os.Stat(db.bolt.Path())
	if err != nil {
		return fmt.Errorf("data dir %s: %w", db.dir, err)
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		if fi.Size() < tx.Size() {
			return notDatabase(db.dir, fmt.Errorf("the file is truncated: %d bytes, its pages need %d", fi.Size(), tx.Size()))
		}
		return nil
	})
}
