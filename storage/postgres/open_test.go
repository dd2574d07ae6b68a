package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

// A second Open migrates nothing; a schema newer than the binary is
// refused with a message saying what to do, and nothing is changed.
func TestOpenRefusesANewerSchema(t *testing.T) {
	url := pgtest.Start(t).DB(t)
	ctx := context.Background()
	for range 2 {
		db, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var version int
	if err := conn.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil || version != postgres.SchemaVersion {
		t.Fatalf("schema version %d (%v), want %d", version, err, postgres.SchemaVersion)
	}
	if _, err := conn.Exec(ctx, "UPDATE schema_version SET version = $1", postgres.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, url, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this Easel's") {
		t.Errorf("Open of a newer schema: %v, want it refused", err)
	}
}

// A connection URL's password never shows in an error.
func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{
		"postgres://easel:s3cret-pw@127.0.0.1:1/easel?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://easel:s3cret-pw@[::1",                                                // not a URL
	} {
		_, err := postgres.Open(ctx, url, postgres.Options{})
		if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open(%q) = %v; want an error without the password", url, err)
		}
	}
}
