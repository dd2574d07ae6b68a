package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of EngineConfig, taken by its zero fields.
const (
	DefaultMaxConcurrent  = 4
	DefaultMaxPerUser     = 3
	DefaultMaxQueue       = 10
	DefaultVariations     = 4
	DefaultMaxN           = 4
	DefaultMaxPromptChars = 32000
	DefaultTurnTimeout    = 5 * time.Minute
	DefaultStoreRetry     = 30 * time.Second
)

// EngineConfig tunes the Engine. Zero fields take the defaults above.
type EngineConfig struct {
	// MaxConcurrent bounds provider calls in flight across all sessions.
	MaxConcurrent int
	// MaxPerUser bounds one user's queued and running turns across sessions.
	MaxPerUser int
	// MaxQueue bounds the turns waiting in one session.
	MaxQueue int
	// Variations is how many images a Variations request makes without --n.
	Variations int
	// Limits bound prompts and flags.
	Limits Limits
	// TurnTimeout bounds one turn's provider call, retries included.
	TurnTimeout time.Duration
	// StoreRetry is how long a running turn keeps retrying a store that
	// fails (a full disk, say) before the engine gives up on its session
	// until the store works again.
	StoreRetry time.Duration
	// CancelPoll is how often a running turn reads its session to notice
	// a cancel recorded by another process sharing the store.
	CancelPoll time.Duration
	// StrictRegion is the default of --strict-region: when set, the result
	// of a region edit is composited onto the image it edits, so no pixel
	// outside the region changes.
	StrictRegion bool
	// DefaultProvider names the provider used without --provider.
	DefaultProvider string
	// Admins are user ids that may press anyone's buttons and manage
	// styles and channel defaults.
	Admins []string
	// Styles are the styles of the config, for every workspace.
	Styles []Style
	// StyleStore keeps the styles and channel defaults set in chat; nil
	// allows only the config's styles.
	StyleStore StyleStore
	// Access says who may use Easel at all.
	Access Access
	// Quota bounds images per user and spend per workspace.
	Quotas Quotas
	// Limiters are the shared limits; nil fields take the in-process
	// implementations (see Limiters).
	Limiters Limiters
	// Metrics observes the engine's work; nil observes nothing.
	Metrics Metrics
	// SessionLink, if set, returns a link to a session's page in the web
	// gallery, which each posted image carries (ImagePost.Link), or "".
	SessionLink func(sessionID string) string
}

// Message is one request from a chat: a prompt, a reply or a button press.
type Message struct {
	// Platform names the adapter's platform; sessions are per platform.
	Platform string
	// Workspace is the platform's team, organisation or server the message
	// came from; "" for none (a direct message outside any).
	Workspace string
	Channel   string
	// Category is the group the channel belongs to, where the platform
	// has one (a Discord category); channel defaults set there apply to
	// its channels that set none.
	Category string
	Thread   string // platform thread key; with Platform it names the session
	User     User
	Action   Action
	Text     string
	// Version is the version a reply or button refers to; 0 means head.
	Version int
	// SessionID, when set (by a button), must be the thread's session.
	SessionID string
	// Grid, on a pick (ActionPick), is the first version of the grid whose
	// button was pressed; Version, the picked one, must be among its
	// candidates.
	Grid int
	// Inputs are attached images.
	Inputs []Image
	// N is how many images a Variations request makes; 0 means the
	// configured default.
	N int
	// Source is the platform's id of the triggering message.
	Source string
	// NewSession starts a fresh session in the thread even if it has one.
	NewSession bool
	// Roles are the sender's role ids, on a platform whose members have
	// roles (see RolesApply).
	Roles []string
	// RolesApply is set on a platform whose members have roles: there
	// Access.Roles applies, and a sender who shows none (in a direct
	// message, say) does not pass it. Elsewhere Access.Roles is ignored.
	RolesApply bool
	// WorkspaceTerm is what the platform calls a workspace, as messages to
	// its users say it ("server"); empty means "workspace".
	WorkspaceTerm string
	// DM is set for a direct message to the bot.
	DM bool
	// Delivery is the inbox key of the platform delivery that carried the
	// message; recording the turn marks that delivery handled.
	Delivery string
}

// Queued tells where an accepted message stands.
type Queued struct {
	SessionID string
	TurnID    int
	// Position is the number of turns ahead of it in its session.
	Position int
}

