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
// acknowledge and drop, and writes nothing. The delivery is durable when
// Receive returns: in the inbox journal, whose fdatasync concurrent calls
// share, and which the next commit moves into the database (see
// journal.go), ahead of any write made after Receive returned. It waits
// for no commit.
func (db *DB) Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (first bool, err error) {
	if key == "" {
		return false, errors.New("storage: receive: empty key")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := db.now()
	v, err := json.Marshal(core.Delivery{Kind: kind, Payload: payload, At: now})
	if err == nil {
		first, err = db.record(ctx, record{kind: recDelivery, at: now, ttl: ttl, key: key, value: v})
	}
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
	if err := ctx.Err(); err != nil {
		return err
	}
	// A delivery still in the journal is deleted by a commit, which moves
	// it into the database first.
	kept := db.journal.unmoved(key)
	if !kept {
		err := db.view(ctx, func(tx *bolt.Tx) error {
			kept = tx.Bucket(bucketInbox).Get([]byte(key)) != nil
			return nil
		})
		if err != nil || !kept {
			return err
		}
	}
	err := db.commit(func(tx *bolt.Tx) error { return tx.Bucket(bucketInbox).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("storage: handled %s: %w", key, err)
	}
	return nil
}

// Unhandled returns the deliveries received but not handled, oldest first:
// those in the database, and those still in the inbox journal.
func (db *DB) Unhandled(ctx context.Context) ([]core.Delivery, error) {
	// Taken before the database is read: a record moved since is there.
	journaled := db.journal.deliveries()
	var out []core.Delivery
	at := map[string]int{} // index in out by key
	decode := func(k, v []byte) error {
		var d core.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("storage: inbox %q: %w", k, err)
		}
		d.Key = string(k)
		if i, ok := at[d.Key]; ok {
			out[i] = d // a newer delivery of the key, which moving it stores
			return nil
		}
		at[d.Key] = len(out)
		out = append(out, d)
		return nil
	}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketInbox).ForEach(decode)
		moved := movedSeq(tx)
		for _, p := range journaled {
			if err == nil && p.seq > moved {
				err = decode([]byte(p.key), p.value)
			}
		}
		return err
	})
	slices.SortStableFunc(out, func(a, b core.Delivery) int { return a.At.Compare(b.At) })
	return out, err
}
