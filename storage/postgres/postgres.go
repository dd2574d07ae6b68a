// Package postgres keeps Easel's sessions in PostgreSQL, for several Easel
// processes (replicas) sharing one database: sessions as JSON documents,
// the thread bindings, the job index of their turns, usage counters, the
// inbox of deliveries, dedupe marks and the record of starts. It implements
// core.SessionStore and passes the contract suite of storage/storetest, as
// the bbolt store does.
//
// Every write is one transaction. An update locks its session's row, so
// concurrent updates of a session, from any process, are serialised and
// none is lost; the effects core decides for it (core.EffectsOf) are applied
// in the same transaction. The schema is versioned: Open applies the
// migrations the database lacks, and refuses a database whose schema is
// newer than the binary.
package postgres

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easel-bot/easel/core"
)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Logger receives notes about migrations. Default: discard.
	Logger *slog.Logger
	// Now returns the current time; tests set it. Default time.Now.
	Now func() time.Time
	// ReadOnly opens for the commands that only report: the schema is not
	// created or migrated, and one of another version is refused.
	ReadOnly bool
	// Tracer, if set, is told of every statement sent, on every connection
	// (pgx calls its BatchTracer methods for batches, if it has them):
	// for counting round trips.
	Tracer pgx.QueryTracer
}

// DB is an open PostgreSQL session store. Its methods may be called from
// many goroutines.
type DB struct {
	pool     *pgxpool.Pool
	cfg      *pgxpool.Config // for the pool of Limits
	where    string          // the database, without credentials
	log      *slog.Logger
	now      func() time.Time
	readOnly bool
	holder   string // names this process in what it holds

	lifeMu sync.Mutex
	life   *pgx.Conn    // holds this process's liveness lock (see easel_holder_alive)
	lease  atomic.Int64 // nanoseconds a hold outlives its last renewal
}

// DefaultLease is how long a process's hold on a session, a provider slot
// or a delivery outlives its last renewal, unless NewLimits is given
// another.
const DefaultLease = 15 * time.Second

// DB is a session store.
var _ core.SessionStore = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string; it may hold a password, so it never appears in an
// error) and brings its schema up to date. It returns an error when the
// database cannot be reached, or its schema is newer than this Easel's.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres: the connection URL (EASEL_POSTGRES_URL) is not valid") // its text may hold a password
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(cfg), err)
	}
	db := &DB{pool: pool, cfg: cfg, where: where(cfg), log: opts.Logger, now: opts.Now, holder: newHolder(), readOnly: opts.ReadOnly}
	db.lease.Store(int64(DefaultLease))
	check := db.migrate
	if opts.ReadOnly {
		check = db.checkSchema
	}
	if err := check(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", where(cfg), err)
	}
	if !opts.ReadOnly {
		if err := db.keepAlive(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return db, nil
}

// livenessLock is the first key of the advisory lock each process holds
// while it runs; the second is the hash of its name.
const livenessLock = 0x4561_7365 // "Ease"

// keepAlive makes sure this process holds its liveness lock, on a
// connection of its own: while it does, what it holds is taken from it only
// when its leases run out; once it dies, its connection closes, and what it
// held is free at once. It connects and locks again if that connection was
// lost.
func (db *DB) keepAlive(ctx context.Context) error {
	db.lifeMu.Lock()
	defer db.lifeMu.Unlock()
	if db.life != nil {
		if _, err := db.life.Exec(ctx, "SELECT 1"); err == nil {
			return nil
		}
		_ = db.life.Close(ctx)
		db.life = nil
		db.log.Warn("postgres: the connection holding this process's liveness lock was lost; taking it again")
	}
	conn, err := pgx.ConnectConfig(ctx, db.cfg.ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("postgres: connect to %s: %w", db.where, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext($2))", livenessLock, db.holder); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("postgres: %s: liveness lock: %w", db.where, err)
	}
	db.life = conn
	return nil
}

// newHolder returns a name for this process in what it holds: its host,
// its pid and a random part, so that a restarted process with the same pid
// is another holder.
func newHolder() string {
	var b [6]byte
	_, _ = crand.Read(b[:])
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// where names the database of cfg without its password.
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %s on %s:%d", c.Database, c.Host, c.Port)
}

// Close lets go of the deliveries this process holds, so that the next
// process takes them up at once, and closes the connections. It returns
// nil; its result is for symmetry with the other stores.
func (db *DB) Close() error {
	if !db.readOnly {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = db.pool.Exec(ctx, "UPDATE inbox SET holder = NULL, held_until = NULL WHERE holder = $1", db.holder)
		db.lifeMu.Lock()
		if db.life != nil {
			_ = db.life.Close(ctx)
		}
		db.lifeMu.Unlock()
		cancel()
	}
	db.pool.Close()
	return nil
}

// Location names the database, without credentials, for people.
func (db *DB) Location() string { return "postgres " + db.where }

//go:embed migrations/*.sql
var migrations embed.FS

// SchemaVersion is the schema this Easel writes: the number of its newest
// migration.
var SchemaVersion = len(migrationFiles())

// migrationFiles returns the migrations in order: 001_….sql, 002_….sql, ….
func migrationFiles() []string {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		panic(err) // the pattern is valid
	}
	slices.Sort(names)
	return names
}

