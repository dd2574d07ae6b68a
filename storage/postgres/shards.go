package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shards spreads a Discord bot's gateway shards over the replicas on the
// database (it is the Discord adapter's ShardLeases) and paces their
// IDENTIFYs (its IdentifyLimits). Each replica that runs Discord has one.
//
// A replica is alive while its row in discord_replicas is renewed and its
// process holds its liveness lock (see DB.keepAlive): a replica killed
// outright loses the lock with its connection, and its shards are free as
// soon as PostgreSQL sees it close; a frozen one keeps it, and loses its
// shards when their leases end. Each grant of a shard has a fencing token, so a replica that wakes
// after its shards were taken over learns so when it renews, and its late
// release frees nothing. Close it before the Limits it came from.
type Shards struct {
	l *Limits

	mu   sync.Mutex // one query at a time on conn
	conn *pgx.Conn  // the shards' own, so that renewals never wait for the pool
}

// Shards returns the shard leases and IDENTIFY pacing of this process, and
// records the process among the replicas running Discord.
func (l *Limits) Shards(ctx context.Context) (*Shards, error) {
	s := &Shards{l: l}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// connect opens s's connection, if it is not open, and records this
// process among the replicas running Discord; s.mu must be held.
func (s *Shards) connect(ctx context.Context) error {
	if s.conn != nil && !s.conn.IsClosed() {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, s.l.db.cfg.ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("postgres: connect to %s: %w", s.l.db.where, err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO discord_replicas (holder, expires_at) VALUES ($1, now() + $2::interval)
		ON CONFLICT (holder) DO UPDATE SET expires_at = EXCLUDED.expires_at`, s.l.holder, s.l.lease)
	if err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("postgres: record this replica: %w", err)
	}
	s.conn = conn
	return nil
}

// alive is an SQL condition: the replica named by the expression holder
// is alive.
func alive(holder string) string {
	return `EXISTS (SELECT 1 FROM discord_replicas r
		WHERE r.holder = ` + holder + ` AND r.expires_at > now() AND easel_holder_alive(r.holder))`
}

// do runs fn on s's connection, reconnecting first if it was lost.
func (s *Shards) do(ctx context.Context, fn func(*pgx.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connect(ctx); err != nil {
		return err
	}
	err := fn(s.conn)
	if err != nil && s.conn.IsClosed() {
		s.conn = nil
	}
	return err
}

// Lease is how long a shard stays held without a renewal.
func (s *Shards) Lease() time.Duration { return s.l.lease }

// Holder names this process in the leases it holds.
func (s *Shards) Holder() string { return s.l.holder }

// Renew extends this process's presence and the leases of held (shard →
// token), and returns those still held, and share: the most shards this
// process should hold, count divided by the live replicas, rounded up.
func (s *Shards) Renew(ctx context.Context, count int, held map[int]int64) (kept map[int]int64, share int, err error) {
	shards, tokens := make([]int32, 0, len(held)), make([]int64, 0, len(held))
	for sh, tok := range held {
		shards, tokens = append(shards, int32(sh)), append(tokens, tok)
	}
	kept = map[int]int64{}
	err = s.do(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "UPDATE discord_replicas SET expires_at = now() + $2::interval WHERE holder = $1",
				s.l.holder, s.l.lease); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `UPDATE discord_shards SET expires_at = now() + $4::interval
				WHERE holder = $1 AND (shard, token) IN (SELECT * FROM unnest($2::integer[], $3::bigint[]))
				RETURNING shard, token`, s.l.holder, shards, tokens, s.l.lease)
			if err != nil {
				return err
			}
			var sh int
			var tok int64
			if _, err := pgx.ForEachRow(rows, []any{&sh, &tok}, func() error { kept[sh] = tok; return nil }); err != nil {
				return err
			}
			var live int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM discord_replicas d WHERE "+alive("d.holder")).Scan(&live); err != nil {
				return err
			}
			share = (count + max(live, 1) - 1) / max(live, 1)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: renew the Discord shards: %w", err)
	}
	return kept, share, nil
}

// Acquire takes up to n of shards 0 to count-1 that no live replica holds
// under an unexpired lease, lowest first, each with a new token. Takes are
// one at a time across replicas.
func (s *Shards) Acquire(ctx context.Context, count, n int) (map[int]int64, error) {
	got := map[int]int64{}
	if n <= 0 || count <= 0 {
		return got, nil
	}
	err := s.do(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('easel-discord-shards'))"); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `WITH free AS (
					SELECT g AS shard FROM generate_series(0, $2::integer - 1) g
					LEFT JOIN discord_shards d ON d.shard = g
					WHERE d.shard IS NULL OR d.expires_at < now() OR NOT `+alive("d.holder")+`
					ORDER BY g LIMIT $3)
				INSERT INTO discord_shards (shard, holder, token, expires_at)
				SELECT shard, $1, nextval('lease_tokens'), now() + $4::interval FROM free
				ON CONFLICT (shard) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
				RETURNING shard, token`, s.l.holder, count, n, s.l.lease)
			if err != nil {
				return err
			}
			var sh int
			var tok int64
			_, err = pgx.ForEachRow(rows, []any{&sh, &tok}, func() error { got[sh] = tok; return nil })
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: take Discord shards: %w", err)
	}
	return got, nil
}

// Release gives shard up if token is still its latest grant.
func (s *Shards) Release(ctx context.Context, shard int, token int64) error {
	err := s.do(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "DELETE FROM discord_shards WHERE shard = $1 AND token = $2", shard, token)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: give up Discord shard %d: %w", shard, err)
	}
	return nil
}

// ReserveIdentify reserves an IDENTIFY in a max_concurrency bucket for
// whichever replica asks: the bucket's first free moment, which it moves
// gap later, and one IDENTIFY of the day's budget. It returns how long to
// wait before identifying. When the budget is spent until it resets it
// reserves nothing, and returns false and the time until the reset.
// Reservations are one at a time per bucket (a row lock), and the clock is
// the database's, so replicas' clocks need not agree.
func (s *Shards) ReserveIdentify(ctx context.Context, bucket int, gap time.Duration) (wait time.Duration, ok bool, err error) {
	err = s.l.tx(ctx, func(tx pgx.Tx) error {
		var remaining int
		var untilReset float64
		err := tx.QueryRow(ctx, `SELECT remaining, extract(epoch FROM reset_at - now())::float8
			FROM discord_identify_budget WHERE reset_at > now() FOR UPDATE`).Scan(&remaining, &untilReset)
		budget := err == nil
		switch {
		case errors.Is(err, pgx.ErrNoRows): // none known, or it was reset
		case err != nil:
			return err
		case remaining <= 0:
			wait = time.Duration(untilReset * float64(time.Second))
			return nil
		}
		var secs float64
		// clock_timestamp: the time after the row lock was waited for.
		if err := tx.QueryRow(ctx, `INSERT INTO discord_identify (bucket, next_at) VALUES ($1, clock_timestamp() + $2::interval)
			ON CONFLICT (bucket) DO UPDATE SET next_at = greatest(discord_identify.next_at, clock_timestamp()) + $2::interval
			RETURNING extract(epoch FROM next_at - $2::interval - clock_timestamp())::float8`, bucket, gap).Scan(&secs); err != nil {
			return err
		}
		wait, ok = max(time.Duration(secs*float64(time.Second)), 0), true
		if !budget {
			return nil
		}
		_, err = tx.Exec(ctx, "UPDATE discord_identify_budget SET remaining = remaining - 1")
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("postgres: reserve an IDENTIFY: %w", err)
	}
	return wait, ok, nil
}

// SetIdentifyBudget records Discord's session_start_limit: remaining
// IDENTIFYs until resetAfter from now.
func (s *Shards) SetIdentifyBudget(ctx context.Context, remaining int, resetAfter time.Duration) error {
	_, err := s.l.pool.Exec(ctx, `INSERT INTO discord_identify_budget (id, remaining, reset_at) VALUES (true, $1, now() + $2::interval)
		ON CONFLICT (id) DO UPDATE SET remaining = EXCLUDED.remaining, reset_at = EXCLUDED.reset_at`, remaining, resetAfter)
	if err != nil {
		return fmt.Errorf("postgres: record the IDENTIFY budget: %w", err)
	}
	return nil
}

// Close gives up this process's shards and presence, and closes its
// connection.
func (s *Shards) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return
	}
	_, _ = s.conn.Exec(ctx, "DELETE FROM discord_shards WHERE holder = $1", s.l.holder)
	_, _ = s.conn.Exec(ctx, "DELETE FROM discord_replicas WHERE holder = $1", s.l.holder)
	_ = s.conn.Close(ctx)
	s.conn = nil
}

// SlackSocketConnections is how many Socket Mode connections Slack allows
// one app.
const SlackSocketConnections = 10

// SlackConnections are the Socket Mode connections of the replicas on the
// database (the Slack adapter's ConnectionSlots): a replica holds one of
// SlackSocketConnections slots, under a lease with a fencing token, while
// its connection is open, so that no more than Slack allows are ever open.
type SlackConnections struct{ l *Limits }

// SlackConnections returns the Socket Mode connection slots as this process
// holds them.
func (l *Limits) SlackConnections() SlackConnections { return SlackConnections{l} }

// Lease is how long a slot stays held without a renewal.
func (c SlackConnections) Lease() time.Duration { return c.l.lease }

// Acquire takes a free (or expired) slot if there is one, with a new token.
func (c SlackConnections) Acquire(ctx context.Context) (slot int, token int64, ok bool, err error) {
	err = c.l.pool.QueryRow(ctx, `WITH free AS (
			SELECT g AS slot FROM generate_series(1, $3::integer) g
			LEFT JOIN slack_connections s ON s.slot = g
			WHERE s.slot IS NULL OR s.expires_at < now() OR s.holder = $1
			ORDER BY g LIMIT 1)
		INSERT INTO slack_connections (slot, holder, token, expires_at)
		SELECT slot, $1, nextval('lease_tokens'), now() + $2::interval FROM free
		ON CONFLICT (slot) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
			WHERE slack_connections.expires_at < now() OR slack_connections.holder = EXCLUDED.holder
		RETURNING slot, token`, c.l.holder, c.l.lease, SlackSocketConnections).Scan(&slot, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("postgres: take a Slack connection slot: %w", err)
	}
	return slot, token, true, nil
}

// Renew extends the lease of slot, and reports whether token is still its
// latest grant.
func (c SlackConnections) Renew(ctx context.Context, slot int, token int64) (bool, error) {
	tag, err := c.l.pool.Exec(ctx, "UPDATE slack_connections SET expires_at = now() + $3::interval WHERE slot = $1 AND token = $2",
		slot, token, c.l.lease)
	if err != nil {
		return false, fmt.Errorf("postgres: renew a Slack connection slot: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release frees slot if token is still its latest grant.
func (c SlackConnections) Release(ctx context.Context, slot int, token int64) error {
	if _, err := c.l.pool.Exec(ctx, "DELETE FROM slack_connections WHERE slot = $1 AND token = $2", slot, token); err != nil {
		return fmt.Errorf("postgres: free a Slack connection slot: %w", err)
	}
	return nil
}
