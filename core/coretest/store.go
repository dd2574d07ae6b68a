package coretest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/easel-bot/easel/core"
)

// ErrNoSpace is what FailingStore's writes return while it fails: the
// error a full disk gives.
var ErrNoSpace = fmt.Errorf("storage: write easel.db: %w", syscall.ENOSPC)

// FailingStore is a core.SessionStore whose writes (CreateSession,
// UpdateSession), and those of the image store Images wraps (Put), fail with
// ErrNoSpace while it is set failing, as on a full disk; reads still work.
type FailingStore struct {
	core.SessionStore
	failing atomic.Bool
	failed  atomic.Int64 // writes refused
}

// NewFailingStore returns a FailingStore over s, not failing yet.
func NewFailingStore(s core.SessionStore) *FailingStore { return &FailingStore{SessionStore: s} }

// Images returns images whose Put fails while s fails.
func (s *FailingStore) Images(images core.ImageStore) core.ImageStore {
	return failingImages{ImageStore: images, s: s}
}

// failingImages is an image store whose writes fail with its FailingStore's.
type failingImages struct {
	core.ImageStore
	s *FailingStore
}

// Put fails while the store fails.
func (f failingImages) Put(ctx context.Context, img core.Image) (core.ImageRef, error) {
	if f.s.refuse() {
		return core.ImageRef{}, ErrNoSpace
	}
	return f.ImageStore.Put(ctx, img)
}

// SetFailing makes writes fail (true) or pass through (false).
func (s *FailingStore) SetFailing(on bool) { s.failing.Store(on) }

// Failed returns how many writes were refused so far.
func (s *FailingStore) Failed() int64 { return s.failed.Load() }

func (s *FailingStore) refuse() bool {
	if s.failing.Load() {
		s.failed.Add(1)
		return true
	}
	return false
}

// CreateSession fails while the store fails.
func (s *FailingStore) CreateSession(ctx context.Context, sess *core.Session) error {
	if s.refuse() {
		return ErrNoSpace
	}
	return s.SessionStore.CreateSession(ctx, sess)
}

// UpdateSession fails while the store fails.
func (s *FailingStore) UpdateSession(ctx context.Context, id string, fn func(*core.Session) error) (*core.Session, error) {
	if s.refuse() {
		return nil, ErrNoSpace
	}
	return s.SessionStore.UpdateSession(ctx, id, fn)
}

// UsageTotals reads the wrapped store's usage counters; it fails when that
// store keeps none.
func (s *FailingStore) UsageTotals(ctx context.Context, key string) (core.UsageTotals, error) {
	u, ok := s.SessionStore.(core.UsageReader)
	if !ok {
		return core.UsageTotals{}, errors.New("coretest: the wrapped store keeps no usage")
	}
	return u.UsageTotals(ctx, key)
}
