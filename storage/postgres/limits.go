package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easel-bot/easel/core"
)

// Limits are the engine's limits kept in the database, so that every Easel
// process on it shares them (see core.Limiters): one row per admitted turn
// for the users' turns in flight and the quota holds, released in the same
// transaction as the turn ends; session leases with fencing tokens; and
// engine.max_concurrent provider slots. Leases and slots are held for a
// lease period and renewed while held, so those of a process that died or
// froze are free again within one period. Close it when the engine is
// closed.
type Limits struct {
	db *DB
	// pool is Limits' own: a quota hold's transaction waits, holding a
	// connection, for the engine's check to read usage through db's pool,
	// so the two must not draw from one pool, or holds could take every
	// connection and wait for ever.
	pool   *pgxpool.Pool
	holder string        // this process
	lease  time.Duration // how long a lease or slot outlives its last renewal

	mu       sync.Mutex
	sessions map[string]int64 // session id → token of this process's grant
	slots    []int            // provider slots this process holds

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// NewLimits returns the limits of db as this process holds them, with
// providerSlots provider slots in all (the same in every process) and
// leases of lease, renewed every third of it until Close.
func (db *DB) NewLimits(ctx context.Context, providerSlots int, lease time.Duration) (*Limits, error) {
	pool, err := pgxpool.NewWithConfig(ctx, db.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", db.where, err)
	}
	l := &Limits{db: db, pool: pool, holder: db.holder, lease: lease,
		sessions: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	err = l.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE provider_slots IN EXCLUSIVE MODE"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO provider_slots (slot) SELECT generate_series(1, $1) ON CONFLICT DO NOTHING", providerSlots); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM provider_slots WHERE slot > $1", providerSlots)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: provider slots: %w", err)
	}
	db.lease.Store(int64(lease))
	go l.renew()
	return l, nil
}

// Limiters returns l as the engine takes it.
func (l *Limits) Limiters() core.Limiters {
	return core.Limiters{Sessions: sessionLocks{l}, Providers: providerSlots{l}, Users: userSlots{l}, Holds: quotaHolds{l}}
}

// Holder names this process in the leases it holds.
func (l *Limits) Holder() string { return l.holder }

// Close stops renewing, and frees the leases and slots this process holds;
// DB.Close lets go of its deliveries.
func (l *Limits) Close() {
	l.stopRenewing()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = l.pool.Exec(ctx, "DELETE FROM session_leases WHERE holder = $1", l.holder)
	_, _ = l.pool.Exec(ctx, "UPDATE provider_slots SET holder = NULL, expires_at = NULL WHERE holder = $1", l.holder)
	_, _ = l.pool.Exec(ctx, "DELETE FROM slack_connections WHERE holder = $1", l.holder)
	l.pool.Close()
}

// tx runs fn in a transaction on l's pool.
func (l *Limits) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, l.pool, fn)
}

// stopRenewing stops renew and waits for it.
func (l *Limits) stopRenewing() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// renew extends the leases and slots this process holds every third of a
// lease period, and forgets those it lost (taken over after it froze).
func (l *Limits) renew() {
	defer close(l.done)
	var living sync.WaitGroup
	living.Go(l.keepLiving)
	defer living.Wait()
	t := time.NewTicker(l.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.lease/3)
		l.renewOnce(ctx)
		cancel()
	}
}

// keepLiving makes sure, every third of a lease, that this process holds
// its liveness lock. It runs apart from the renewals, and gives a slow
// database a whole lease to answer: a check cut short closes the
// connection, which drops the lock, and the other processes would take
// this one for dead and take over all it holds.
func (l *Limits) keepLiving() {
	t := time.NewTicker(l.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.lease)
		if err := l.db.keepAlive(ctx); err != nil {
			l.db.log.Warn("postgres: taking this process's liveness lock failed", "err", err)
		}
		cancel()
	}
}

