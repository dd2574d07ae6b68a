package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDamagedDatabaseMessage damages the page holding the sessions, which
// bbolt only notices when a read reaches it: the error says where the file
// is, that Easel did not change it, and to restore a backup, and does not
// send the user to a command that would fail the same way.
func TestDamagedDatabaseMessage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, DBFile)
	if err := os.WriteFile(path, validDB(t), 0o600); err != nil {
		t.Fatal(err)
	}
	damagePage(t, path, bucketSessions)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"Open", "OpenReadOnly", "OpenReadOnly of a snapshot"} {
		var db *DB
		switch name {
		case "Open":
			db, err = Open(ctx, dir, Options{})
		case "OpenReadOnly":
			db, err = OpenReadOnly(ctx, dir, Options{})
		default: // the message names the data dir's file, not the snapshot's
			holder := openTest(t, dir, newClock())
			db, err = OpenReadOnly(ctx, dir, Options{})
			holder.Close()
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = db.Session(ctx, "session-07")
		want := "storage: " + path + " is damaged (invalid page type: "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %v\nwant %s…", name, err, want)
		} else {
			for _, part := range []string{"Easel has not changed it", "restore " + path + " from a backup"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("%s: the message lacks %q: %s", name, part, err)
				}
			}
			if strings.Contains(err.Error(), "easel sessions") {
				t.Errorf("%s: the message sends the user to easel sessions: %s", name, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the damaged database was changed")
	}
}

// damagePage overwrites the page type of the root page of bucket in the
// bbolt file at path with that of a freelist page, so that looking a key
// up in the bucket makes bbolt panic.
func damagePage(t *testing.T, path string, bucket []byte) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	if err := b.View(func(tx *bolt.Tx) error { root = uint64(tx.Bucket(bucket).Root()); return nil }); err != nil {
		t.Fatal(err)
	}
	pageSize := b.Info().PageSize
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if root == 0 {
		t.Fatalf("bucket %s is inline: it has no page to damage", bucket)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A page starts with its id (8 bytes) and its flags (2 bytes).
	if _, err := f.WriteAt(binary.NativeEndian.AppendUint16(nil, 0x10), int64(root)*int64(pageSize)+8); err != nil {
		t.Fatal(err)
	}
}
