package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pruneBatch bounds how many expired event records one MarkEvent deletes.
const pruneBatch = 100

// MarkEvent records that the platform event named key is being handled and
// reports whether this is its first delivery within ttl; false means a
// duplicate the caller should drop. The record is durable when MarkEvent
// returns and is forgotten after ttl. Each call also deletes up to 100
// expired records, so the bucket stays small without a sweeper.
func (db *DB) MarkEvent(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	if key == "" {
		return false, errors.New("storage: mark event: empty key")
	}
	now := db.now()
	// Receive takes a delivery not yet moved from the inbox journal as a
	// mark, and waits for this one before it reads the marks.
	done, journaled := db.journal.claim(key, now)
	if journaled {
		return false, nil
	}
	defer done()
	err = db.update(ctx, func(tx *bolt.Tx) (err error) {
		first, err = markEvent(tx, key, now, ttl)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("storage: mark event %s: %w", key, err)
	}
	return first, nil
}

// markEvent records event key in tx until now+ttl and reports whether it
// was not already recorded, pruning a batch of expired records first.
func markEvent(tx *bolt.Tx, key string, now time.Time, ttl time.Duration) (bool, error) {
	events := tx.Bucket(bucketEvents)
	ids, byExpiry := events.Bucket(bucketEventIDs), events.Bucket(bucketEventExpiry)
	if err := pruneEvents(ids, byExpiry, now); err != nil {
		return false, err
	}
	k := []byte(key)
	if old := ids.Get(k); old != nil {
		if decodeTime(old).After(now) {
			return false, nil
		}
		if err := byExpiry.Delete(slices.Concat(old, k)); err != nil { // expired, not yet pruned
			return false, err
		}
	}
	exp := encodeTime(now.Add(ttl))
	if err := ids.Put(k, exp); err != nil {
		return false, err
	}
	return true, byExpiry.Put(slices.Concat(exp, k), []byte{})
}

// pruneEvents deletes up to pruneBatch event records that expired by now,
// oldest first.
func pruneEvents(ids, byExpiry *bolt.Bucket, now time.Time) error {
	var expired [][]byte
	c := byExpiry.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < pruneBatch && !decodeTime(k).After(now); k, _ = c.Next() {
		expired = append(expired, bytes.Clone(k))
	}
	// Deleting behind a cursor can make it skip keys, hence two passes.
	for _, k := range expired {
		if err := byExpiry.Delete(k); err != nil {
			return err
		}
		if err := ids.Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}

// encodeTime returns t as 8 bytes that sort like the times they encode.
func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano()))
}

// decodeTime returns the time that encodeTime encoded in b's first 8 bytes.
func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}