// migrationLock is the advisory lock held while migrating, so that replicas
// starting together migrate once.
const migrationLock = 0x6561_7365_6c00 // "easel\0"

// migrate applies the migrations the database lacks, each in its own
// transaction, under an advisory lock. It refuses a schema newer than
// SchemaVersion.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("lock for migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck // the lock goes with the connection anyway
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	var version int
	err = conn.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := conn.Exec(ctx, "INSERT INTO schema_version VALUES (0)"); err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("schema version: %w", err)
	case version > SchemaVersion:
		return fmt.Errorf("the database's schema is version %d, newer than this Easel's (%d): a newer Easel wrote it; run that version, or restore a backup made for this one", version, SchemaVersion)
	}
	for i, name := range migrationFiles()[version:] {
		to := version + i + 1
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE schema_version SET version = $1", to)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", path.Base(name), err)
		}
		db.log.Info("postgres: schema migrated", "version", to, "migration", path.Base(name))
	}
	return nil
}

// checkSchema returns an error unless the database's schema is this
// Easel's.
func (db *DB) checkSchema(ctx context.Context) error {
	var version int
	err := db.pool.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "42P01", errors.Is(err, pgx.ErrNoRows): // no such table, or empty
		return errors.New("it holds no Easel data yet: start easel run or easel chat on it first")
	case err != nil:
		return fmt.Errorf("schema version: %w", err)
	case version > SchemaVersion:
		return fmt.Errorf("the database's schema is version %d, newer than this Easel's (%d): a newer Easel wrote it; use that version", version, SchemaVersion)
	case version < SchemaVersion:
		return fmt.Errorf("the database's schema is version %d, older than this Easel's (%d): start easel run once to migrate it", version, SchemaVersion)
	}
	return nil
}

// tx runs fn in a transaction, after checking ctx. It returns fn's error
// unchanged (then nothing is written), or the failure to commit.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("postgres: write: %w", err)
	}
	return err
}

// SessionByThread returns the session bound to platform's thread, or a
// NotFound *core.Error when the thread has none.
func (db *DB) SessionByThread(ctx context.Context, platform, thread string) (*core.Session, error) {
	row := db.pool.QueryRow(ctx, `SELECT s.doc FROM threads t JOIN sessions s ON s.id = t.session_id
		WHERE t.platform = $1 AND t.thread = $2`, platform, thread)
	s, err := scanSession(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, core.Errorf(core.NotFound, "no session in %s thread %s", platform, thread)
	}
	return s, err
}

