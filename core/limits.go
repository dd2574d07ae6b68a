package core

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// The engine's shared limits sit behind four small interfaces: the order of
// each session's turns (SessionLocks), the provider calls in flight
// (ProviderSlots), each user's turns in flight (UserSlots) and the quota
// holds (QuotaHolds). The engine uses today's in-process implementations
// unless EngineConfig.Limiters names others, such as ones kept in a
// database that several processes share; the turn logic does not change.

// Limiters are the engine's shared limits. A nil field takes the in-process
// implementation.
type Limiters struct {
	Sessions  SessionLocks
	Providers ProviderSlots
	Users     UserSlots
	Holds     QuotaHolds
}

// SessionLocks keeps a session's turns in order: a worker runs a session's
// turns only while it holds the session's lock, and an engine that finds
// the lock held leaves a turn it recorded to the holder, whose worker reads
// the session again after each turn. A holder that releases the lock just
// as another engine records a turn leaves that turn to the next message of
// the session or the next start; a shared implementation should hand such
// turns over (a job claim, a notification).
type SessionLocks interface {
	// TryLock takes the lock of session id if no one holds it, and
	// reports whether it did.
	TryLock(id string) bool
	// Unlock frees the lock of session id, taken by TryLock.
	Unlock(id string)
}

// ProviderSlots bounds the provider calls in flight
// (EngineConfig.MaxConcurrent).
type ProviderSlots interface {
	// TryAcquire takes a slot if one is free now, and reports whether it
	// did.
	TryAcquire() bool
	// Acquire takes a slot, waiting until one is free or ctx ends; then it
	// returns ctx's error.
	Acquire(ctx context.Context) error
	// Release frees a slot taken by TryAcquire or Acquire.
	Release()
}

// UserSlots counts each user's admitted, unfinished turns
// (EngineConfig.MaxPerUser). Users are named by platform and id.
type UserSlots interface {
	// Take counts one more turn for user if fewer than max are counted.
	// It returns the count before and whether it took one.
	Take(user string, max int) (int, bool)
	// Count returns the turns counted for user now.
	Count(user string) int
	// Add counts one more turn for user without a check: one admitted
	// before, resumed.
	Add(user string)
	// Release counts one fewer turn for user.
	Release(user string)
}

// QuotaHolds keeps what the turns admitted but not yet ended will consume:
// the part of each quota the durable usage counters do not show yet.
type QuotaHolds interface {
	// Hold calls check with the images held under h.User and the spend
	// held under h.Workspace, and if check returns nil, holds h: one
	// atomic step, so two turns cannot both take the last image. It
	// returns check's error.
	Hold(ctx context.Context, h QuotaHold, check func(images int64, spend float64) error) error
	// Add holds h without a check: a turn admitted before, resumed.
	Add(h QuotaHold)
	// Release drops h, held by Hold or Add.
	Release(h QuotaHold)
	// Held returns the images held under user and the spend held under
	// workspace now, for a check that holds nothing.
	Held(user, workspace string) (images int64, spend float64)
}

// QuotaHold is what one turn holds of the quotas.
type QuotaHold struct {
	User      string // platform\x00user id
	Workspace string // platform\x00workspace id
	Images    int64
	CostUSD   float64
}

// LocalLimiters returns the in-process implementations, with maxConcurrent
// provider slots; engines given the same ones share their limits.
func LocalLimiters(maxConcurrent int) Limiters {
	return Limiters{}.withDefaults(maxConcurrent)
}

// withDefaults returns l with the in-process implementation for each nil
// field; maxConcurrent sizes the provider slots.
func (l Limiters) withDefaults(maxConcurrent int) Limiters {
	if l.Sessions == nil {
		l.Sessions = &localLocks{held: map[string]bool{}}
	}
	if l.Providers == nil {
		l.Providers = localSlots{semaphore.NewWeighted(int64(maxConcurrent))}
	}
	if l.Users == nil {
		l.Users = &localUsers{counts: map[string]int{}}
	}
	if l.Holds == nil {
		l.Holds = &localHolds{images: map[string]int64{}, spend: map[string]float64{}}
	}
	return l
}

// localLocks are SessionLocks within one process.
type localLocks struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *localLocks) TryLock(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[id] {
		return false
	}
	l.held[id] = true
	return true
}

func (l *localLocks) Unlock(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, id)
}

// localSlots are ProviderSlots within one process: a semaphore.
type localSlots struct{ sem *semaphore.Weighted }

func (s localSlots) TryAcquire() bool                  { return s.sem.TryAcquire(1) }
func (s localSlots) Acquire(ctx context.Context) error { return s.sem.Acquire(ctx, 1) }
func (s localSlots) Release()                          { s.sem.Release(1) }

// localUsers are UserSlots within one process.
type localUsers struct {
	mu     sync.Mutex
	counts map[string]int
}

func (u *localUsers) Take(user string, max int) (int, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.counts[user]
	if n >= max {
		return n, false
	}
	u.counts[user]++
	return n, true
}

func (u *localUsers) Count(user string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[user]
}

func (u *localUsers) Add(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.counts[user]++
}

func (u *localUsers) Release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.counts[user]--; u.counts[user] <= 0 {
		delete(u.counts, user)
	}
}

// localHolds are QuotaHolds within one process. check runs under mu, so a
// check and the hold it admits are one step.
type localHolds struct {
	mu     sync.Mutex
	images map[string]int64   // user → images held
	spend  map[string]float64 // workspace → estimated USD held
}

func (h *localHolds) Hold(_ context.Context, q QuotaHold, check func(images int64, spend float64) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := check(h.images[q.User], h.spend[q.Workspace]); err != nil {
		return err
	}
	h.addLocked(q)
	return nil
}

func (h *localHolds) Add(q QuotaHold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addLocked(q)
}

func (h *localHolds) addLocked(q QuotaHold) {
	h.images[q.User] += q.Images
	h.spend[q.Workspace] += q.CostUSD
}

func (h *localHolds) Held(user, workspace string) (int64, float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.images[user], h.spend[workspace]
}

func (h *localHolds) Release(q QuotaHold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.images[q.User] -= q.Images; h.images[q.User] <= 0 {
		delete(h.images, q.User)
	}
	if h.spend[q.Workspace] -= q.CostUSD; h.spend[q.Workspace] <= 1e-12 {
		delete(h.spend, q.Workspace)
	}
}
