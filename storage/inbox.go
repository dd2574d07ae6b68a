package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// Receive records a delivery before the platform is told it arrived: it
// marks key for dedupe until ttl passes (see MarkEvent) and, if this is the
// first delivery of key, keeps kind and payload until Handled(key). It
// reports whether this is the first delivery; false means a duplicate to
// acknowledge and drop. Concurrent calls share a commit, so a burst of
// deliveries costs far fewer fsyncs than deliveries.
func (db *DB) Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (first bool, err error) {
	if key == "" {
		return false, errors.New("storage: receive: empty key")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := db.now()
	v, err := json.Marshal(core.Delivery{Kind: kind, Payload: payload, At: now})
	if err != nil {
		return false, fmt.Errorf("storage: receive %s: %w", key, err)
	}
	err = db.commit(func(tx *bolt.Tx) (err error) {
		// This may run more than once; each run starts afresh.
		if first, err = markEvent(tx, key, now, ttl); err != nil || !first {
			return err
		}
		return tx.Bucket(bucketInbox).Put([]byte(key), v)
	})
	if err != nil {
		return false, fmt.Errorf("storage: receive %s: %w", key, err)
	}
	return first, nil
}

// Handled forgets the delivery key once its work is handed over (a turn
// recorded, or an answer given); its dedupe mark stays until it expires.
// A delivery already forgotten (the commit that recorded its turn did)
// costs a read, not a commit.
func (db *DB) Handled(ctx context.Context, key string) error {
	var kept bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		kept = tx.Bucket(bucketInbox).Get([]byte(key)) != nil
		return nil
	})
	if err != nil || !kept {
		return err
	}
	err = db.commit(func(tx *bolt.Tx) error { return tx.Bucket(bucketInbox).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("storage: handled %s: %w", key, err)
	}
	return nil
}

// Unhandled returns the deliveries received but not handled, oldest first.
func (db *DB) Unhandled(ctx context.Context) ([]core.Delivery, error) {
	var out []core.Delivery
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInbox).ForEach(func(k, v []byte) error {
			var d core.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("storage: inbox %q: %w", k, err)
			}
			d.Key = string(k)
			out = append(out, d)
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b core.Delivery) int { return a.At.Compare(b.At) })
	return out, err
}