func (l *Limits) renewOnce(ctx context.Context) {
	l.mu.Lock()
	ids := make([]string, 0, len(l.sessions))
	for id := range l.sessions {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	rows, err := l.pool.Query(ctx, `UPDATE session_leases SET expires_at = now() + $3::interval
		WHERE holder = $1 AND session_id = ANY($2) RETURNING session_id`, l.holder, ids, l.lease)
	if err == nil {
		kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err == nil {
			l.mu.Lock()
			for _, id := range ids {
				if !contains(kept, id) {
					delete(l.sessions, id) // lost: its writes are fenced off
				}
			}
			l.mu.Unlock()
		}
	}
	if err != nil {
		l.db.log.Warn("postgres: renewing session leases failed", "err", err)
	}
	l.renewSlots(ctx)
	if _, err := l.pool.Exec(ctx, "UPDATE inbox SET held_until = now() + $2::interval WHERE holder = $1", l.holder, l.lease); err != nil {
		l.db.log.Warn("postgres: renewing the deliveries held failed", "err", err)
	}
}

// renewSlots extends the provider slots this process holds, and only
// those: a row it is named in but does not count (its release failed, or
// taking it failed after the database had granted it) runs out with its
// lease. Renewed with the rest, such a row would stay held for as long as
// the process runs, and the calls in flight over all processes would stay
// one below the cap for good.
func (l *Limits) renewSlots(ctx context.Context) {
	l.mu.Lock()
	held := slices.Clone(l.slots)
	l.mu.Unlock()
	if _, err := l.pool.Exec(ctx, "UPDATE provider_slots SET expires_at = now() + $3::interval WHERE holder = $1 AND slot = ANY($2)",
		l.holder, held, l.lease); err != nil {
		l.db.log.Warn("postgres: renewing provider slots failed", "err", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sessionLocks are leases on sessions.
type sessionLocks struct{ l *Limits }

// TryLock grants the lease of session id to this process if no other
// process holds it unexpired, with a new token from a sequence.
func (s sessionLocks) TryLock(ctx context.Context, id string) (int64, bool, error) {
	var token int64
	err := s.l.pool.QueryRow(ctx, `INSERT INTO session_leases (session_id, holder, token, expires_at)
		VALUES ($1, $2, nextval('lease_tokens'), now() + $3::interval)
		ON CONFLICT (session_id) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
		WHERE session_leases.holder = EXCLUDED.holder OR session_leases.expires_at < now()
			OR NOT easel_holder_alive(session_leases.holder)
		RETURNING token`, id, s.l.holder, s.l.lease).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: lease session %s: %w", id, err)
	}
	s.l.mu.Lock()
	s.l.sessions[id] = token
	s.l.mu.Unlock()
	return token, true, nil
}

// Unlock ends the lease of session id if token is its latest grant.
func (s sessionLocks) Unlock(ctx context.Context, id string, token int64) error {
	s.l.mu.Lock()
	if s.l.sessions[id] == token {
		delete(s.l.sessions, id)
	}
	s.l.mu.Unlock()
	if _, err := s.l.pool.Exec(ctx, "DELETE FROM session_leases WHERE session_id = $1 AND token = $2", id, token); err != nil {
		return fmt.Errorf("postgres: end the lease of session %s: %w", id, err)
	}
	return nil
}

// Held reports whether token is still the latest grant of session id's
// lease, held by this process, and the lease has not run out.
func (s sessionLocks) Held(ctx context.Context, id string, token int64) (bool, error) {
	var held bool
	err := s.l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_leases
		WHERE session_id = $1 AND token = $2 AND holder = $3 AND expires_at > now())`, id, token, s.l.holder).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("postgres: check the lease of session %s: %w", id, err)
	}
	return held, nil
}

// providerSlots are rows of provider_slots, held with a lease.
type providerSlots struct{ l *Limits }

// TryAcquire takes a free (or expired) slot if there is one. A slot this
// process holds and uses is never taken again, even once its lease ran
// out (renewing it was late): two of its turns would count as one, and the
// calls in flight could go over the cap.
func (p providerSlots) TryAcquire(ctx context.Context) (bool, error) {
	p.l.mu.Lock()
	held := append([]int{}, p.l.slots...) // never NULL, which would match nothing
	p.l.mu.Unlock()
	var slot int
	err := p.l.pool.QueryRow(ctx, `UPDATE provider_slots SET holder = $1, expires_at = now() + $2::interval
		WHERE slot = (SELECT slot FROM provider_slots
			WHERE (holder IS NULL OR expires_at < now() OR NOT easel_holder_alive(holder)) AND NOT (holder IS NOT DISTINCT FROM $1 AND slot = ANY($3))
			ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING slot`, p.l.holder, p.l.lease, held).Scan(&slot)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: take a provider slot: %w", err)
	}
	p.l.mu.Lock()
	p.l.slots = append(p.l.slots, slot)
	p.l.mu.Unlock()
	return true, nil
}

// Acquire waits for a slot, trying again after 50 ms doubling to 1 s,
// jittered, until ctx ends.
func (p providerSlots) Acquire(ctx context.Context) error {
	wait := 50 * time.Millisecond
	for {
		ok, err := p.TryAcquire(ctx)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait + rand.N(wait/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// Keep checks that this process still holds the slots it took, renewing
// them; a slot taken over while it was frozen is forgotten, and Keep
// returns core.ErrLeaseLost.
func (p providerSlots) Keep(ctx context.Context) error {
	p.l.mu.Lock()
	held := slices.Clone(p.l.slots)
	p.l.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	rows, err := p.l.pool.Query(ctx, `UPDATE provider_slots SET expires_at = now() + $3::interval
		WHERE holder = $1 AND slot = ANY($2) RETURNING slot`, p.l.holder, held, p.l.lease)
	if err != nil {
		return fmt.Errorf("postgres: check the provider slots: %w", err)
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("postgres: check the provider slots: %w", err)
	}
	if len(kept) == len(held) {
		return nil
	}
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	for i, slot := range p.l.slots {
		if !slices.Contains(kept, slot) {
			p.l.slots = slices.Delete(p.l.slots, i, i+1)
			break
		}
	}
	return core.ErrLeaseLost
}

// Release frees one of the slots this process holds.
func (p providerSlots) Release() {
	p.l.mu.Lock()
	if len(p.l.slots) == 0 {
		p.l.mu.Unlock()
		return
	}
	slot := p.l.slots[len(p.l.slots)-1]
	p.l.slots = p.l.slots[:len(p.l.slots)-1]
	p.l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.l.pool.Exec(ctx, "UPDATE provider_slots SET holder = NULL, expires_at = NULL WHERE slot = $1 AND holder = $2", slot, p.l.holder); err != nil {
		p.l.db.log.Warn("postgres: freeing a provider slot failed; it frees itself when its lease ends", "err", err)
	}
}

// textKey makes a limit key (platform, a NUL, an id) storable as text,
// which cannot hold a NUL: backslashes are doubled and a NUL becomes \0, so
// distinct keys stay distinct.
func textKey(key string) string {
	return strings.NewReplacer(`\`, `\\`, "\x00", `\0`).Replace(key)
}

// orphanAge is how old a user's turn or quota hold must be, with no
// queued or running turn of its ref, to be an orphan: a turn reserved by a
// process that stopped before recording it.
const orphanAge = 2 * time.Minute

// userSlots are rows of user_turns.
type userSlots struct{ l *Limits }

// Take counts the user's turns under a transaction-scoped advisory lock of
// the user, so that concurrent takes from any process are one at a time.
func (u userSlots) Take(ctx context.Context, ref core.JobRef, user string, max int) (n int, ok bool, err error) {
	user = textKey(user)
	err = u.l.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "easel-user:"+user); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_turns u WHERE user_key = $1 AND created_at < now() - $2::interval
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.session_id = u.session_id AND j.turn_id = u.turn_id
				AND j.status IN ('queued', 'running'))`, user, orphanAge); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM user_turns WHERE user_key = $1", user).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return nil
		}
		ok = true
		_, err := tx.Exec(ctx, "INSERT INTO user_turns (session_id, turn_id, user_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
			ref.SessionID, ref.TurnID, user)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("postgres: count the turns of a user: %w", err)
	}
	return n, ok, nil
}