// Session returns the session with id, or a NotFound *core.Error.
func (db *DB) Session(ctx context.Context, id string) (*core.Session, error) {
	s, err := scanSession(db.pool.QueryRow(ctx, "SELECT doc FROM sessions WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, core.Errorf(core.NotFound, "session %s not found", id)
	}
	return s, err
}

// Sessions returns every session, most recently updated first.
func (db *DB) Sessions(ctx context.Context) ([]*core.Session, error) {
	rows, err := db.pool.Query(ctx, "SELECT doc FROM sessions ORDER BY updated_at DESC, id")
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*core.Session, error) { return scanSession(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions: %w", err)
	}
	return list, nil
}

// scanSession decodes the session document of row.
func scanSession(row pgx.Row) (*core.Session, error) {
	var doc []byte
	if err := row.Scan(&doc); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("postgres: read session: %w", err)
	}
	s := new(core.Session)
	if err := json.Unmarshal(doc, s); err != nil {
		return nil, fmt.Errorf("postgres: decode session: %w", err)
	}
	return s, nil
}

// CreateSession stores s, whose ID must be new, binds its platform thread
// to it (replacing an earlier binding; that session stays readable by id)
// and applies the effects of its turns. Zero CreatedAt and UpdatedAt are
// set to now. It returns a Conflict *core.Error when s.ID exists.
func (db *DB) CreateSession(ctx context.Context, s *core.Session) error {
	if s.ID == "" {
		return errors.New("postgres: create session: empty id")
	}
	now := db.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	doc, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("postgres: encode session %s: %w", s.ID, err)
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO sessions (id, doc, updated_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING", s.ID, doc, s.UpdatedAt)
		if err != nil {
			return fmt.Errorf("postgres: store session %s: %w", s.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return core.Errorf(core.Conflict, "session %s already exists", s.ID)
		}
		_, err = tx.Exec(ctx, `INSERT INTO threads (platform, thread, session_id) VALUES ($1, $2, $3)
			ON CONFLICT (platform, thread) DO UPDATE SET session_id = EXCLUDED.session_id`, s.Platform, s.Thread, s.ID)
		if err != nil {
			return fmt.Errorf("postgres: bind %s thread %s: %w", s.Platform, s.Thread, err)
		}
		return applyEffects(ctx, tx, core.EffectsOf(nil, s, now), now, db.holder)
	})
}

// UpdateSession loads session id, locking it, calls fn on it and, if fn
// returns nil, sets its UpdatedAt to now and stores it, applying
// core.EffectsOf the change in the same transaction. It returns the stored
// session, a NotFound *core.Error, or fn's error unchanged (then nothing is
// written). fn runs inside the transaction: it must be quick and do no I/O.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*core.Session) error) (*core.Session, error) {
	var s *core.Session
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		s, err = scanSession(tx.QueryRow(ctx, "SELECT doc FROM sessions WHERE id = $1 FOR UPDATE", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return core.Errorf(core.NotFound, "session %s not found", id)
		}
		if err != nil {
			return err
		}
		if f, ok := core.FenceOf(ctx); ok && f.Session == id {
			if err := checkFence(ctx, tx, f); err != nil {
				return err
			}
		}
		before := s.Clone()
		if err := fn(s); err != nil {
			return err
		}
		if s.ID != id {
			return fmt.Errorf("postgres: update of session %s changed its id to %s", id, s.ID)
		}
		now := db.now()
		s.UpdatedAt = now
		doc, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("postgres: encode session %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, "UPDATE sessions SET doc = $2, updated_at = $3 WHERE id = $1", id, doc, now); err != nil {
			return fmt.Errorf("postgres: store session %s: %w", id, err)
		}
		return applyEffects(ctx, tx, core.EffectsOf(before, s, now), now, db.holder)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkFence returns core.ErrLeaseLost unless f is the latest, unexpired
// grant of its session's lease. It locks the lease row until tx ends, so a
// process taking the session over waits for this update to commit.
func checkFence(ctx context.Context, tx pgx.Tx, f core.Fence) error {
	var live bool
	err := tx.QueryRow(ctx, "SELECT expires_at > now() FROM session_leases WHERE session_id = $1 AND token = $2 FOR SHARE",
		f.Session, f.Token).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
		return core.ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("postgres: check the lease of session %s: %w", f.Session, err)
	}
	return nil
}

