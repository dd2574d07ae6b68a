package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// SessionByThread returns the session bound to platform's thread, or a
// NotFound *core.Error when the thread has none.
func (db *DB) SessionByThread(ctx context.Context, platform, thread string) (*core.Session, error) {
	var s *core.Session
	err := db.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketThreads).Get(threadKey(platform, thread))
		if id == nil {
			return core.Errorf(core.NotFound, "no session in %s thread %s", platform, thread)
		}
		var err error
		s, err = getSession(tx, string(id))
		return err
	})
	return s, err
}

// Session returns the session with id, or a NotFound *core.Error.
func (db *DB) Session(ctx context.Context, id string) (*core.Session, error) {
	var s *core.Session
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		s, err = getSession(tx, id)
		return err
	})
	return s, err
}

// Sessions returns every session, most recently updated first, for listing.
func (db *DB) Sessions(ctx context.Context) ([]*core.Session, error) {
	var list []*core.Session
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			s, err := decodeSession(k, v)
			if err != nil {
				return err
			}
			list = append(list, s)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *core.Session) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

// CreateSession stores s, whose ID must be new, and binds its platform
// thread to it, replacing any earlier binding of that thread; the session
// bound before stays readable by id. Zero CreatedAt and UpdatedAt fields of
// s are set to now. The effects of the turns s already has are applied as
// UpdateSession would (core.EffectsOf(nil, s)). It returns a Conflict *core.Error
// when a session with s.ID exists.
func (db *DB) CreateSession(ctx context.Context, s *core.Session) error {
	if s.ID == "" {
		return errors.New("storage: create session: empty id")
	}
	now := db.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSessions).Get([]byte(s.ID)) != nil {
			return unchanged(core.Errorf(core.Conflict, "session %s already exists", s.ID))
		}
		if err := putSession(tx, s); err != nil {
			return err
		}
		if err := tx.Bucket(bucketThreads).Put(threadKey(s.Platform, s.Thread), []byte(s.ID)); err != nil {
			return fmt.Errorf("bind %s thread %s to session %s: %w", s.Platform, s.Thread, s.ID, err)
		}
		return applyEffects(tx, core.EffectsOf(nil, s, now), now)
	})
}

// UpdateSession loads session id, calls fn on it and, if fn returns nil,
// sets its UpdatedAt to now and stores it. It returns the stored session, a
// NotFound *core.Error, or fn's error unchanged, in which case nothing is
// written.
//
// In the same transaction it applies core.EffectsOf the change: job
// records and the pending index, usage counters, handled inbox entries.
//
// fn runs inside bbolt's write transaction, which admits one writer at a
// time: it must be quick, must do no I/O (no network, no files, no logging
// that may block) and must not call db. Do slow work before, act on the
// result after. fn may not change the session's ID; the thread binding stays
// as CreateSession made it. Concurrent writes share a commit: if another
// write of that commit fails after changing it, the commit is made again
// without it and fn is called again, on the session as stored, so fn must
// derive its change from the session it is given.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*core.Session) error) (*core.Session, error) {
	var s *core.Session
	err := db.update(ctx, func(tx *bolt.Tx) error {
		var err error
		if s, err = getSession(tx, id); err != nil {
			return unchanged(err)
		}
		before := s.Clone()
		if err := fn(s); err != nil {
			return unchanged(err)
		}
		if s.ID != id {
			return fmt.Errorf("storage: update of session %s changed its id to %s", id, s.ID)
		}
		now := db.now()
		s.UpdatedAt = now
		if err := putSession(tx, s); err != nil {
			return err
		}
		return applyEffects(tx, core.EffectsOf(before, s, now), now)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// threadKey returns the threads bucket key of a platform thread.
func threadKey(platform, thread string) []byte {
	return []byte(platform + "\x00" + thread)
}

// getSession returns session id as stored in tx, or a NotFound *core.Error.
func getSession(tx *bolt.Tx, id string) (*core.Session, error) {
	v := tx.Bucket(bucketSessions).Get([]byte(id))
	if v == nil {
		return nil, core.Errorf(core.NotFound, "session %s not found", id)
	}
	return decodeSession([]byte(id), v)
}

// decodeSession returns the session stored under key k as v.
func decodeSession(k, v []byte) (*core.Session, error) {
	s := new(core.Session)
	if err := json.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("storage: session %s: %w", k, err)
	}
	return s, nil
}

// putSession stores s in tx under its id.
func putSession(tx *bolt.Tx, s *core.Session) error {
	v, err := json.Marshal(s)
	if err == nil {
		err = tx.Bucket(bucketSessions).Put([]byte(s.ID), v)
	}
	if err != nil {
		return fmt.Errorf("storage: store session %s: %w", s.ID, err)
	}
	return nil
}
