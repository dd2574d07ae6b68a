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
// database that several processes share (see storage/postgres); the turn
// logic does not change. Their methods may be called from many goroutines,
// and never with the engine's own lock held, so they may do I/O.

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
// the lock held elsewhere leaves the turns it recorded to the holder, whose
// worker reads the session again after each turn. A lock held by a process
// that stopped without unlocking must be freed within a bounded time (a
// lease), and turns left by such a process are taken up by Engine.Resume,
// which a process sharing its locks calls periodically.
type SessionLocks interface {
	// TryLock takes the lock of session id if no other process holds it,
	// and reports whether it did, with a token that grows with every grant
	// (a fencing token). A process that holds the lock already gets it
	// again with a new token.
	TryLock(ctx context.Context, id string) (token int64, ok bool, err error)
	// Unlock frees the lock of session id if token is still its latest
	// grant.
	Unlock(ctx context.Context, id string, token int64) error
	// Held reports whether token is still the latest grant of session id's
	// lock and its lease has not run out: checked before each post in the
	// thread, which no store write fences.
	Held(ctx context.Context, id string, token int64) (bool, error)
}

// ProviderSlots bounds the provider calls in flight
// (EngineConfig.MaxConcurrent).
type ProviderSlots interface {
	// TryAcquire takes a slot if one is free now, and reports whether it
	// did.
	TryAcquire(ctx context.Context) (bool, error)
	// Acquire takes a slot, waiting until one is free or ctx ends; then it
	// returns ctx's error.
	Acquire(ctx context.Context) error
	// Release frees a slot taken by TryAcquire or Acquire.
	Release()
	// Keep is called before each provider call of a slot's holder. It
	// returns nil if this process still holds every slot it took, or
	// ErrLeaseLost if one was taken over (the process froze past the
	// slot's lease): that slot is then forgotten, and the caller takes
	// another before it calls the provider.
	Keep(ctx context.Context) error
}

// UserSlots counts each user's admitted, unfinished turns
// (EngineConfig.MaxPerUser), by the turns' JobRefs. Users are named by
// platform and id.
type UserSlots interface {
	// Take counts turn ref for user if fewer than max turns are counted
	// for user. It returns the count before and whether it took one.
	Take(ctx context.Context, ref JobRef, user string, max int) (n int, ok bool, err error)
	// Count returns the turns counted for user now.
	Count(ctx context.Context, user string) (int, error)
	// Add counts turn ref for user without a check: one admitted before,
	// resumed. Adding a turn counted already changes nothing.
	Add(ctx context.Context, ref JobRef, user string) error
	// Release stops counting turn ref; releasing it again changes nothing.
	Release(ctx context.Context, ref JobRef) error
}

// QuotaHolds keeps what the turns admitted but not yet ended will consume,
// by the turns' JobRefs: the part of each quota the durable usage counters
// do not show yet.
type QuotaHolds interface {
	// Hold calls check with the images held under h.User and the spend
	// held under h.Workspace, and if check returns nil, holds h for turn
	// ref: one atomic step, so two turns cannot both take the last image.
	// It returns check's error.
	Hold(ctx context.Context, ref JobRef, h QuotaHold, check func(images int64, spend float64) error) error
	// Add holds h for turn ref without a check: a turn admitted before,
	// resumed. Adding a hold held already changes nothing.
	Add(ctx context.Context, ref JobRef, h QuotaHold) error
	// Release drops the hold of turn ref; releasing it again changes
	// nothing.
	Release(ctx context.Context, ref JobRef) error
	// Held returns the images held under user and the spend held under
	// workspace now, for a check that holds nothing.
	Held(ctx context.Context, user, workspace string) (images int64, spend float64, err error)
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
		l.Sessions = &localLocks{held: map[string]int64{}}
	}
	if l.Providers == nil {
		l.Providers = localSlots{semaphore.NewWeighted(int64(maxConcurrent))}
	}
	if l.Users == nil {
		l.Users = &localUsers{turns: map[JobRef]string{}, counts: map[string]int{}}
	}
	if l.Holds == nil {
		l.Holds = &localHolds{holds: map[JobRef]QuotaHold{}, images: map[string]int64{}, spend: map[string]float64{}}
	}
	return l
}

// localLocks are SessionLocks within one process, which is their only
// holder: a lock is held or not, and each grant has a new token.
type localLocks struct {
	mu    sync.Mutex
	held  map[string]int64 // session id → token of the latest grant
	grant int64
}