func (u userSlots) Count(ctx context.Context, user string) (int, error) {
	user = textKey(user)
	var n int
	if err := u.l.pool.QueryRow(ctx, "SELECT count(*) FROM user_turns WHERE user_key = $1", user).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count the turns of a user: %w", err)
	}
	return n, nil
}

func (u userSlots) Add(ctx context.Context, ref core.JobRef, user string) error {
	user = textKey(user)
	_, err := u.l.pool.Exec(ctx, "INSERT INTO user_turns (session_id, turn_id, user_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		ref.SessionID, ref.TurnID, user)
	if err != nil {
		return fmt.Errorf("postgres: count a resumed turn: %w", err)
	}
	return nil
}

func (u userSlots) Release(ctx context.Context, ref core.JobRef) error {
	if _, err := u.l.pool.Exec(ctx, "DELETE FROM user_turns WHERE session_id = $1 AND turn_id = $2", ref.SessionID, ref.TurnID); err != nil {
		return fmt.Errorf("postgres: release a turn's slot: %w", err)
	}
	return nil
}

// quotaHolds are rows of quota_holds.
type quotaHolds struct{ l *Limits }

// Hold runs check and stores the hold under transaction-scoped advisory
// locks of the user and the workspace (taken in a fixed order), so that
// holds and checks from any process are one at a time per user and per
// workspace. check reads the usage counters after the holds: a turn that
// ends in between is counted twice (a refusal too many), never not at all.
func (q quotaHolds) Hold(ctx context.Context, ref core.JobRef, h core.QuotaHold, check func(images int64, spend float64) error) error {
	h.User, h.Workspace = textKey(h.User), textKey(h.Workspace)
	var checkErr error
	err := q.l.tx(ctx, func(tx pgx.Tx) error {
		keys := []string{"easel-user:" + h.User, "easel-workspace:" + h.Workspace}
		if keys[1] < keys[0] {
			keys[0], keys[1] = keys[1], keys[0]
		}
		for _, k := range keys {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", k); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM quota_holds h WHERE (user_key = $1 OR workspace_key = $2)
			AND created_at < now() - $3::interval
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.session_id = h.session_id AND j.turn_id = h.turn_id
				AND j.status IN ('queued', 'running'))`, h.User, h.Workspace, orphanAge); err != nil {
			return err
		}
		images, spend, err := held(ctx, tx, h.User, h.Workspace)
		if err != nil {
			return err
		}
		if checkErr = check(images, spend); checkErr != nil {
			return checkErr
		}
		return insertHold(ctx, tx, ref, h)
	})
	if checkErr != nil {
		return checkErr
	}
	if err != nil {
		return fmt.Errorf("postgres: hold a turn's quota: %w", err)
	}
	return nil
}

func (q quotaHolds) Add(ctx context.Context, ref core.JobRef, h core.QuotaHold) error {
	h.User, h.Workspace = textKey(h.User), textKey(h.Workspace)
	return q.l.tx(ctx, func(tx pgx.Tx) error { return insertHold(ctx, tx, ref, h) })
}

func insertHold(ctx context.Context, tx pgx.Tx, ref core.JobRef, h core.QuotaHold) error {
	_, err := tx.Exec(ctx, `INSERT INTO quota_holds (session_id, turn_id, user_key, workspace_key, images, cost_usd)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, ref.SessionID, ref.TurnID, h.User, h.Workspace, h.Images, h.CostUSD)
	return err
}

func (q quotaHolds) Release(ctx context.Context, ref core.JobRef) error {
	if _, err := q.l.pool.Exec(ctx, "DELETE FROM quota_holds WHERE session_id = $1 AND turn_id = $2", ref.SessionID, ref.TurnID); err != nil {
		return fmt.Errorf("postgres: release a turn's quota hold: %w", err)
	}
	return nil
}

func (q quotaHolds) Held(ctx context.Context, user, workspace string) (int64, float64, error) {
	user, workspace = textKey(user), textKey(workspace)
	images, spend, err := held(ctx, q.l.pool, user, workspace)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: read quota holds: %w", err)
	}
	return images, spend, nil
}

// rowQuerier reads one row: the pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// held returns the images held under user and the spend held under
// workspace.
func held(ctx context.Context, q rowQuerier, user, workspace string) (images int64, spend float64, err error) {
	err = q.QueryRow(ctx, `SELECT
		COALESCE((SELECT sum(images) FROM quota_holds WHERE user_key = $1), 0)::bigint,
		COALESCE((SELECT sum(cost_usd) FROM quota_holds WHERE workspace_key = $2), 0)::double precision`, user, workspace).Scan(&images, &spend)
	return images, spend, err
}
