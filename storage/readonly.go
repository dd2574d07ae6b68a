package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/easel-bot/easel/internal/regfile"
)

// snapshotAttempts bounds how often OpenReadOnly copies a database that
// keeps changing while it is copied.
const snapshotAttempts = 20

// snapshotCopied, if set (by tests), is called after each copy of a
// snapshot and before the copy is checked.
var snapshotCopied func(attempt int)

// OpenReadOnly opens the data dir dir for reading only, for the commands
// that only read (`easel usage`, `easel sessions`): it creates nothing,
// migrates nothing and writes nothing, and every method that writes fails.
// It works on a read-only file system. The deliveries in the inbox journal
// that the database lacks (see journal.go) are read when it opens, and
// Unhandled lists them with the database's.
//
// bbolt lets one process write a database, or several read it, never both:
// the writer's lock excludes readers. So when another process holds the
// database (`easel run`, say), OpenReadOnly reads a snapshot instead: it
// copies the file to a temporary file, keeping the copy only if neither of
// bbolt's two meta pages changed while it was copied. A bbolt commit writes
// its pages where no page of the latest commit is, then one meta page; a
// page of the latest commit is freed by the next commit and reused no sooner
// than the one after. With the meta pages unchanged no commit completed
// meanwhile, so the copy holds the latest commit whole. The copy is deleted as soon as it is
// open (on Unix; elsewhere it stays in the temporary directory) and the DB
// reads it as it was when copied.
//
// opts.Timeout is not used: OpenReadOnly does not wait for a lock. It
// returns an error naming dir when dir does not exist or is not a directory,
// has no database, the database is not a valid one (or not a regular file),
// needs migrating (start Easel once) or was written by a newer Easel, or
// kept changing during every one of 20 copies.
func OpenReadOnly(ctx context.Context, dir string, opts Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
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
	dir = abs
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("data dir %s does not exist; only easel chat and easel run create one", dir)
	case err != nil:
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("data dir %s is not a directory", dir)
	}
	path := filepath.Join(dir, DBFile)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("data dir %s has no %s: nothing has been recorded there yet", dir, DBFile)
	case err != nil:
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	case !fi.Mode().IsRegular(): // bbolt would wait forever on a named pipe
		return nil, notDatabase(dir, &regfile.NotRegularError{Mode: fi.Mode()})
	case fi.Size() == 0:
		return nil, notDatabase(dir, errors.New("the file is empty"))
	}
	db := &DB{dir: dir, log: opts.Logger, now: opts.Now}
	// The journal is read before the database: a record moved into the
	// database meanwhile is found there, and one truncated away before it
	// was read had been moved before.
	journaled, err := readJournalOnly(filepath.Join(dir, journalFile))
	if err != nil {
		return nil, fmt.Errorf("data dir %s: inbox journal: %w", dir, err)
	}

	// A shared lock: granted unless a writer holds the database. Timeout
	// below bbolt's retry interval means a single try.
	err = db.openBolt(path, time.Nanosecond)
	if !errors.Is(err, berrors.ErrTimeout) {
		if err == nil {
			err = db.loadJournalOnly(ctx, journaled)
		}
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	tmp, err := os.CreateTemp("", "easel-snapshot-*.db")
	if err != nil {
		return nil, fmt.Errorf("data dir %s: snapshot: %w", dir, err)
	}
	defer tmp.Close()
	keep := false
	defer func() {
		if !keep {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := snapshot(ctx, path, tmp); err != nil {
		return nil, fmt.Errorf("data dir %s: snapshot of %s: %w", dir, DBFile, err)
	}
	if err := db.openBolt(tmp.Name(), time.Second); err != nil {
		return nil, err
	}
	if err := db.loadJournalOnly(ctx, journaled); err != nil {
		return nil, err
	}
	if err := os.Remove(tmp.Name()); err != nil {
		keep = true // an open file cannot be removed on some systems
		db.log.Warn("storage: could not remove a snapshot; delete it when done", "file", tmp.Name(), "err", err)
	}
	return db, nil
}

// readJournalOnly returns the contents of the inbox journal at path, or
// nothing if there is none, without creating or changing it. Anything but
// a regular file there is refused, as Open refuses it.
func readJournalOnly(path string) ([]byte, error) {
	f, _, err := regfile.OpenNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readJournal(f, path)
}

// loadJournalOnly gives db, opened read-only, the journal whose contents
// are data: the records the database lacks, which Unhandled lists as Open
// would replay them. A bad record ends them, as it ends a replay; nothing
// is logged or written.
func (db *DB) loadJournalOnly(ctx context.Context, data []byte) error {
	j, _, err := db.loadJournal(ctx, filepath.Join(db.dir, journalFile), nil, data)
	if err != nil {
		_ = db.bolt.Close()
		return err
	}
	db.journal = j
	return nil
}

// openBolt opens path read-only as db.bolt, waiting up to timeout for a
// shared lock, and checks that it is a whole Easel database of the current
// schema. As in open, bbolt's panics and faults on damaged files become
// errors.
func (db *DB) openBolt(path string, timeout time.Duration) error {
	return db.guardedOpen(path, bolt.Options{ReadOnly: true, Timeout: timeout}, func(err error) error {
		if errors.Is(err, berrors.ErrTimeout) {
			return err
		}
		if err != nil {
			return openError(db.dir, timeout, err)
		}
		if err := db.checkSize(); err != nil {
			return err
		}
		return db.view(context.Background(), func(tx *bolt.Tx) error {
			v, err := db.schema(tx)
			if err == nil && v < schemaVersion {
				err = fmt.Errorf("data dir %s: %s has schema %d and needs migrating to %d: start Easel on it once (easel run or easel chat), then try again",
					db.dir, DBFile, v, schemaVersion)
			}
			return err
		})
	})
}

// snapshot copies the bbolt file at src into dst (empty), retrying until no
// commit completes during a copy: until both meta pages read the same before
// and after it.
func snapshot(ctx context.Context, src string, dst *os.File) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	for attempt := 1; attempt <= snapshotAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		before, used, err := metaPages(in)
		if err != nil {
			return err
		}
		if err := dst.Truncate(0); err != nil {
			return err
		}
		if _, err := io.Copy(io.NewOffsetWriter(dst, 0), io.NewSectionReader(in, 0, used)); err != nil {
			return err
		}
		if snapshotCopied != nil {
			snapshotCopied(attempt)
		}
		after, _, err := metaPages(in)
		if err != nil {
			return err
		}
		if bytes.Equal(before, after) {
			return nil
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond) // let a burst of commits pass
	}
	return fmt.Errorf("it changed during each of %d copies; try again when Easel is less busy", snapshotAttempts)
}

