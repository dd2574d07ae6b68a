package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

func TestUsageTotals(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := db.UpdateSession(ctx, "s1", queue("U1", clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	for _, fn := range []func(*core.Session) error{finish(1, 3, 0.25, clk.Now()), finish(2, 1, 0.5, clk.Now())} {
		if _, err := db.UpdateSession(ctx, "s1", fn); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]core.UsageTotals{
		core.UserDayKey("slack", "U1", clk.Now()):                   {Turns: 2, Images: 4, CostUSD: 0.75},
		core.WorkspaceMonthKey("slack", "T1", clk.Now()):            {Turns: 2, Images: 4, CostUSD: 0.75},
		core.UserDayKey("slack", "U1", clk.Now().Add(24*time.Hour)): {},
		core.UserDayKey("slack", "U2", clk.Now()):                   {},
	} {
		got, err := db.UsageTotals(ctx, key)
		if err != nil || got != want {
			t.Errorf("UsageTotals(%s) = %+v, %v; want %+v", key, got, err, want)
		}
	}
}

// fill stores a session with n done turns by user U1 in dir's database.
func fill(t *testing.T, db *DB, id string, n int) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateSession(ctx, newSession(id, id)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := db.UpdateSession(ctx, id, queue("U1", db.now())); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateSession(ctx, id, finish(i, 1, 0.1, db.now())); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	t.Setenv("TMPDIR", t.TempDir()) // where snapshots would go: must stay empty
	dir := t.TempDir()
	clk := newClock()
	db, err := Open(ctx, dir, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, "s1", 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}

	// Nobody holds it: read in place, with a shared lock, several at once.
	ro1, err := OpenReadOnly(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ro2, err := OpenReadOnly(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	for _, ro := range []*DB{ro1, ro2} {
		if u, err := ro.UsageTotals(ctx, core.UserDayKey("slack", "U1", clk.Now())); err != nil || u.Images != 3 {
			t.Errorf("read-only usage = %+v, %v; want 3 images", u, err)
		}
		if ro.Dir() != dir {
			t.Errorf("Dir = %s, want %s", ro.Dir(), dir)
		}
	}
	if err := ro1.CreateSession(ctx, newSession("s2", "b")); err == nil {
		t.Error("a write through a read-only DB succeeded")
	}
	if entries, _ := os.ReadDir(os.Getenv("TMPDIR")); len(entries) != 0 {
		t.Errorf("a snapshot was made of a database nobody holds: %v", entries)
	}
	for _, ro := range []*DB{ro1, ro2} {
		if err := ro.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, DBFile)); !bytes.Equal(before, after) {
		t.Error("opening read-only changed the database file")
	}

	// Errors: no data dir (and nothing created), no database, not a
	// directory, not a database.
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := OpenReadOnly(ctx, missing, Options{}); err == nil || err.Error() != "data dir "+missing+" does not exist; only easel chat and easel run create one" {
		t.Errorf("OpenReadOnly of a missing dir: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("OpenReadOnly created %s", missing)
	}
	empty := t.TempDir()
	if _, err := OpenReadOnly(ctx, empty, Options{}); err == nil || !strings.Contains(err.Error(), "nothing has been recorded there yet") {
		t.Errorf("OpenReadOnly of a dir without a database: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("OpenReadOnly created %v in %s", entries, empty)
	}
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, DBFile), Options{}); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("OpenReadOnly of a file: %v", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, DBFile), bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(ctx, bad, Options{}); err == nil || !strings.Contains(err.Error(), "not a valid Easel database") {
		t.Errorf("OpenReadOnly of garbage: %v", err)
	}
}

// While another process holds the database (here another DB in this
// process: flock locks belong to the open file, so it excludes us just the
// same), OpenReadOnly reads a snapshot, and a snapshot during which a commit
// landed is taken again.
func TestOpenReadOnlyWhileHeld(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := t.TempDir()
	writer := openTest(t, dir, newClock())
	fill(t, writer, "s1", 2)

	var copies []int
	snapshotCopied = func(attempt int) {
		copies = append(copies, attempt)
		if attempt == 1 { // a commit lands while the first copy is checked
			fill(t, writer, "s2", 1)
		}
	}
	t.Cleanup(func() { snapshotCopied = nil })
	began := time.Now()
	ro, err := OpenReadOnly(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("OpenReadOnly while held: %v", err)
	}
	defer ro.Close()
	t.Logf("snapshot of a held %s in %v", DBFile, time.Since(began))
	if len(copies) != 2 {
		t.Errorf("copies made: %v; want a second copy after a commit changed the meta pages during the first", copies)
	}
	if u, err := ro.UsageTotals(ctx, core.UserDayKey("slack", "U1", newClock().Now())); err != nil || u.Images != 3 {
		t.Errorf("usage in the snapshot = %+v, %v; want the 3 images committed before it was taken", u, err)
	}
	if err := ro.bolt.View(func(tx *bolt.Tx) error { return firstProblem(tx) }); err != nil {
		t.Errorf("the snapshot is not consistent: %v", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("snapshot files left behind: %v", entries)
	}
	// The writer is not disturbed.
	fill(t, writer, "s3", 1)
}

// TestOpenReadOnlyUnderLoad takes snapshots while a writer commits without
// pause: each snapshot must pass bbolt's consistency check and show a state
// that some commit left (an invariant each commit keeps).
func TestOpenReadOnlyUnderLoad(t *testing.T) {
	ctx := context.Background()
	t.Setenv("TMPDIR", t.TempDir())
	dir := t.TempDir()
	writer := openTest(t, dir, newClock())
	fill(t, writer, "s1", 1)
	// Some rows, so that a copy takes a while, and commits without fsync, so
	// that some land during one.
	err := writer.bolt.Update(func(tx *bolt.Tx) error {
		for i := range 2000 {
			if err := tx.Bucket(bucketUsage).Put(fmt.Appendf(nil, "user/bulk/U%05d/2026-03-04", i), bytes.Repeat([]byte("{}"), 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	writer.bolt.NoSync = true

	// Each commit adds a row and rewrites a total that counts the rows.
	var commits atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := writer.bolt.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketUsage)
				row, _ := json.Marshal(usageRow{Turns: 1, Images: 1})
				if err := b.Put(fmt.Appendf(nil, "user/load/U%05d/2026-03-04", i), append(row, bytes.Repeat([]byte(" "), 200)...)); err != nil {
					return err
				}
				total, _ := json.Marshal(usageRow{Turns: int64(i + 1)})
				return b.Put([]byte("workspace/load/-/2026-03"), total)
			})
			if err != nil {
				t.Error(err)
				return
			}
			commits.Add(1)
			time.Sleep(time.Millisecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()

	var retries int
	snapshotCopied = func(attempt int) {
		if attempt > 1 {
			retries++
		}
	}
	t.Cleanup(func() { snapshotCopied = nil })
	const rounds = 20
	ok := 0
	for range rounds {
		ro, err := OpenReadOnly(ctx, dir, Options{})
		if err != nil {
			if !strings.Contains(err.Error(), "changed during each of") {
				t.Fatal(err)
			}
			continue // the writer won every race this time: refused, not misread
		}
		ok++
		rows, err := ro.Usage(ctx, "user/load/")
		if err != nil {
			t.Fatal(err)
		}
		total, err := ro.UsageTotals(ctx, "workspace/load/-/2026-03")
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(rows)) != total.Turns {
			t.Errorf("snapshot shows %d rows but a total of %d: not a state any commit left", len(rows), total.Turns)
		}
		if err := ro.bolt.View(func(tx *bolt.Tx) error { return firstProblem(tx) }); err != nil {
			t.Errorf("snapshot fails bbolt's check: %v", err)
		}
		if err := ro.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if ok == 0 {
		t.Fatalf("no snapshot of %d succeeded while the writer ran", rounds)
	}
	t.Logf("%d of %d snapshots taken during %d commits, %d copies retried", ok, rounds, commits.Load(), retries)
}

// firstProblem returns the first problem bbolt's consistency check finds in
// tx, or nil.
func firstProblem(tx *bolt.Tx) error {
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	return first
}