// Engine runs turns: it records each request, queues it behind the earlier
// turns of its session, calls the provider within the global concurrency
// limit and reports progress and results to the session's Thread.
//
// A store that fails while a turn runs is retried with backoff for
// EngineConfig.StoreRetry; then the engine gives up on that session, tells
// its thread once, and leaves its turns recorded as they are, to resume with
// the next message that can be recorded there or on the next start. A post
// that landed but could not be recorded is remembered, so this process never
// makes it twice.
//
// Its work is spread over files by concern: intake.go admits and records
// messages (Handle), worker.go runs each session's turns in order and
// resumes them after a restart, turn.go runs one turn, cancel.go cancels
// one, post.go posts its result, reservation.go keeps what each turn holds of the limits in limits.go, and
// storefailure.go retries a failing store and gives up on a session.
//
// Locks, always taken in this order and never the other way: a thread's
// lock (lockThread), then mu, then the limiters' own (see Limiters), which
// take no other. Store calls are made under a thread's lock and inside
// QuotaHolds.Hold (quota checks read usage), never under mu.
type Engine struct {
	cfg       EngineConfig
	store     SessionStore
	images    ImageStore
	providers map[string]Generator
	log       *slog.Logger
	now       func() time.Time

	limits  Limiters
	waiting atomic.Int64 // turns waiting for a provider slot
	running atomic.Int64 // turns holding a provider slot
	metrics Metrics

	runCtx    context.Context // cancelled to abandon running turns on a forced stop
	cancelRun context.CancelFunc
	workers   sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	sessions   map[string]*worker                 // session id → its running worker
	threads    map[string]*keyMutex               // platform+thread → lock held while finding or creating its session
	held       map[JobRef]*reservation            // turn → what it holds until it ends
	unrecorded map[JobRef]map[int]bool            // turn → posts made but not recorded (version, 0 for text)
	jobs       map[JobRef]context.CancelCauseFunc // running turn → stops its run (see Cancel)
}

// NewEngine returns an Engine that keeps sessions in store and image bytes
// in images, and renders with providers, keyed by name.
// cfg.DefaultProvider must be one of them.
func NewEngine(cfg EngineConfig, store SessionStore, images ImageStore, providers map[string]Generator, log *slog.Logger) (*Engine, error) {
	if _, ok := providers[cfg.DefaultProvider]; !ok {
		return nil, fmt.Errorf("engine: default provider %q is not configured", cfg.DefaultProvider)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.MaxConcurrent = either(max(cfg.MaxConcurrent, 0), DefaultMaxConcurrent)
	cfg.MaxPerUser = either(max(cfg.MaxPerUser, 0), DefaultMaxPerUser)
	cfg.MaxQueue = either(max(cfg.MaxQueue, 0), DefaultMaxQueue)
	cfg.Variations = either(max(cfg.Variations, 0), DefaultVariations)
	cfg.TurnTimeout = either(max(cfg.TurnTimeout, 0), DefaultTurnTimeout)
	cfg.StoreRetry = either(max(cfg.StoreRetry, 0), DefaultStoreRetry)
	cfg.CancelPoll = either(max(cfg.CancelPoll, 0), DefaultCancelPoll)
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = noMetrics{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		cfg:        cfg,
		store:      store,
		images:     images,
		providers:  providers,
		log:        log,
		now:        time.Now,
		limits:     cfg.Limiters.withDefaults(cfg.MaxConcurrent),
		metrics:    metrics,
		runCtx:     ctx,
		cancelRun:  cancel,
		sessions:   map[string]*worker{},
		threads:    map[string]*keyMutex{},
		held:       map[JobRef]*reservation{},
		unrecorded: map[JobRef]map[int]bool{},
		jobs:       map[JobRef]context.CancelCauseFunc{},
	}, nil
}

// Close stops taking new work and waits for running turns to finish. When ctx
// ends first, running turns are abandoned and stay queued for the next start.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	select {
	case <-done:
		e.cancelRun()
		return nil
	case <-ctx.Done():
		e.cancelRun()
		<-done
		return fmt.Errorf("engine: stopped before all turns finished: %w", ctx.Err())
	}
}

// Session returns the current session of a platform thread.
func (e *Engine) Session(ctx context.Context, platform, thread string) (*Session, error) {
	return e.store.SessionByThread(ctx, platform, thread)
}

// NewRef returns a short random reference under which an internal error is
// logged, for the user to quote.
func NewRef() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// either returns a if it is set, else b.
func either[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func displayName(u User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}