func (l *localLocks) TryLock(_ context.Context, id string) (int64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grant++
	l.held[id] = l.grant
	return l.grant, true, nil
}

func (l *localLocks) Unlock(_ context.Context, id string, token int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[id] == token {
		delete(l.held, id)
	}
	return nil
}

// Held is always true: in one process, nobody else can take a session over.
func (l *localLocks) Held(context.Context, string, int64) (bool, error) { return true, nil }

// localSlots are ProviderSlots within one process: a semaphore.
type localSlots struct{ sem *semaphore.Weighted }

func (s localSlots) TryAcquire(context.Context) (bool, error) { return s.sem.TryAcquire(1), nil }
func (s localSlots) Acquire(ctx context.Context) error        { return s.sem.Acquire(ctx, 1) }
func (s localSlots) Release()                                 { s.sem.Release(1) }
func (s localSlots) Keep(context.Context) error               { return nil }

// localUsers are UserSlots within one process.
type localUsers struct {
	mu     sync.Mutex
	turns  map[JobRef]string // turn → user
	counts map[string]int
}

func (u *localUsers) Take(_ context.Context, ref JobRef, user string, max int) (int, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.counts[user]
	if _, counted := u.turns[ref]; counted {
		return n, true, nil
	}
	if n >= max {
		return n, false, nil
	}
	u.addLocked(ref, user)
	return n, true, nil
}

func (u *localUsers) Count(_ context.Context, user string) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[user], nil
}

func (u *localUsers) Add(_ context.Context, ref JobRef, user string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, counted := u.turns[ref]; !counted {
		u.addLocked(ref, user)
	}
	return nil
}

func (u *localUsers) addLocked(ref JobRef, user string) {
	u.turns[ref] = user
	u.counts[user]++
}

func (u *localUsers) Release(_ context.Context, ref JobRef) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	user, counted := u.turns[ref]
	if !counted {
		return nil
	}
	delete(u.turns, ref)
	if u.counts[user]--; u.counts[user] <= 0 {
		delete(u.counts, user)
	}
	return nil
}

// localHolds are QuotaHolds within one process. check runs under mu, so a
// check and the hold it admits are one step.
type localHolds struct {
	mu     sync.Mutex
	holds  map[JobRef]QuotaHold
	images map[string]int64   // user → images held
	spend  map[string]float64 // workspace → estimated USD held
}

func (h *localHolds) Hold(_ context.Context, ref JobRef, q QuotaHold, check func(images int64, spend float64) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := check(h.images[q.User], h.spend[q.Workspace]); err != nil {
		return err
	}
	h.addLocked(ref, q)
	return nil
}

func (h *localHolds) Add(_ context.Context, ref JobRef, q QuotaHold) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addLocked(ref, q)
	return nil
}

func (h *localHolds) addLocked(ref JobRef, q QuotaHold) {
	if _, held := h.holds[ref]; held {
		return
	}
	h.holds[ref] = q
	h.images[q.User] += q.Images
	h.spend[q.Workspace] += q.CostUSD
}

func (h *localHolds) Held(_ context.Context, user, workspace string) (int64, float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.images[user], h.spend[workspace], nil
}

func (h *localHolds) Release(_ context.Context, ref JobRef) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	q, held := h.holds[ref]
	if !held {
		return nil
	}
	delete(h.holds, ref)
	if h.images[q.User] -= q.Images; h.images[q.User] <= 0 {
		delete(h.images, q.User)
	}
	if h.spend[q.Workspace] -= q.CostUSD; h.spend[q.Workspace] <= 1e-12 {
		delete(h.spend, q.Workspace)
	}
	return nil
}

// Fence is the grant of a session's lock under which a worker writes the
// session: a store whose SessionLocks several processes share refuses an
// update carrying a grant that is no longer the session's latest, with
// ErrLeaseLost, so that a process that froze past its lease cannot write
// over the one that took the session over.
type Fence struct {
	Session string
	Token   int64
}

type fenceKey struct{}

// WithFence returns ctx carrying f, for a store's UpdateSession.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries, if any. Only the writes of a
// session's worker carry one; other writes (a new turn appended) need none.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// ErrLeaseLost is returned by a store for an update fenced by a grant that
// is no longer the session's latest: another process runs the session now.
var ErrLeaseLost = Errorf(Conflict, "another Easel process has taken this thread over")
