package storage

import (
	"context"
	"testing"
	"time"

	"github.com/easel-bot/easel/storage/storetest"
)

// The bbolt store passes the contract every session store passes.
func TestContract(t *testing.T) {
	dirs := map[storetest.Backend]string{}
	clocks := map[storetest.Backend]func() time.Time{}
	open := func(t *testing.T, dir string, now func() time.Time) storetest.Backend {
		db, err := Open(context.Background(), dir, Options{Now: now, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		dirs[db], clocks[db] = dir, now
		return db
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T, now func() time.Time) storetest.Backend { return open(t, t.TempDir(), now) },
		Reopen: func(t *testing.T, b storetest.Backend) storetest.Backend {
			if err := b.(*DB).Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dirs[b], clocks[b])
		},
	})
}
