package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

func TestOpenCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "easel")
	db := openTest(t, dir, newClock())
	if db.Dir() != dir {
		t.Errorf("Dir = %s, want %s", db.Dir(), dir)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, DBFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	if err := db.Check(context.Background()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	db, err := Open(ctx, dir, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(ctx, newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := db.UpdateSession(ctx, "s1", queue("U1", clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	s, err := db.UpdateSession(ctx, "s1", finish(1, 1, 0.25, clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkEvent(ctx, "slack/Ev1", time.Hour); err != nil {
		t.Fatal(err)
	}
	usage, _ := db.Usage(ctx, "")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, dir, clk)
	got, err := db.SessionByThread(ctx, "slack", "a")
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, s) {
		t.Errorf("session after reopen = %s\nwant %s", mustJSON(t, got), mustJSON(t, s))
	}
	jobs, err := db.ActiveJobs(ctx)
	if err != nil || !slices.Equal(jobs, []core.JobRef{{SessionID: "s1", TurnID: 2}}) {
		t.Errorf("ActiveJobs after reopen = %v, %v", jobs, err)
	}
	if u, _ := db.Usage(ctx, ""); mustJSON(t, u) != mustJSON(t, usage) || len(u) != 2 {
		t.Errorf("usage after reopen = %+v, want %+v", u, usage)
	}
	if first, err := db.MarkEvent(ctx, "slack/Ev1", time.Hour); first || err != nil {
		t.Errorf("MarkEvent after reopen = %v, %v; want a duplicate", first, err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestOpenLocked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	openTest(t, dir, newClock())

	start := time.Now()
	db, err := Open(ctx, dir, Options{Timeout: 300 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("second Open of a locked data dir succeeded")
	}
	want := "data dir " + dir + " is in use by another Easel process (could not lock " +
		filepath.Join(dir, DBFile) + " within 300ms); stop it or use another data dir"
	if err.Error() != want {
		t.Errorf("err = %q\nwant %q", err, want)
	}
	if took > 2*time.Second {
		t.Errorf("gave up after %v, want about 300ms", took)
	}
}

func TestOpenAfterClose(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	openTest(t, dir, newClock()) // the lock is released
}

func TestOpenCorrupt(t *testing.T) {
	valid := validDB(t)
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i>>8)
	}
	cases := map[string][]byte{
		"empty":         {},
		"garbage":       garbage,
		"short garbage": []byte("hello, I am not a database\n"),
		"text":          []byte(strings.Repeat("easel ", 4096)),
		"one page":      valid[:4096],
		"half":          valid[:len(valid)/2],
		"last page cut": valid[:usedSize(t, valid)-1],
		"meta only":     valid[:2*4096],
		"odd size":      valid[:5000],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, DBFile), data, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(context.Background(), dir, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			want := "data dir " + dir + ": easel.db is not a valid Easel database ("
			t.Log(err)
			if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "); move it aside or restore a backup") {
				t.Errorf("err = %q", err)
			}
			// Nothing was left locked or changed.
			if got, _ := os.ReadFile(filepath.Join(dir, DBFile)); string(got) != string(data) {
				t.Error("Open changed the file")
			}
		})
	}
}

// TestOpenTruncated cuts a valid database short at every KiB: Open must
// refuse each copy without crashing and without leaving the file locked.
func TestOpenTruncated(t *testing.T) {
	valid := validDB(t)
	used := usedSize(t, valid)
	for n := 4096; n < used; n += 1024 {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DBFile), valid[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		opts := Options{Timeout: 100 * time.Millisecond}
		for range 2 { // the second time checks that the first left no lock
			_, err := Open(context.Background(), dir, opts)
			if err == nil || !strings.Contains(err.Error(), "is not a valid Easel database") {
				t.Fatalf("%d of %d bytes: err = %v", n, used, err)
			}
		}
	}
}

// TestOpenDamaged flips bytes all over a valid database: Open must either
// succeed or fail with an error, never crash.
func TestOpenDamaged(t *testing.T) {
	valid := validDB(t)
	dir := t.TempDir()
	path := filepath.Join(dir, DBFile)
	step := 509
	if testing.Short() {
		step = 4093
	}
	var opened, refused, damaged int
	for off := 0; off < len(valid); off += step {
		data := slices.Clone(valid)
		for i := off; i < off+8 && i < len(data); i++ {
			data[i] ^= 0xa5
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(context.Background(), dir, Options{})
		if err != nil {
			refused++
			continue
		}
		opened++
		if db.Check(context.Background()) != nil {
			damaged++
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d damaged copies opened (%d failed Check), %d refused", opened, damaged, refused)
}

// usedSize returns how much of the database in data its pages use; the
// file may be longer.
func usedSize(t *testing.T, data []byte) int {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DBFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	db := openTest(t, dir, newClock())
	defer db.Close()
	var n int64
	db.bolt.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return int(n)
}

// validDB returns the bytes of a small Easel database in use.
func validDB(t *testing.T) []byte {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	db, err := Open(ctx, dir, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		id := fmt.Sprintf("session-%02d", i)
		if err := db.CreateSession(ctx, newSession(id, id)); err != nil {
			t.Fatal(err)
		}
		for range i % 4 {
			if _, err := db.UpdateSession(ctx, id, queue("U1", clk.Now())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpenForeignDatabase(t *testing.T) {
	dir := t.TempDir()
	writeBolt(t, dir, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("kubernetes"))
		return err
	})
	_, err := Open(context.Background(), dir, Options{})
	want := "data dir " + dir + `: easel.db is not a valid Easel database (it has a bucket "kubernetes" but no schema version); move it aside or restore a backup`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestOpenEmptyBolt(t *testing.T) {
	dir := t.TempDir()
	writeBolt(t, dir, func(*bolt.Tx) error { return nil })
	db := openTest(t, dir, newClock())
	if err := db.CreateSession(context.Background(), newSession("s1", "a")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSchema(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"3", "data dir DIR: easel.db was written by a newer Easel (schema 3, this build reads up to 2); upgrade Easel"},
		{"x", `data dir DIR: easel.db is not a valid Easel database (bad schema version "x"); move it aside or restore a backup`},
		{"0", `data dir DIR: easel.db is not a valid Easel database (bad schema version "0"); move it aside or restore a backup`},
	} {
		dir := t.TempDir()
		openTest(t, dir, newClock()).Close()
		writeBolt(t, dir, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, []byte(tc.value))
		})
		_, err := Open(context.Background(), dir, Options{})
		if want := strings.ReplaceAll(tc.want, "DIR", dir); err == nil || err.Error() != want {
			t.Errorf("schema %q: err = %v\nwant %s", tc.value, err, want)
		}
	}
}

func TestSchemaRecorded(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, newClock()).Close()
	writeBolt(t, dir, func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "2" {
			t.Errorf("schema = %q, want 2", v)
		}
		return nil
	})
}

func TestMigrateFromSchema1(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, newClock()).Close()
	writeBolt(t, dir, func(tx *bolt.Tx) error { // as Easel with schema 1 left it
		if err := tx.DeleteBucket(bucketInbox); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	})
	db := openTest(t, dir, newClock())
	ctx := context.Background()
	if first, err := db.Receive(ctx, "k", "test", []byte(`{}`), time.Hour); err != nil || !first {
		t.Fatalf("Receive after migrating = %v, %v", first, err)
	}
}

// writeBolt runs fn in a write transaction on dir's database, bypassing Open.
func writeBolt(t *testing.T, dir string, fn func(*bolt.Tx) error) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
}