// applyEffects writes fx in tx: job records, usage counters, handled inbox
// entries, and the release of what ended turns held of the shared limits.
// It decides nothing itself.
func applyEffects(ctx context.Context, tx pgx.Tx, fx core.Effects, now time.Time, holder string) error {
	for _, key := range fx.Handled {
		// Only the delivery's holder records its turn; one held by a live
		// process, or gone (its turn recorded), is another's.
		tag, err := tx.Exec(ctx, `DELETE FROM inbox WHERE key = $1
			AND (holder IS NULL OR holder = $2 OR held_until < now() OR NOT easel_holder_alive(holder))`, key, holder)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return core.ErrDeliveryTaken
		}
	}
	batch := &pgx.Batch{}
	for _, j := range fx.Jobs {
		batch.Queue(`INSERT INTO jobs (session_id, turn_id, status, kind, user_id, attempts, pending, queued_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (session_id, turn_id) DO UPDATE SET status = EXCLUDED.status, kind = EXCLUDED.kind,
				user_id = EXCLUDED.user_id, attempts = EXCLUDED.attempts, pending = EXCLUDED.pending,
				queued_at = EXCLUDED.queued_at, updated_at = EXCLUDED.updated_at`,
			j.Ref.SessionID, j.Ref.TurnID, string(j.Status), string(j.Kind), j.User, j.Attempts, j.Pending, j.QueuedAt, now)
	}
	for _, ref := range fx.Dropped {
		batch.Queue("UPDATE jobs SET pending = false, updated_at = $3 WHERE session_id = $1 AND turn_id = $2", ref.SessionID, ref.TurnID, now)
	}
	for _, ref := range fx.Ended { // what the turn held of the shared limits, released with its end
		batch.Queue("DELETE FROM user_turns WHERE session_id = $1 AND turn_id = $2", ref.SessionID, ref.TurnID)
		batch.Queue("DELETE FROM quota_holds WHERE session_id = $1 AND turn_id = $2", ref.SessionID, ref.TurnID)
	}
	for _, u := range fx.Usage {
		batch.Queue(`INSERT INTO usage (key, turns, images, cost_usd) VALUES ($1, $2, $3, $4)
			ON CONFLICT (key) DO UPDATE SET turns = usage.turns + EXCLUDED.turns, images = usage.images + EXCLUDED.images,
				cost_usd = usage.cost_usd + EXCLUDED.cost_usd`, u.Key, u.Turns, u.Images, u.CostUSD)
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("postgres: apply effects: %w", err)
	}
	return nil
}

// ActiveJobs returns every pending turn, oldest queued first (ties by
// session id and turn).
func (db *DB) ActiveJobs(ctx context.Context) ([]core.JobRef, error) {
	rows, err := db.pool.Query(ctx, "SELECT session_id, turn_id FROM jobs WHERE pending ORDER BY queued_at, session_id, turn_id")
	if err != nil {
		return nil, fmt.Errorf("postgres: active jobs: %w", err)
	}
	refs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (core.JobRef, error) {
		var r core.JobRef
		err := row.Scan(&r.SessionID, &r.TurnID)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: active jobs: %w", err)
	}
	return refs, nil
}

// UsageTotals returns the usage counter under exactly key, or zero totals
// when there is none.
func (db *DB) UsageTotals(ctx context.Context, key string) (core.UsageTotals, error) {
	var u core.UsageTotals
	err := db.pool.QueryRow(ctx, "SELECT turns, images, cost_usd FROM usage WHERE key = $1", key).Scan(&u.Turns, &u.Images, &u.CostUSD)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.UsageTotals{}, nil
	}
	if err != nil {
		return core.UsageTotals{}, fmt.Errorf("postgres: usage %s: %w", key, err)
	}
	return u, nil
}

