package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/easel-bot/easel/internal/fulldisk"
)

// A full disk fails the Receive whose record does not fit, with an error
// that says so, and cuts the journal back to its last good record: the
// next record that fits is journaled after it, and a replay finds exactly
// the deliveries acknowledged. The delivery that failed is not taken as a
// duplicate when the platform sends it again.
func TestReceiveOnAFullDisk(t *testing.T) {
	if fulldisk.AsRoot(t) {
		return
	}
	ctx := context.Background()
	dir := filepath.Join(fulldisk.Small(t, "1m"), "data")
	db := openTest(t, dir, newClock())
	path := filepath.Join(dir, journalFile)
	release := holdCommits(t, db)
	defer func() {
		if release != nil {
			release()
		}
	}()
	receive(t, db, "a", time.Hour)
	good := journalSize(t, dir)
	filler := fulldisk.Fill(t, filepath.Dir(dir))

	// Past the journal's first page, which is allocated: a short write.
	big := []byte(`{"text":"` + strings.Repeat("x", 3*4096) + `"}`)
	first, err := db.Receive(ctx, "b", "event", big, time.Hour)
	if first || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "storage: receive b: write inbox journal "+path+": ") {
		t.Fatalf("Receive on a full disk = %v, %v; want ENOSPC naming the journal", first, err)
	}
	if n := journalSize(t, dir); n != good {
		t.Errorf("the journal is %d bytes after the failed append, want %d (its last good record's end)", n, good)
	}
	receive(t, db, "c", time.Hour) // fits in the allocated page
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := scanJournal(b, 0); len(s.recs) != 2 || s.recs[0].key != "a" || s.recs[1].key != "c" || s.tail != tailNone {
		t.Errorf("the journal holds %d records, tail %d; want a and c, whole", len(s.recs), s.tail)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	release()
	release = nil
	flushed(t, db)
	if got := unhandled(t, db); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("Unhandled = %v, want [a c]", got)
	}
	receive(t, db, "b", time.Hour) // the platform's retry
}
