package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/easel-bot/easel/core"
)

// logBuffer is a slog destination tests read back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// openLogged opens a DB on dir with clk, logging into the returned buffer.
func openLogged(t *testing.T, dir string, clk *clock) (*DB, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	db, err := Open(context.Background(), dir, Options{Now: clk.Now, Timeout: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, logs
}

// crashImage copies dir's database and inbox journal, as a crash at this
// moment would leave them, into a new directory and returns it. Commits
// must be held (holdCommits), so that bbolt writes nothing meanwhile.
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	img := t.TempDir()
	for _, name := range []string{DBFile, journalFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// receive receives a delivery of key, failing the test unless it is the
// first.
func receive(t *testing.T, db *DB, key string, ttl time.Duration) {
	t.Helper()
	first, err := db.Receive(context.Background(), key, "event", []byte(`{"key":"`+key+`"}`), ttl)
	if err != nil || !first {
		t.Fatalf("Receive(%s) = %v, %v; want a first delivery", key, first, err)
	}
}

// unhandled returns the keys of db's unhandled deliveries, oldest first.
func unhandled(t *testing.T, db *DB) []string {
	t.Helper()
	ds, err := db.Unhandled(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range ds {
		keys = append(keys, d.Key)
	}
	return keys
}

// journalSize returns the size of dir's inbox journal.
func journalSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// inboxEntries returns the keys of the inbox bucket, as bbolt holds it.
func inboxEntries(t *testing.T, db *DB) []string {
	t.Helper()
	var keys []string
	err := db.view(context.Background(), func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInbox).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// flushed waits until db's journal is moved into bbolt.
func flushed(t *testing.T, db *DB) {
	t.Helper()
	if err := db.journal.flush(db); err != nil {
		t.Fatal(err)
	}
}

// A delivery is acknowledged once the journal is synced, while a commit is
// in flight: the ack waits for no commit. Meanwhile it is a duplicate for a
// second Receive and for MarkEvent, and Unhandled lists it; the next
// commit moves it into bbolt, ahead of the writes queued behind it.
func TestReceiveWaitsForNoCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir, newClock())
	release := holdCommits(t, db)
	received := make(chan error, 1)
	go func() {
		_, err := db.Receive(ctx, "ev1", "event", []byte(`{"n":1}`), time.Hour)
		received <- err
	}()
	select {
	case err := <-received:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		release()
		t.Fatal("Receive waited for the commit in flight")
	}
	if first, err := db.Receive(ctx, "ev1", "event", []byte(`{"n":2}`), time.Hour); first || err != nil {
		t.Errorf("a second Receive of a journaled delivery = %v, %v; want a duplicate", first, err)
	}
	if first, err := db.MarkEvent(ctx, "ev1", time.Hour); first || err != nil {
		t.Errorf("MarkEvent of a journaled delivery = %v, %v; want a duplicate", first, err)
	}
	if got := unhandled(t, db); !slices.Equal(got, []string{"ev1"}) {
		t.Errorf("Unhandled while journaled = %v, want [ev1]", got)
	}
	if got := inboxEntries(t, db); len(got) != 0 {
		t.Errorf("bbolt's inbox holds %v before any commit moved it", got)
	}
	release()
	flushed(t, db)
	if got := inboxEntries(t, db); !slices.Equal(got, []string{"ev1"}) {
		t.Errorf("bbolt's inbox = %v after the journal was moved, want [ev1]", got)
	}
	ds, err := db.Unhandled(ctx)
	if err != nil || len(ds) != 1 || string(ds[0].Payload) != `{"n":1}` || ds[0].Kind != "event" {
		t.Errorf("Unhandled = %+v, %v; want the first delivery of ev1", ds, err)
	}
}

// The turn a journaled delivery asks for, recorded while the delivery is
// not yet in bbolt, finds it there: its commit moves the journal first. So
// does it when a write sharing that commit fails after changing it (the
// commit is made again without that write).
func TestTurnFindsAJournaledDelivery(t *testing.T) {
	for _, failing := range []bool{false, true} {
		t.Run(fmt.Sprintf("failing write=%v", failing), func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			db := openTest(t, t.TempDir(), clk)
			if err := db.CreateSession(ctx, newSession("s1", "t1")); err != nil {
				t.Fatal(err)
			}
			release := holdCommits(t, db)
			var wg sync.WaitGroup
			var boom error
			if failing {
				wg.Go(func() {
					boom = db.commit(func(tx *bolt.Tx) error {
						if err := tx.Bucket(bucketInbox).Put([]byte("junk"), []byte(`{}`)); err != nil {
							return err
						}
						return errors.New("boom")
					})
				})
				queued(db, 1)
			}
			receive(t, db, "ev1", time.Hour)
			var turnErr error
			wg.Go(func() {
				_, turnErr = db.UpdateSession(ctx, "s1", func(s *core.Session) error {
					s.Turns = append(s.Turns, core.Turn{ID: 1, Kind: core.KindGenerate, Action: core.ActionPrompt,
						User: core.User{ID: "U1"}, Text: "a fox", Prompt: "a fox", Status: core.StatusQueued,
						QueuedAt: clk.Now(), Delivery: "ev1"})
					return nil
				})
			})
			queued(db, 1)
			release()
			wg.Wait()
			if turnErr != nil {
				t.Fatalf("recording the turn of a journaled delivery: %v", turnErr)
			}
			if failing && (boom == nil || boom.Error() != "boom") {
				t.Errorf("the failing write got %v", boom)
			}
			if got := unhandled(t, db); len(got) != 0 {
				t.Errorf("Unhandled = %v after the turn was recorded, want none", got)
			}
			if got := inboxEntries(t, db); len(got) != 0 {
				t.Errorf("bbolt's inbox = %v, want none", got)
			}
		})
	}
}

// A delivery's own turn, recorded soon after it was journaled, carries it
// into bbolt: the delivery costs no commit of its own. One that no write
// follows is moved by a commit of its own once the delay has passed.
func TestJournalMoveRidesAlong(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(t, t.TempDir(), clk)
	if err := db.CreateSession(ctx, newSession("s1", "t1")); err != nil {
		t.Fatal(err)
	}
	delay := func(d time.Duration) {
		db.journal.mu.Lock()
		db.journal.delay = d
		db.journal.mu.Unlock()
	}
	commits := func() uint64 {
		t.Helper()
		n, err := db.Commits(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	delay(time.Hour)
	before := commits()
	receive(t, db, "ev1", time.Hour)
	if _, err := db.UpdateSession(ctx, "s1", queue("U1", clk.Now())); err != nil {
		t.Fatal(err)
	}
	if got := inboxEntries(t, db); !slices.Equal(got, []string{"ev1"}) {
		t.Errorf("bbolt's inbox = %v after the turn's commit, want [ev1]", got)
	}
	if n := commits() - before; n != 1 {
		t.Errorf("a delivery and its turn took %d commits, want 1", n)
	}

	db.journal.mu.Lock()
	db.journal.moving.Reset(0) // the hour is up: the commit finds nothing to move
	db.journal.mu.Unlock()
	delay(50 * time.Millisecond)
	receive(t, db, "ev2", time.Hour)
	if !waitFor(10*time.Second, func() bool { return slices.Contains(inboxEntries(t, db), "ev2") }) {
		t.Fatalf("ev2 was not moved into bbolt without another write; inbox = %v", inboxEntries(t, db))
	}
	if n := commits() - before; n != 2 {
		t.Errorf("%d commits in all, want 2: the turn's, and ev2's own", n)
	}
}

// waitFor polls cond every 10 ms until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// Handled of a delivery still in the journal deletes it for good: the
// commit that deletes it moves it first, and nothing brings it back, not
// even a replay of the journal as it was before.
func TestHandledBeforeMoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	db := openTest(t, dir, clk)
	release := holdCommits(t, db)
	receive(t, db, "ev1", time.Minute)
	receive(t, db, "ev2", time.Minute)
	before, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan error, 1)
	go func() { handled <- db.Handled(ctx, "ev1") }()
	queued(db, 1)
	release()
	if err := <-handled; err != nil {
		t.Fatal(err)
	}
	flushed(t, db)
	if got := unhandled(t, db); !slices.Equal(got, []string{"ev2"}) {
		t.Errorf("Unhandled = %v after handling ev1, want [ev2]", got)
	}
	if err := db.Handled(ctx, "ev2"); err != nil {
		t.Fatal(err)
	}
	// Long after, the marks expire and another mark prunes them.
	clk.Advance(2 * time.Hour)
	if _, err := db.MarkEvent(ctx, "later", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, db); n != 1 {
		t.Fatalf("%d event records, want only the last (the others pruned)", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash lost the truncation: the journal is back as it was.
	if err := os.WriteFile(filepath.Join(dir, journalFile), before, 0o600); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, clk)
	if got := unhandled(t, db); len(got) != 0 {
		t.Errorf("Unhandled = %v after replaying a journal already moved, want none", got)
	}
	if n := journalSize(t, dir); n != 0 {
		t.Errorf("the journal holds %d bytes after Open, want 0", n)
	}
}

// 50 concurrent Receives of one key make one first delivery; 50 of distinct
// keys make 50, which share fdatasyncs; a duplicate writes nothing.
func TestReceiveConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir, newClock())
	const n = 50
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			first, err := db.Receive(ctx, "same", "event", []byte(fmt.Sprintf(`{"n":%d}`, i)), time.Hour)
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
		wg.Go(func() {
			first, err := db.Receive(ctx, fmt.Sprint("key", i), "event", []byte(`{}`), time.Hour)
			if err != nil || !first {
				t.Errorf("Receive(key%d) = %v, %v; want a first delivery", i, first, err)
			}
		})
	}
	wg.Wait()
	if got := firsts.Load(); got != 1 {
		t.Errorf("%d first deliveries of one key, want 1", got)
	}
	if got := unhandled(t, db); len(got) != n+1 {
		t.Errorf("Unhandled lists %d deliveries, want %d", len(got), n+1)
	}
	flushed(t, db)
	commits, err := db.Commits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size := journalSize(t, dir)
	for _, key := range []string{"same", "key7"} {
		if first, err := db.Receive(ctx, key, "event", nil, time.Hour); first || err != nil {
			t.Errorf("Receive(%s) again = %v, %v; want a duplicate", key, first, err)
		}
	}
	if after, _ := db.Commits(ctx); after != commits || journalSize(t, dir) != size {
		t.Errorf("duplicates wrote: %d commits, journal %d bytes more; want none", after-commits, journalSize(t, dir)-size)
	}
	if got := inboxEntries(t, db); len(got) != n+1 {
		t.Errorf("bbolt's inbox holds %d deliveries, want %d", len(got), n+1)
	}
}