// Usage returns the usage counters whose keys start with prefix, in key
// order.
func (db *DB) Usage(ctx context.Context, prefix string) ([]core.UsageRow, error) {
	like := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(prefix) + "%"
	rows, err := db.pool.Query(ctx, "SELECT key, turns, images, cost_usd FROM usage WHERE key LIKE $1 ORDER BY key COLLATE \"C\"", like)
	if err != nil {
		return nil, fmt.Errorf("postgres: usage: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (core.UsageRow, error) {
		var u core.UsageRow
		err := row.Scan(&u.Key, &u.Turns, &u.Images, &u.CostUSD)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: usage: %w", err)
	}
	return list, nil
}

// pruneBatch bounds how many expired dedupe marks one mark deletes.
const pruneBatch = 100

// markEvent records the dedupe mark of key until now+ttl in tx and reports
// whether it was not marked already (or its mark had expired), deleting a
// batch of expired marks first.
func markEvent(ctx context.Context, tx pgx.Tx, key string, now time.Time, ttl time.Duration) (bool, error) {
	_, err := tx.Exec(ctx, `DELETE FROM events WHERE key IN
		(SELECT key FROM events WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, pruneBatch)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO events (key, expires_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE events.expires_at <= $3`, key, now.Add(ttl), now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// MarkEvent records that the platform event named key is being handled and
// reports whether this is its first delivery within ttl; false means a
// duplicate. The mark is durable when MarkEvent returns and shared by every
// process on the database.
func (db *DB) MarkEvent(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	if key == "" {
		return false, errors.New("postgres: mark event: empty key")
	}
	err = db.tx(ctx, func(tx pgx.Tx) (err error) {
		first, err = markEvent(ctx, tx, key, db.now(), ttl)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: mark event %s: %w", key, err)
	}
	return first, nil
}

// Receive records a delivery before the platform is told it arrived: it
// marks key for dedupe for ttl and, if this is its first delivery, keeps
// kind and payload until Handled(key), held by this process. It reports
// whether this is the first delivery.
func (db *DB) Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (first bool, err error) {
	if key == "" {
		return false, errors.New("postgres: receive: empty key")
	}
	now := db.now()
	err = db.tx(ctx, func(tx pgx.Tx) (err error) {
		if first, err = markEvent(ctx, tx, key, now, ttl); err != nil || !first {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO inbox (key, kind, payload, at, holder, held_until)
			VALUES ($1, $2, $3, $4, $5, now() + $6::interval)
			ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, payload = EXCLUDED.payload, at = EXCLUDED.at,
				holder = EXCLUDED.holder, held_until = EXCLUDED.held_until`, key, kind, payload, now, db.holder, db.leaseOf())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: receive %s: %w", key, err)
	}
	return first, nil
}

// Handled forgets the delivery key once its work is handed over, unless
// another live process holds it now; its dedupe mark stays until it
// expires.
func (db *DB) Handled(ctx context.Context, key string) error {
	// Only its holder's word counts: a process that lost the delivery
	// (it froze, and another took it up) leaves it to the new holder.
	if _, err := db.pool.Exec(ctx, `DELETE FROM inbox WHERE key = $1
		AND (holder IS NULL OR holder = $2 OR held_until < now() OR NOT easel_holder_alive(holder))`, key, db.holder); err != nil {
		return fmt.Errorf("postgres: handled %s: %w", key, err)
	}
	return nil
}

// Unhandled returns the deliveries received but not handled that no other
// live process holds (their holder stopped, died or froze past its lease),
// oldest first, and holds them for this process from now on. Opened
// read-only, it returns every one and holds nothing.
func (db *DB) Unhandled(ctx context.Context) ([]core.Delivery, error) {
	query, args := `SELECT key, kind, payload, at FROM inbox ORDER BY at, key`, []any(nil)
	if !db.readOnly {
		query = `WITH free AS (SELECT key FROM inbox
				WHERE holder IS NULL OR holder = $1 OR held_until < now() OR NOT easel_holder_alive(holder)
				FOR UPDATE SKIP LOCKED)
			UPDATE inbox SET holder = $1, held_until = now() + $2::interval FROM free WHERE inbox.key = free.key
			RETURNING inbox.key, inbox.kind, inbox.payload, inbox.at`
		args = []any{db.holder, db.leaseOf()}
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: inbox: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (core.Delivery, error) {
		var d core.Delivery
		err := row.Scan(&d.Key, &d.Kind, &d.Payload, &d.At)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: inbox: %w", err)
	}
	slices.SortFunc(list, func(a, b core.Delivery) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Key, b.Key))
	})
	return list, nil
}

// leaseOf returns how long a hold outlives its last renewal.
func (db *DB) leaseOf() time.Duration { return time.Duration(db.lease.Load()) }

// maxStarts bounds the start times kept for one name, newest kept.
const maxStarts = 4096

// RecordStart records that the thing called name started at at, forgets
// its starts from before at-keep, and returns the starts still kept, oldest
// first, at included. At most 4096 starts are kept per name.
func (db *DB) RecordStart(ctx context.Context, name string, at time.Time, keep time.Duration) ([]time.Time, error) {
	if name == "" {
		return nil, errors.New("postgres: record start: empty name")
	}
	var starts []time.Time
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// Starts of one name are recorded one at a time.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "easel-starts:"+name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO starts (name, at) VALUES ($1, $2)", name, at); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM starts WHERE name = $1 AND at < $2", name, at.Add(-keep)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM starts WHERE name = $1 AND ctid NOT IN
			(SELECT ctid FROM starts WHERE name = $1 ORDER BY at DESC LIMIT $2)`, name, maxStarts)
		if err != nil {
			return err
		}
		starts, err = queryStarts(ctx, tx, name, time.Time{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: record start of %s: %w", name, err)
	}
	return starts, nil
}

// Starts returns the starts of name at or after since, oldest first.
func (db *DB) Starts(ctx context.Context, name string, since time.Time) ([]time.Time, error) {
	starts, err := queryStarts(ctx, db.pool, name, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: starts of %s: %w", name, err)
	}
	return starts, nil
}

// querier is what reads starts: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func queryStarts(ctx context.Context, q querier, name string, since time.Time) ([]time.Time, error) {
	rows, err := q.Query(ctx, "SELECT at FROM starts WHERE name = $1 AND at >= $2 ORDER BY at", name, since)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[time.Time])
}

// Import stores s, copied from another store, as it is: a session already
// here is replaced only by a copy updated later, so importing twice changes
// nothing. With bound, s's thread is bound to it, as the source binds it.
// Its job records are written as core.EffectsOf decides; its usage is not
// counted (copy the counters with SetUsage).
func (db *DB) Import(ctx context.Context, s *core.Session, bound bool) error {
	doc, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("postgres: encode session %s: %w", s.ID, err)
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO sessions (id, doc, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at
			WHERE sessions.updated_at < EXCLUDED.updated_at`, s.ID, doc, s.UpdatedAt)
		if err != nil {
			return fmt.Errorf("postgres: import session %s: %w", s.ID, err)
		}
		if bound {
			_, err = tx.Exec(ctx, `INSERT INTO threads (platform, thread, session_id) VALUES ($1, $2, $3)
				ON CONFLICT (platform, thread) DO UPDATE SET session_id = EXCLUDED.session_id`, s.Platform, s.Thread, s.ID)
			if err != nil {
				return fmt.Errorf("postgres: bind %s thread %s: %w", s.Platform, s.Thread, err)
			}
		}
		if tag.RowsAffected() == 0 {
			return nil // a copy as new or newer is here
		}
		fx := core.EffectsOf(nil, s, s.UpdatedAt)
		return applyEffects(ctx, tx, core.Effects{Jobs: fx.Jobs}, s.UpdatedAt, db.holder)
	})
}

// SetUsage sets the usage counters of rows to their totals, copied from
// another store: setting them again changes nothing.
func (db *DB) SetUsage(ctx context.Context, rows []core.UsageRow) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, u := range rows {
			batch.Queue(`INSERT INTO usage (key, turns, images, cost_usd) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key) DO UPDATE SET turns = EXCLUDED.turns, images = EXCLUDED.images, cost_usd = EXCLUDED.cost_usd`,
				u.Key, u.Turns, u.Images, u.CostUSD)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("postgres: set usage: %w", err)
		}
		return nil
	})
}