// metaPages returns the bytes of a bbolt file's two meta pages, pages 0 and
// 1, and how many bytes of the file their commits use: the larger of their
// high-water marks, or the whole file if neither is readable.
//
// A meta page is a 16-byte page header followed by, in the machine's byte
// order: magic (uint32) at 16, format version at 20, page size at 24, flags
// at 28, the root bucket (two uint64s) at 32, the freelist page at 48, the
// high-water mark in pages at 56, the transaction id at 64 and a checksum at
// 72. The page size is read from page 0; if page 0 is unreadable, 64 KiB
// pages, the largest, are assumed.
func metaPages(f *os.File) (metas []byte, used int64, err error) {
	const magic, maxPage = 0xED0CDAED, 64 << 10
	head := make([]byte, 80)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, 0, fmt.Errorf("read meta page: %w", err)
	}
	size := int64(maxPage)
	if ps := int64(binary.NativeEndian.Uint32(head[24:])); binary.NativeEndian.Uint32(head[16:]) == magic && ps >= 512 && ps <= size && ps&(ps-1) == 0 {
		size = ps
	}
	buf := make([]byte, 2*size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("read meta pages: %w", err)
	}
	buf = buf[:n]
	for _, m := range [][]byte{buf[:min(n, 80)], buf[min(n, int(size)):min(n, int(size)+80)]} {
		if len(m) == 80 && binary.NativeEndian.Uint32(m[16:]) == magic {
			used = max(used, int64(binary.NativeEndian.Uint64(m[56:]))*size)
		}
	}
	if used <= 0 || used > 1<<50 {
		used = 1 << 62 // unreadable: copy it all
	}
	return buf, used, nil
}