// MarkEvent and Receive of one key share one dedupe record, also while
// they race: exactly one of them sees the key first.
func TestMarkEventAndReceiveRace(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	for round := range 20 {
		key := fmt.Sprint("race", round)
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				var first bool
				var err error
				if i%2 == 0 {
					first, err = db.MarkEvent(ctx, key, time.Hour)
				} else {
					first, err = db.Receive(ctx, key, "event", nil, time.Hour)
				}
				if err != nil {
					t.Error(err)
				}
				if first {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if got := firsts.Load(); got != 1 {
			t.Errorf("round %d: %d firsts, want 1", round, got)
		}
	}
}

// A crash after deliveries were journaled and acknowledged, before any
// commit moved them: the next Open replays them into bbolt, once, with
// their dedupe marks, in one commit, and empties the journal.
func TestCrashBeforeMoving(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	db := openTest(t, dir, clk)
	receive(t, db, "old", time.Hour)
	flushed(t, db)
	clk.Advance(time.Second)
	release := holdCommits(t, db)
	for _, key := range []string{"ev1", "ev2", "ev3"} {
		receive(t, db, key, time.Hour)
		clk.Advance(time.Second)
	}
	img := crashImage(t, dir)
	release()

	commitsBefore := func() uint64 {
		b, err := bolt.Open(filepath.Join(img, DBFile), 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var id int
		_ = b.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return uint64(id)
	}()
	db2, logs := openLogged(t, img, clk)
	want := []string{"old", "ev1", "ev2", "ev3"}
	if got := unhandled(t, db2); !slices.Equal(got, want) {
		t.Errorf("Unhandled after the crash = %v, want %v", got, want)
	}
	if got := inboxEntries(t, db2); len(got) != 4 {
		t.Errorf("bbolt's inbox = %v after the replay, want all four", got)
	}
	if n, _ := db2.Commits(ctx); n != commitsBefore+1 {
		t.Errorf("the replay made %d commits, want 1", n-commitsBefore)
	}
	if n := journalSize(t, img); n != 0 {
		t.Errorf("the journal holds %d bytes after the replay, want 0", n)
	}
	if !strings.Contains(logs.String(), "replaying the inbox journal") || !strings.Contains(logs.String(), "records=3") {
		t.Errorf("the replay was not logged: %s", logs)
	}
	for _, key := range want {
		if first, err := db2.Receive(ctx, key, "event", nil, time.Hour); first || err != nil {
			t.Errorf("Receive(%s) after the replay = %v, %v; want a duplicate", key, first, err)
		}
	}
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	db3 := openTest(t, img, clk)
	if got := unhandled(t, db3); !slices.Equal(got, want) {
		t.Errorf("Unhandled after reopening = %v, want %v (once each)", got, want)
	}
}

// journalRecords returns the offsets of the records in the journal b.
func journalRecords(t *testing.T, b []byte) []int {
	t.Helper()
	var offs []int
	for off := 0; off < len(b); {
		_, n, err := parseRecord(b[off:])
		if err != nil {
			t.Fatalf("record at %d: %v", off, err)
		}
		offs = append(offs, off)
		off += n
	}
	return offs
}

// journaledImage returns a crash image whose journal holds deliveries of
// keys, none of them moved into bbolt, and the journal's contents.
func journaledImage(t *testing.T, keys ...string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	db := openTest(t, dir, newClock())
	release := holdCommits(t, db)
	for _, key := range keys {
		receive(t, db, key, time.Hour)
	}
	img := crashImage(t, dir)
	release()
	b, err := os.ReadFile(filepath.Join(img, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	return img, b
}

// A journal whose last append a crash cut short: the intact records are
// replayed, the torn one is dropped with a warning, and Open succeeds.
func TestJournalTornTail(t *testing.T) {
	extra := (&record{kind: recDelivery, seq: 99, at: time.Now(), ttl: time.Hour, key: "torn", value: []byte(`{"kind":"event"}`)}).encode()
	for name, tail := range map[string][]byte{
		"part of a record": extra[:len(extra)-5],
		"a header only":    extra[:6],
		"zeros":            make([]byte, 4096),
		"a bad checksum":   append(slices.Clone(extra[:len(extra)-1]), extra[len(extra)-1]^0xff),
	} {
		t.Run(name, func(t *testing.T) {
			img, b := journaledImage(t, "ev1", "ev2")
			if err := os.WriteFile(filepath.Join(img, journalFile), append(b, tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			db, logs := openLogged(t, img, newClock())
			if got := unhandled(t, db); !slices.Equal(got, []string{"ev1", "ev2"}) {
				t.Errorf("Unhandled = %v, want [ev1 ev2]", got)
			}
			if !strings.Contains(logs.String(), "level=WARN msg=\"storage: dropped an unfinished record at the end of the inbox journal") ||
				!strings.Contains(logs.String(), fmt.Sprintf("offset=%d bytes=%d", len(b), len(tail))) {
				t.Errorf("the torn record was not reported: %s", logs)
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a torn tail was reported as an error: %s", logs)
			}
			if n := journalSize(t, img); n != 0 {
				t.Errorf("the journal holds %d bytes after the replay, want 0", n)
			}
			receive(t, db, "torn", time.Hour) // never acknowledged: a first delivery
		})
	}
}

// A journal damaged in the middle: the records before the damage are
// replayed, everything from it on is dropped, an error says so with a copy
// of the journal kept, and Open succeeds.
func TestJournalDamagedInTheMiddle(t *testing.T) {
	img, b := journaledImage(t, "ev1", "ev2", "ev3")
	offs := journalRecords(t, b)
	if len(offs) != 3 {
		t.Fatalf("%d records, want 3", len(offs))
	}
	damaged := slices.Clone(b)
	damaged[offs[1]+recHeader+recFixed+1] ^= 0x01 // in ev2's key
	if err := os.WriteFile(filepath.Join(img, journalFile), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	db, logs := openLogged(t, img, newClock())
	if got := unhandled(t, db); !slices.Equal(got, []string{"ev1"}) {
		t.Errorf("Unhandled = %v, want [ev1]: nothing from the damage on", got)
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR msg=\"storage: the inbox journal is damaged") ||
		!strings.Contains(out, fmt.Sprintf("offset=%d bytes=%d why=\"a checksum mismatch\"", offs[1], len(b)-offs[1])) {
		t.Errorf("the damage was not reported: %s", out)
	}
	copies, _ := filepath.Glob(filepath.Join(img, journalFile+".damaged-*"))
	if len(copies) != 1 {
		t.Fatalf("copies of the damaged journal: %v, want 1", copies)
	}
	if kept, _ := os.ReadFile(copies[0]); !bytes.Equal(kept, damaged) || !strings.Contains(out, "copy="+copies[0]) {
		t.Errorf("the copy %s does not hold the damaged journal, or the log does not name it", copies[0])
	}
	if fi, err := os.Stat(copies[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy's mode: %v, %v; want 0600", fi.Mode(), err)
	}
}

// Records left over from before a truncation a crash lost, behind newer
// ones: they were moved before, and are dropped quietly; behind a torn
// newer one, the tail is torn, not damaged.
func TestJournalLeftOverRecords(t *testing.T) {
	for _, torn := range []bool{false, true} {
		t.Run(fmt.Sprintf("torn=%v", torn), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			clk := newClock()
			db := openTest(t, dir, clk)
			release := holdCommits(t, db)
			for _, key := range []string{"ev1", "ev2", "ev3"} {
				receive(t, db, key, time.Hour)
			}
			old, err := os.ReadFile(filepath.Join(dir, journalFile))
			if err != nil {
				t.Fatal(err)
			}
			release()
			flushed(t, db)
			for _, key := range []string{"ev1", "ev2", "ev3"} {
				if err := db.Handled(ctx, key); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil { // empties the journal
				t.Fatal(err)
			}
			db = openTest(t, dir, clk)
			release = holdCommits(t, db)
			receive(t, db, "ev4", time.Hour)
			img := crashImage(t, dir)
			release()
			// The journal as the crash left it: ev4 (of ev1's length) over
			// the start of the records the lost truncation should have
			// removed.
			fresh, err := os.ReadFile(filepath.Join(img, journalFile))
			if err != nil {
				t.Fatal(err)
			}
			if torn {
				fresh[len(fresh)-1] ^= 0xff
			}
			leftover := append(slices.Clone(fresh), old[len(fresh):]...)
			if err := os.WriteFile(filepath.Join(img, journalFile), leftover, 0o600); err != nil {
				t.Fatal(err)
			}
			db2, logs := openLogged(t, img, clk)
			want := []string{"ev4"}
			if torn {
				want = nil
			}
			if got := unhandled(t, db2); !slices.Equal(got, want) {
				t.Errorf("Unhandled = %v, want %v", got, want)
			}
			out := logs.String()
			if strings.Contains(out, "level=ERROR") || torn != strings.Contains(out, "level=WARN msg=\"storage: dropped an unfinished record") {
				t.Errorf("left-over records were misreported: %s", out)
			}
		})
	}
}

// Something other than a regular file where the journal goes is refused,
// by Open and OpenReadOnly, with an error naming it; a symbolic link is not
// followed.
func TestJournalNotAFile(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, is string
		plant    func(path string) error
	}{
		{"link", "a symbolic link", func(path string) error {
			target := filepath.Join(filepath.Dir(path), "elsewhere")
			if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
				return err
			}
			return os.Symlink(target, path)
		}},
		{"dangling link", "a symbolic link", func(path string) error {
			return os.Symlink(filepath.Join(filepath.Dir(path), "nowhere"), path)
		}},
		{"directory", "a directory", func(path string) error { return os.Mkdir(path, 0o700) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db := openTest(t, dir, newClock())
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, journalFile)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := c.plant(path); err != nil {
				t.Fatal(err)
			}
			want := "data dir " + dir + ": inbox journal: open " + path + ": is " + c.is + ", not a regular file"
			if _, err := Open(ctx, dir, Options{Timeout: time.Second}); err == nil || err.Error() != want {
				t.Errorf("Open: %v\nwant %s", err, want)
			}
			if _, err := OpenReadOnly(ctx, dir, Options{}); err == nil || err.Error() != want {
				t.Errorf("OpenReadOnly: %v\nwant %s", err, want)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "elsewhere")); err == nil && string(b) != "precious" {
				t.Errorf("the link's target was changed: %q", b)
			}
			if _, err := os.Lstat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("the dangling link's target was created")
			}
			// The failed Open released the database's lock.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			openTest(t, dir, newClock())
		})
	}
}

// The journal is created with mode 0600.
func TestJournalMode(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, newClock())
	fi, err := os.Stat(filepath.Join(dir, journalFile))
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("journal: %v, %v; want mode 0600", fi.Mode(), err)
	}
}

// OpenReadOnly lists the deliveries only the journal holds, while a writer
// holds the database (a snapshot) and after a crash (in place), and writes
// neither file; Receive through it fails.
func TestReadOnlySeesTheJournal(t *testing.T) {
	ctx := context.Background()
	t.Setenv("TMPDIR", t.TempDir())
	dir := t.TempDir()
	clk := newClock()
	writer := openTest(t, dir, clk)
	receive(t, writer, "moved", time.Hour)
	flushed(t, writer)
	release := holdCommits(t, writer)
	defer release()
	receive(t, writer, "journaled", time.Hour)

	check := func(name, dir string) {
		t.Helper()
		files := map[string][]byte{}
		for _, f := range []string{DBFile, journalFile} {
			files[f], _ = os.ReadFile(filepath.Join(dir, f))
		}
		ro, err := OpenReadOnly(ctx, dir, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := unhandled(t, ro); !slices.Equal(got, []string{"moved", "journaled"}) {
			t.Errorf("%s: Unhandled = %v, want [moved journaled]", name, got)
		}
		if _, err := ro.Receive(ctx, "new", "event", nil, time.Hour); !errors.Is(err, berrors.ErrDatabaseReadOnly) {
			t.Errorf("%s: Receive through a read-only DB: %v", name, err)
		}
		if first, err := ro.Receive(ctx, "journaled", "event", nil, time.Hour); first || err == nil {
			t.Errorf("%s: Receive of a journaled key through a read-only DB = %v, %v; want an error", name, first, err)
		}
		if err := ro.Close(); err != nil {
			t.Fatal(err)
		}
		for f, before := range files {
			if after, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(before, after) {
				t.Errorf("%s: OpenReadOnly changed %s", name, f)
			}
		}
	}
	check("snapshot", dir)
	check("in place, after a crash", crashImage(t, dir))
}

// An append to a journal grown past journalLimit (only a store whose
// commits stall gets there) waits until everything in it is moved into
// bbolt and the journal emptied, or until its context ends.
func TestJournalLimit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir, newClock())
	release := holdCommits(t, db)
	payload := []byte(`"` + strings.Repeat("x", 1<<20) + `"`)
	n := 0
	for ; journalSize(t, dir) < journalLimit; n++ {
		if first, err := db.Receive(ctx, fmt.Sprint("big", n), "event", payload, time.Hour); err != nil || !first {
			t.Fatalf("Receive(big%d) = %v, %v", n, first, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := db.Receive(cctx, "over", "event", nil, time.Hour)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive past the limit with commits held: %v, want it to wait until its deadline", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.Receive(ctx, "over", "event", nil, time.Hour)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Receive past the limit returned (%v) while commits were held", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if size := journalSize(t, dir); size >= 1<<20 {
		t.Errorf("the journal is %d bytes after the wait, want it emptied before the append", size)
	}
	if got := unhandled(t, db); len(got) != n+1 {
		t.Errorf("Unhandled lists %d deliveries, want %d", len(got), n+1)
	}
}

// A journal of truncateAt bytes or more is emptied as soon as every record
// in it is moved.
func TestJournalTruncated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir, newClock())
	payload := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	release := holdCommits(t, db)
	for n := 0; journalSize(t, dir) < truncateAt; n++ {
		if first, err := db.Receive(ctx, fmt.Sprint("ev", n), "event", payload, time.Hour); err != nil || !first {
			t.Fatalf("Receive(ev%d) = %v, %v", n, first, err)
		}
	}
	release()
	flushed(t, db)
	if n := journalSize(t, dir); n != 0 {
		t.Errorf("the journal holds %d bytes once its records are moved, want 0", n)
	}
	receive(t, db, "next", time.Hour)
	b, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	if s := scanJournal(b, 0); len(s.recs) != 1 || s.recs[0].key != "next" || s.tail != tailNone {
		t.Errorf("after the truncation the journal holds %d records, tail %d; want next alone", len(s.recs), s.tail)
	}
}

// Close moves what the journal holds into bbolt and empties it.
func TestCloseMovesTheJournal(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	db := openTest(t, dir, clk)
	release := holdCommits(t, db)
	receive(t, db, "ev1", time.Hour)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := journalSize(t, dir); n != 0 {
		t.Errorf("the journal holds %d bytes after Close, want 0", n)
	}
	b, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketInbox).Get([]byte("ev1")) == nil {
			t.Error("ev1 is not in bbolt after Close")
		}
		return nil
	})
	if _, err := db.Receive(context.Background(), "ev2", "event", nil, time.Hour); err == nil {
		t.Error("Receive after Close succeeded")
	}
}

