package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxStarts bounds the start times kept for one name, newest kept.
const maxStarts = 4096

// RecordStart records that the thing called name (such as a bot's gateway
// session) started at at, forgets its starts from before at-keep, and
// returns the starts still kept, oldest first, at included. The record is
// durable when RecordStart returns, so it survives a crash right after.
// At most 4096 starts are kept per name.
func (db *DB) RecordStart(ctx context.Context, name string, at time.Time, keep time.Duration) ([]time.Time, error) {
	if name == "" {
		return nil, errors.New("storage: record start: empty name")
	}
	var starts []time.Time
	err := db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStarts)
		if err != nil {
			return err
		}
		cutoff := at.Add(-keep)
		for _, t := range decodeStarts(b.Get([]byte(name))) {
			if !t.Before(cutoff) {
				starts = append(starts, t)
			}
		}
		i, _ := slices.BinarySearchFunc(starts, at, time.Time.Compare)
		starts = slices.Insert(starts, i, at)
		if len(starts) > maxStarts {
			starts = starts[len(starts)-maxStarts:]
		}
		return b.Put([]byte(name), encodeStarts(starts))
	})
	if err != nil {
		return nil, fmt.Errorf("storage: record start of %s: %w", name, err)
	}
	return starts, nil
}

// Starts returns the starts of name recorded by RecordStart at or after
// since, oldest first; none for a name never recorded.
func (db *DB) Starts(ctx context.Context, name string, since time.Time) ([]time.Time, error) {
	var starts []time.Time
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStarts); b != nil {
			for _, t := range decodeStarts(b.Get([]byte(name))) {
				if !t.Before(since) {
					starts = append(starts, t)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: starts of %s: %w", name, err)
	}
	return starts, nil
}

// encodeStarts packs times as consecutive 8-byte encodeTime values.
func encodeStarts(ts []time.Time) []byte {
	out := make([]byte, 0, 8*len(ts))
	for _, t := range ts {
		out = append(out, encodeTime(t)...)
	}
	return out
}

// decodeStarts unpacks encodeStarts; a trailing partial value is ignored.
func decodeStarts(b []byte) []time.Time {
	out := make([]time.Time, 0, len(b)/8)
	for ; len(b) >= 8; b = b[8:] {
		out = append(out, decodeTime(b))
	}
	return out
}
