package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
	"github.com/easel-bot/easel/storage/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// The PostgreSQL store passes the contract every session store passes.
func TestContract(t *testing.T) {
	cluster := pgtest.Start(t)
	urls := map[storetest.Backend]string{}
	clocks := map[storetest.Backend]func() time.Time{}
	open := func(t *testing.T, url string, now func() time.Time) storetest.Backend {
		db, err := postgres.Open(context.Background(), url, postgres.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		urls[db], clocks[db] = url, now
		return db
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T, now func() time.Time) storetest.Backend { return open(t, cluster.DB(t), now) },
		Reopen: func(t *testing.T, b storetest.Backend) storetest.Backend {
			_ = b.(*postgres.DB).Close()
			return open(t, urls[b], clocks[b])
		},
	})
}