// Records are framed so that any change to one is caught, and a record
// round-trips.
func TestRecordFraming(t *testing.T) {
	r := record{kind: recDelivery, seq: 7, at: time.Unix(0, 1234567890), ttl: time.Hour, key: "slack:Ev1", value: []byte(`{"kind":"event"}`)}
	b := r.encode()
	got, n, err := parseRecord(b)
	if err != nil || n != len(b) || got.seq != 7 || !got.at.Equal(r.at) || got.ttl != time.Hour || got.key != r.key || string(got.value) != string(r.value) {
		t.Fatalf("parse = %+v, %d, %v", got, n, err)
	}
	for i := range b {
		for _, bit := range []byte{0x01, 0x80} {
			c := slices.Clone(b)
			c[i] ^= bit
			if _, _, err := parseRecord(c); err == nil {
				t.Errorf("flipping bit %#x of byte %d went unnoticed", bit, i)
			}
		}
	}
	for i := range len(b) {
		if _, _, err := parseRecord(b[:i]); !errors.Is(err, errShort) {
			t.Errorf("a record cut at %d: %v, want errShort", i, err)
		}
	}
}

// FuzzScanJournal: no input makes the scan panic, and what it keeps is
// intact records in increasing order, covering exactly its good prefix.
func FuzzScanJournal(f *testing.F) {
	r1 := (&record{kind: recDelivery, seq: 1, key: "a", value: []byte("{}")}).encode()
	r2 := (&record{kind: recDelivery, seq: 2, key: "b", value: []byte("{}")}).encode()
	f.Add(slices.Concat(r1, r2))
	f.Add(slices.Concat(r1, r2[:10]))
	f.Add(slices.Concat(r2, r1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := scanJournal(b, 0)
		off := 0
		var last uint64
		for _, r := range s.recs {
			got, n, err := parseRecord(b[off:])
			if err != nil || got.seq != r.seq || r.seq <= last {
				t.Fatalf("kept a record that is not intact or not in order at %d", off)
			}
			last = r.seq
			off += n
		}
		if off != s.good || (s.tail == tailNone) != (s.good == len(b)) {
			t.Fatalf("good %d, records end at %d, tail %d, %d bytes", s.good, off, s.tail, len(b))
		}
	})
}
