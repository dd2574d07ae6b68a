package storage

import (
	"context"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Buckets, and what their keys and values are.
var (
	// bucketMeta holds keySchema → the schema version, in decimal.
	bucketMeta = []byte("meta")
	// bucketSessions holds session id → JSON core.Session.
	bucketSessions = []byte("sessions")
	// bucketThreads holds threadKey → session id.
	bucketThreads = []byte("threads")
	// bucketJobs holds jobKey → JSON job, for every turn ever recorded.
	bucketJobs = []byte("jobs")
	// bucketActive holds jobKey → nothing, for queued and running turns
	// only, so start-up recovery does not scan every job ever run.
	bucketActive = []byte("active")
	// bucketUsage holds a counter key (see core.UsageAdd) → JSON usageRow.
	bucketUsage = []byte("usage")
	// bucketEvents holds two buckets: bucketEventIDs (event key → 8-byte
	// expiry) and bucketEventExpiry (8-byte expiry + event key → nothing),
	// which orders the ids by expiry for pruning.
	bucketEvents      = []byte("events")
	bucketEventIDs    = []byte("ids")
	bucketEventExpiry = []byte("expiry")
	// bucketInbox holds a delivery's dedupe key → JSON Delivery, for
	// deliveries acknowledged but not yet handled (schema 2).
	bucketInbox = []byte("inbox")
	// bucketStarts holds a name → recent start times (see RecordStart); it
	// is created by the first RecordStart, so it needs no migration.
	bucketStarts = []byte("starts")

	keySchema = []byte("schema")
)

// migration brings a database from schema version-1 to version.
type migration struct {
	version int
	up      func(tx *bolt.Tx) error
}

// migrations, oldest first. A fresh database runs them all. Append new ones;
// never change one that has shipped.
var migrations = []migration{
	{1, createBuckets},
	{2, createInbox},
}

// schemaVersion is the newest schema this build reads and writes.
var schemaVersion = migrations[len(migrations)-1].version

// createBuckets is schema 1: the buckets above.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketSessions, bucketThreads, bucketJobs, bucketActive, bucketUsage, bucketEvents} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	events := tx.Bucket(bucketEvents)
	for _, name := range [][]byte{bucketEventIDs, bucketEventExpiry} {
		if _, err := events.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// createInbox is schema 2: the inbox of acknowledged deliveries.
func createInbox(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketInbox)
	return err
}

// migrate reads the schema version and, if the database lacks migrations,
// applies them all in one transaction. It refuses a database written by a
// newer Easel and a bbolt file that is not Easel's. A database already up to
// date is only read.
func (db *DB) migrate(ctx context.Context) error {
	var from int
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		from, err = db.schema(tx)
		return err
	})
	if err != nil || from == schemaVersion {
		return err
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		for _, m := range migrations {
			if m.version <= from {
				continue
			}
			if err := m.up(tx); err != nil {
				return fmt.Errorf("data dir %s: migrate %s to schema %d: %w", db.dir, DBFile, m.version, err)
			}
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err == nil {
			err = meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
		}
		return err
	})
	if err == nil {
		db.log.Info("storage: schema updated", "dir", db.dir, "from", from, "to", schemaVersion)
	}
	return err
}

// schema returns the schema version of the database: 0 for a new one. It
// returns an error for a database this build cannot use.
func (db *DB) schema(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var other []byte
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			other = name
			return nil
		})
		if other != nil {
			return 0, notDatabase(db.dir, fmt.Errorf("it has a bucket %q but no schema version", other))
		}
		return 0, nil
	}
	v, err := strconv.Atoi(string(meta.Get(keySchema)))
	switch {
	case err != nil || v < 1:
		return 0, notDatabase(db.dir, fmt.Errorf("bad schema version %q", meta.Get(keySchema)))
	case v > schemaVersion:
		return 0, fmt.Errorf("data dir %s: %s was written by a newer Easel (schema %d, this build reads up to %d); upgrade Easel",
			db.dir, DBFile, v, schemaVersion)
	case v == schemaVersion:
		if name := missingBucket(tx); name != "" {
			return 0, notDatabase(db.dir, fmt.Errorf("bucket %s is missing", name))
		}
	}
	return v, nil
}

// missingBucket returns the name of the first bucket of the current schema
// that tx lacks, or "". It lists the buckets again rather than share
// createBuckets' list, which belongs to schema 1 and must not change.
func missingBucket(tx *bolt.Tx) string {
	for _, name := range [][]byte{bucketSessions, bucketThreads, bucketJobs, bucketActive, bucketUsage, bucketEvents} {
		if tx.Bucket(name) == nil {
			return string(name)
		}
	}
	events := tx.Bucket(bucketEvents)
	for _, name := range [][]byte{bucketEventIDs, bucketEventExpiry} {
		if events.Bucket(name) == nil {
			return string(bucketEvents) + "/" + string(name)
		}
	}
	return ""
}
