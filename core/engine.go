package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// EngineConfig tunes the Engine. Zero values take the defaults of
// config.example.toml.
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
	// DefaultProvider names the provider used without --provider.
	DefaultProvider string
	// Admins are user ids that may press anyone's buttons.
	Admins []string
	// Access says who may use Easel at all.
	Access Access
	// Quota bounds images per user and spend per workspace.
	Quotas Quotas
}

// Message is one request from a chat: a prompt, a reply or a button press.
type Message struct {
	Platform  string
	Workspace string
	Channel   string
	Thread    string // platform thread key; with Platform it names the session
	User      User
	Action    Action
	Text      string
	// Version is the version a reply or button refers to; 0 means head.
	Version int
	// SessionID, when set (by a button), must be the thread's session.
	SessionID string
	// Inputs are attached images.
	Inputs []Image
	// N is how many images a Variations request makes; 0 means the
	// configured default.
	N int
	// Source is the platform's id of the triggering message.
	Source string
	// NewSession starts a fresh session in the thread even if it has one.
	NewSession bool
	// Roles are the sender's Discord role ids, for Access.Roles.
	Roles []string
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
type Engine struct {
	cfg       EngineConfig
	store     Store
	providers map[string]Generator
	log       *slog.Logger
	now       func() time.Time

	global  *semaphore.Weighted
	waiting atomic.Int64 // turns waiting for a global slot

	runCtx    context.Context // cancelled to abandon running turns on a forced stop
	cancelRun context.CancelFunc
	workers   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sessions map[string]*worker   // session id → its running worker
	threads  map[string]*keyMutex // platform+thread → lock held while finding or creating its session
	inFlight map[string]int       // user key → queued and running turns

	quota quotaBook // images and spend held by turns admitted but not ended
}

// worker is the goroutine that runs one session's turns in order.
type worker struct {
	thread Thread
	more   bool // a turn was queued after the worker last looked
}

type keyMutex struct {
	sync.Mutex
	refs int
}

// NewEngine returns an Engine that keeps sessions in store and renders with
// providers, keyed by name. cfg.DefaultProvider must be one of them.
func NewEngine(cfg EngineConfig, store Store, providers map[string]Generator, log *slog.Logger) (*Engine, error) {
	if _, ok := providers[cfg.DefaultProvider]; !ok {
		return nil, fmt.Errorf("engine: default provider %q is not configured", cfg.DefaultProvider)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.MaxConcurrent = either(max(cfg.MaxConcurrent, 0), 4)
	cfg.MaxPerUser = either(max(cfg.MaxPerUser, 0), 3)
	cfg.MaxQueue = either(max(cfg.MaxQueue, 0), 10)
	cfg.Variations = either(max(cfg.Variations, 0), 4)
	if cfg.TurnTimeout <= 0 {
		cfg.TurnTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		cfg:       cfg,
		store:     store,
		providers: providers,
		log:       log,
		now:       time.Now,
		global:    semaphore.NewWeighted(int64(cfg.MaxConcurrent)),
		runCtx:    ctx,
		cancelRun: cancel,
		sessions:  map[string]*worker{},
		threads:   map[string]*keyMutex{},
		inFlight:  map[string]int{},
	}, nil
}

// Handle records msg as a new turn of its thread's session (creating the
// session if needed) and queues it. It returns once the turn is durably
// queued; the work happens later and reports to th. Handle returns an *Error
// for anything the user should be told directly (invalid flags, limits,
// buttons pressed by someone else); nothing is recorded then. Access is
// checked first, as Allowed does.
func (e *Engine) Handle(ctx context.Context, th Thread, msg Message) (Queued, error) {
	msg, turn, err := e.prepare(msg)
	if err != nil {
		return Queued{}, err
	}
	userKey := msg.Platform + "\x00" + msg.User.ID
	q, err := e.record(ctx, msg, turn, userKey)
	if err != nil {
		return Queued{}, err
	}
	if q.Position > 0 {
		e.status(th, fmt.Sprintf("⏳ queued, position %d in this thread", q.Position))
	}
	if !e.startWorker(q.SessionID, th) {
		// Closed while we were recording: the turn stays queued for the next start.
		e.release(userKey)
	}
	return q, nil
}

// Check reports what Handle would say about msg now, without recording or
// holding anything: access, the prompt and its flags against the limits,
// the provider's own checks of the request, the sender's turns in flight,
// the quotas and the session's queue. It returns nil, the *Error Handle
// would return, or an error reading the store. Adapters call it before they post anything public for a
// message, so that a refused one leaves no trace but a private note; nil is
// no promise, since other turns may take the last slot before Handle runs.
func (e *Engine) Check(ctx context.Context, msg Message) error {
	msg, turn, err := e.prepare(msg)
	if err != nil {
		return err
	}
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return err
	}
	if err := e.admit(sess, &turn, msg); err != nil {
		return err
	}
	if err := e.vacancy(msg.Platform + "\x00" + msg.User.ID); err != nil {
		return err
	}
	if _, err := e.quotaFor(ctx, sess, turn, msg, false); err != nil {
		return err
	}
	if active := len(sess.ActiveTurns()); active >= e.cfg.MaxQueue {
		return queueFull(active)
	}
	return nil
}

// prepare checks what can be checked of msg alone (access, flags, limits)
// and returns it, its sender's admin status settled, with the turn it asks
// for.
func (e *Engine) prepare(msg Message) (Message, Turn, error) {
	if err := e.Allowed(msg); err != nil {
		return msg, Turn{}, err
	}
	if msg.Action == "" {
		msg.Action = ActionPrompt
	}
	msg.User.Admin = msg.User.Admin || slices.Contains(e.cfg.Admins, msg.User.ID)
	turn := Turn{Action: msg.Action, User: msg.User, Text: msg.Text, Target: msg.Version, Source: msg.Source,
		Delivery: msg.Delivery, Status: StatusQueued}
	if msg.N != 0 {
		if maxN := max(e.cfg.Limits.MaxN, 1); msg.N < 1 || msg.N > maxN {
			return msg, Turn{}, Errorf(Invalid, "%d variations is not allowed: ask for 1 to %d", msg.N, maxN)
		}
		turn.Flags.N = msg.N
	}
	if msg.Action == ActionPrompt {
		prompt, flags, err := ParsePrompt(msg.Text, e.cfg.Limits)
		if err != nil {
			return msg, Turn{}, err
		}
		turn.Prompt, turn.Flags = prompt, flags
	}
	return msg, turn, nil
}

// Allowed reports whether msg's sender may use Easel where msg was sent:
// nil, or a Forbidden *Error whose message tells the sender why (see
// Access.Check). Users in the engine's admins count as admins. It does no
// I/O, so adapters call it before anything costly, such as downloading
// attachments or posting a message.
func (e *Engine) Allowed(msg Message) error {
	msg.User.Admin = msg.User.Admin || slices.Contains(e.cfg.Admins, msg.User.ID)
	return e.cfg.Access.Check(msg)
}

// record admits turn, reserves its user's slot and stores it as queued in
// msg's session, creating the session if needed. On error nothing is
// reserved and no turn is recorded.
func (e *Engine) record(ctx context.Context, msg Message, turn Turn, userKey string) (q Queued, err error) {
	unlock := e.lockThread(msg.Platform + "\x00" + msg.Thread)
	defer unlock()
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return Queued{}, err
	}
	if err := e.admit(sess, &turn, msg); err != nil {
		return Queued{}, err
	}
	if err := e.reserve(userKey); err != nil {
		return Queued{}, err
	}
	hold, err := e.quotaFor(ctx, sess, turn, msg, true)
	if err != nil {
		e.release(userKey)
		return Queued{}, err
	}
	defer func() {
		if err != nil {
			e.release(userKey)
			e.cancelQuota(hold)
		} else {
			e.bindQuota(hold, JobRef{SessionID: q.SessionID, TurnID: q.TurnID})
		}
	}()
	for _, in := range msg.Inputs {
		ref, err := e.store.PutImage(ctx, in)
		if err != nil {
			return Queued{}, fmt.Errorf("engine: store attachment: %w", err)
		}
		turn.Inputs = append(turn.Inputs, ref)
	}
	if sess.ID == "" {
		sess = &Session{
			ID: NewSessionID(), Platform: msg.Platform, Workspace: msg.Workspace, Channel: msg.Channel,
			Thread: msg.Thread, CreatedBy: msg.User, CreatedAt: e.now(),
		}
		if err := e.store.CreateSession(ctx, sess); err != nil {
			return Queued{}, fmt.Errorf("engine: create session: %w", err)
		}
	}
	_, err = e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
		active := len(s.ActiveTurns())
		if active >= e.cfg.MaxQueue {
			return queueFull(active)
		}
		turn.ID, turn.QueuedAt = len(s.Turns)+1, e.now()
		s.Turns = append(s.Turns, turn)
		q = Queued{SessionID: s.ID, TurnID: turn.ID, Position: active}
		return nil
	})
	return q, err
}

// sessionFor returns the session msg belongs to, or an empty Session (ID "")
// if a new one must be created.
func (e *Engine) sessionFor(ctx context.Context, msg Message) (*Session, error) {
	if msg.NewSession {
		if msg.Action != ActionPrompt {
			return nil, Errorf(Conflict, "start a new session with a prompt")
		}
		return &Session{}, nil
	}
	sess, err := e.store.SessionByThread(ctx, msg.Platform, msg.Thread)
	switch {
	case KindOf(err) == NotFound && msg.Action == ActionPrompt && msg.SessionID == "":
		return &Session{}, nil
	case KindOf(err) == NotFound:
		return nil, Errorf(NotFound, "this thread has no Easel session; start one with a prompt")
	case err != nil:
		return nil, fmt.Errorf("engine: find session: %w", err)
	}
	if msg.SessionID != "" && msg.SessionID != sess.ID {
		// A button from an earlier session of this thread (after "new").
		if sess, err = e.store.Session(ctx, msg.SessionID); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

// admit checks a turn against the session before it is recorded: buttons
// need an image and a permitted presser; the provider must exist and accept
// the request. A turn aimed at a head that earlier queued turns will make is
// checked again when it runs.
func (e *Engine) admit(sess *Session, t *Turn, msg Message) error {
	if msg.Version != 0 && sess.Version(msg.Version) == nil {
		return Errorf(NotFound, "v%d does not exist in this session", msg.Version)
	}
	if t.Action != ActionPrompt {
		target := either(msg.Version, sess.Head)
		v := sess.Version(target)
		if v == nil && len(sess.ActiveTurns()) == 0 {
			return Errorf(Conflict, "there is no image in this thread yet; start with a prompt")
		}
	}
	if t.Action != ActionPrompt && sess.Version(either(msg.Version, sess.Head)) != nil {
		target := either(msg.Version, sess.Head)
		v := sess.Version(target)
		owner := sess.Turn(v.Turn).User
		if !msg.User.Admin && owner.ID != msg.User.ID {
			return Errorf(Forbidden, "only %s (who asked for v%d) or an admin can use its buttons", displayName(owner), target)
		}
	}
	if t.Action == ActionUndo {
		return nil
	}
	flags := t.Flags
	if base := sess.Version(either(msg.Version, sess.Head)); base != nil && t.Action == ActionPrompt {
		flags = flags.Inherit(sess.Turn(base.Turn).Flags)
	}
	gen, name, err := e.provider(flags.Provider)
	if err != nil {
		return err
	}
	t.Provider = name
	// Button turns reuse a request that was checked when it was made; they
	// are checked again, complete, when they run.
	if c, ok := gen.(RequestChecker); ok && t.Action == ActionPrompt {
		return c.CheckRequest(GenerateRequest{Kind: KindGenerate, Prompt: t.Prompt, Flags: flags, Model: flags.Model, N: max(flags.N, 1)})
	}
	return nil
}

// provider returns the named Generator, or the default for "".
func (e *Engine) provider(name string) (Generator, string, error) {
	if name == "" {
		name = e.cfg.DefaultProvider
	}
	gen, ok := e.providers[name]
	if !ok {
		names := make([]string, 0, len(e.providers))
		for n := range e.providers {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, "", Errorf(Invalid, "--provider %s is not available here; configured providers: %v", name, names)
	}
	return gen, name, nil
}

// queueFull says that a session has active turns waiting, its most.
func queueFull(active int) error {
	return Errorf(Busy, "this thread already has %d requests waiting; try again when they finish", active)
}

// reserve counts one more turn in flight for userKey, or returns Busy.
func (e *Engine) reserve(userKey string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.vacancyLocked(userKey); err != nil {
		return err
	}
	e.inFlight[userKey]++
	return nil
}

// vacancy returns Busy if userKey could not have one more turn in flight
// now.
func (e *Engine) vacancy(userKey string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.vacancyLocked(userKey)
}

// vacancyLocked is vacancy with e.mu held.
func (e *Engine) vacancyLocked(userKey string) error {
	if e.closed {
		return Errorf(Busy, "Easel is shutting down; try again in a moment")
	}
	if n := e.inFlight[userKey]; n >= e.cfg.MaxPerUser {
		return Errorf(Busy, "you already have %d requests in progress; wait for one to finish", n)
	}
	return nil
}

func (e *Engine) release(userKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inFlight[userKey]--; e.inFlight[userKey] <= 0 {
		delete(e.inFlight, userKey)
	}
}

// lockThread serialises finding-or-creating the session of one thread.
func (e *Engine) lockThread(key string) (unlock func()) {
	e.mu.Lock()
	m := e.threads[key]
	if m == nil {
		m = &keyMutex{}
		e.threads[key] = m
	}
	m.refs++
	e.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		e.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(e.threads, key)
		}
		e.mu.Unlock()
	}
}

// startWorker makes sure a worker runs the queued turns of session id,
// reporting to th. It returns false if the engine is closed.
func (e *Engine) startWorker(id string, th Thread) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	if w := e.sessions[id]; w != nil {
		w.thread, w.more = th, true
		return true
	}
	w := &worker{thread: th}
	e.sessions[id] = w
	e.workers.Add(1)
	go e.work(id, w)
	return true
}

// work runs session id's active turns in order until none is left.
func (e *Engine) work(id string, w *worker) {
	defer e.workers.Done()
	for {
		e.mu.Lock()
		w.more = false
		th := w.thread
		e.mu.Unlock()

		ran, err := e.runNext(id, th)
		if err != nil {
			e.log.Error("session worker stopped", "session", id, "err", err)
		}
		if ran && err == nil && e.runCtx.Err() == nil {
			continue
		}
		e.mu.Lock()
		if w.more && err == nil && e.runCtx.Err() == nil {
			e.mu.Unlock()
			continue
		}
		delete(e.sessions, id)
		e.mu.Unlock()
		return
	}
}

// runNext posts the result of a turn that an earlier process ended but did
// not post, or else runs the oldest active turn of session id. It reports
// whether there was one.
func (e *Engine) runNext(id string, th Thread) (bool, error) {
	sess, err := e.store.Session(e.runCtx, id)
	if err != nil {
		return false, err
	}
	if posting := sess.PostingTurns(); len(posting) > 0 {
		return true, e.repost(sess, *sess.Turn(posting[0]), th)
	}
	active := sess.ActiveTurns()
	if len(active) == 0 {
		return false, nil
	}
	t := *sess.Turn(active[0])
	j := &job{sess: sess, turn: t, thread: th, userKey: sess.Platform + "\x00" + t.User.ID, started: e.now()}
	err = e.runTurn(j, len(active)-1)
	if !j.ended && e.runCtx.Err() == nil {
		e.release(j.userKey)
		e.releaseQuota(JobRef{SessionID: j.sess.ID, TurnID: j.turn.ID})
	}
	return true, err
}

// job is one turn being run, with what it resolved to.
type job struct {
	sess     *Session
	turn     Turn
	thread   Thread
	kind     TurnKind
	base     int // version whose image is the input (0: none)
	parent   int // parent of the outputs
	req      GenerateRequest
	gen      Generator
	userKey  string
	started  time.Time
	attempts int  // provider calls made by this run, retries included
	ended    bool // the turn reached a terminal state and released its user slot
}

// clockSkew is how far the platform's clock may be behind ours when a
// thread is searched for what an earlier process posted.
const clockSkew = time.Minute

// maxStarts bounds how often a turn is started: a turn that keeps being
// interrupted by crashes or stops fails rather than being paid for forever.
const maxStarts = 3

// runTurn runs turn t of sess to a terminal state. It returns an error only
// when the turn's state could not be recorded.
func (e *Engine) runTurn(j *job, behind int) error {
	sess, t, th := j.sess, j.turn, j.thread
	if t.Action == ActionUndo {
		return e.undo(j)
	}
	if err := e.plan(j); err != nil {
		return e.fail(j, err)
	}
	if t.Starts >= maxStarts {
		return e.fail(j, Errorf(Unavailable, "this request was interrupted %d times while Easel restarted, so it was stopped; ask again", t.Starts))
	}
	if err := e.acquire(j); err != nil {
		return e.interrupted(j, err)
	}
	defer e.global.Release(1)

	_, err := e.store.UpdateSession(e.runCtx, sess.ID, func(s *Session) error {
		st := s.Turn(t.ID)
		st.Status, st.StartedAt, st.Kind, st.Base, st.Provider = StatusRunning, j.started, j.kind, j.base, j.turn.Provider
		st.Prompt, st.Flags = j.turn.Prompt, j.turn.Flags
		st.Starts++
		return nil
	})
	if err != nil {
		return e.interrupted(j, err)
	}
	msg := fmt.Sprintf("🎨 rendering v%d with %s", len(sess.Versions)+1, j.turn.Provider)
	if behind > 0 {
		msg += fmt.Sprintf(" (%d more queued)", behind)
	}
	e.status(th, msg+"…")

	if err := e.loadInputs(j); err != nil {
		return e.fail(j, err)
	}
	ctx, cancel := context.WithTimeout(e.runCtx, e.cfg.TurnTimeout)
	defer cancel()
	if p, ok := th.(Previewer); ok {
		j.req.Progress = func(part Partial) {
			if err := p.Preview(ctx, part.Image); err != nil {
				e.log.Warn("preview failed", "session", sess.ID, "err", err)
			}
		}
	}
	recorded := false
	j.req.Attempt = func(n int) error {
		recorded = true
		_, err := e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
			s.Turn(t.ID).Attempts = t.Attempts + n
			return nil
		})
		if err != nil {
			return fmt.Errorf("engine: record attempt %d: %w", n, err)
		}
		j.attempts = n
		return nil
	}
	res, err := j.gen.Generate(ctx, j.req)
	if !recorded {
		j.attempts = max(res.Attempts, 1) // a provider without an API to call
	}
	switch {
	case e.runCtx.Err() != nil:
		return e.interrupted(j, err)
	case KindOf(err) == Internal && errors.Is(err, context.DeadlineExceeded):
		return e.fail(j, WrapError(Unavailable, err, "the image took longer than %s; try again, perhaps at a lower --quality", e.cfg.TurnTimeout))
	case err != nil:
		return e.fail(j, err)
	case len(res.Images) == 0:
		return e.fail(j, fmt.Errorf("provider %s returned no images", j.turn.Provider))
	}
	return e.finish(j, res)
}

// plan resolves what a turn does: its kind, base image, prompt history and
// the provider request.
func (e *Engine) plan(j *job) error {
	s, t := j.sess, &j.turn
	target := either(t.Target, s.Head)
	flags := t.Flags
	var inputs []ImageRef
	switch t.Action {
	case ActionPrompt:
		j.kind, j.base, j.parent = KindGenerate, target, target
		inputs = t.Inputs
		if target != 0 {
			j.kind = KindRefine
			if target != s.Head {
				j.kind = KindBranch
			}
			flags = flags.Inherit(s.Turn(s.Version(target).Turn).Flags)
		}
	case ActionRegenerate, ActionVariations:
		v := s.Version(target)
		if v == nil {
			return Errorf(Conflict, "there is no image to regenerate yet")
		}
		orig := s.Turn(v.Turn)
		j.kind, j.base, j.parent = KindRegenerate, orig.Base, v.Parent
		t.Prompt, inputs = orig.Prompt, orig.Inputs
		flags = orig.Flags
		flags.N = 1
		if t.Action == ActionVariations {
			j.kind, flags.N = KindVariations, either(t.Flags.N, e.cfg.Variations)
		}
	case ActionHighQuality:
		v := s.Version(target)
		if v == nil {
			return Errorf(Conflict, "there is no image to re-render yet")
		}
		j.kind, j.base, j.parent = KindHighQuality, v.N, v.N
		flags = s.Turn(v.Turn).Flags
		flags.Quality, flags.N, flags.Aspect = "high", 1, ""
		flags.Size = HighQualitySize(v.Image.Width, v.Image.Height)
	default:
		return Errorf(Invalid, "unknown action %q", t.Action)
	}
	gen, name, err := e.provider(flags.Provider)
	if err != nil {
		return err
	}
	t.Provider, t.Flags, t.Inputs = name, flags, inputs
	j.gen = gen
	j.req = GenerateRequest{
		Kind:    j.kind,
		Prompt:  t.Prompt,
		History: s.history(j.base),
		Flags:   flags,
		Model:   flags.Model,
		N:       max(flags.N, 1),
		Version: len(s.Versions) + 1,
		Parent:  j.parent,
	}
	if c, ok := gen.(RequestChecker); ok {
		return c.CheckRequest(j.req)
	}
	return nil
}

// history returns the prompts that led to version n, oldest first.
func (s *Session) history(n int) []string {
	var h []string
	for _, v := range s.Lineage(n) {
		if p := s.Turn(v.Turn).Prompt; p != "" && s.Turn(v.Turn).Kind != KindHighQuality {
			h = append(h, p)
		}
	}
	return h
}

// loadInputs reads the base image and attachments from the store.
func (e *Engine) loadInputs(j *job) error {
	if v := j.sess.Version(j.base); v != nil {
		img, err := e.store.Image(e.runCtx, v.Image)
		if err != nil {
			return fmt.Errorf("engine: load v%d: %w", v.N, err)
		}
		j.req.Base = &img
	}
	for _, ref := range j.turn.Inputs {
		img, err := e.store.Image(e.runCtx, ref)
		if err != nil {
			return fmt.Errorf("engine: load attachment: %w", err)
		}
		j.req.Inputs = append(j.req.Inputs, img)
	}
	return nil
}

// acquire waits for a global provider slot, telling the thread if it must wait.
func (e *Engine) acquire(j *job) error {
	if e.global.TryAcquire(1) {
		return nil
	}
	ahead := e.waiting.Add(1) - 1
	defer e.waiting.Add(-1)
	e.status(j.thread, fmt.Sprintf("⏳ waiting for a free renderer, %d ahead", ahead))
	return e.global.Acquire(e.runCtx, 1)
}

// finish stores the outputs, records the turn as done and posts the images.
func (e *Engine) finish(j *job, res Result) error {
	refs := make([]ImageRef, len(res.Images))
	for i, img := range res.Images {
		ref, err := e.store.PutImage(e.runCtx, img)
		if err != nil {
			return e.fail(j, fmt.Errorf("engine: store output: %w", err))
		}
		refs[i] = ref
	}
	sess, err := e.store.UpdateSession(e.runCtx, j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		t.Outputs = t.Outputs[:0]
		for _, ref := range refs {
			t.Outputs = append(t.Outputs, s.addVersion(j.parent, t.ID, ref))
		}
		s.Head = t.Outputs[0]
		t.Status, t.FinishedAt, t.Posting, t.Posted = StatusDone, e.now(), true, nil
		t.Model, t.Usage, t.CostUSD, t.Attempts = res.Model, res.Usage, res.CostUSD, j.turn.Attempts+j.attempts
		return nil
	})
	if err != nil {
		return e.interrupted(j, err)
	}
	images := map[int]Image{}
	for i, n := range sess.Turn(j.turn.ID).Outputs {
		images[n] = res.Images[i]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok := e.post(ctx, sess, j.turn.ID, j.thread, images, false)
	e.end(ctx, j, ok)
	return nil
}

// post posts the result of turn id of sess, which has ended, and records
// each post as it lands: the new images, the failure message or the undo
// note. images holds outputs already in memory; the rest are read from the
// store. With retry, an earlier process may have posted part of it, so the
// thread is asked to skip what it already shows. It reports whether the
// turn succeeded.
func (e *Engine) post(ctx context.Context, sess *Session, id int, th Thread, images map[int]Image, retry bool) bool {
	t := sess.Turn(id)
	since := t.StartedAt
	if since.IsZero() {
		since = t.QueuedAt
	}
	since = since.Add(-clockSkew)
	posted := func(n int) {
		_, err := e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
			st := s.Turn(id)
			if n != 0 {
				st.Posted = append(st.Posted, n)
			}
			st.Posting = n != 0 && len(st.Posted) < len(st.Outputs)
			return nil
		})
		if err != nil {
			// The post stays pending and is checked again on the next start.
			e.log.Error("recording a post failed", "session", sess.ID, "turn", id, "err", err)
		}
	}
	switch {
	case t.Status == StatusFailed:
		e.reply(ctx, sess, th, "❌ "+t.Error, since, retry)
		posted(0)
		return false
	case t.Kind == KindUndo:
		to := 0
		if v := sess.Version(t.Base); v != nil {
			to = v.Parent
		}
		e.reply(ctx, sess, th, fmt.Sprintf("↩️ back to v%d: the next reply refines it", to), since, retry)
		posted(0)
		return true
	}
	for _, n := range t.Outputs {
		if slices.Contains(t.Posted, n) {
			continue
		}
		v := sess.Version(n)
		img, ok := images[n]
		if !ok {
			var err error
			if img, err = e.store.Image(ctx, v.Image); err != nil {
				e.log.Error("post image failed: cannot read it", "session", sess.ID, "version", n, "err", err)
				posted(n)
				continue
			}
		}
		p := ImagePost{
			SessionID: sess.ID, Version: n, Image: img, Path: e.store.ImagePath(v.Image),
			Caption: Caption(sess, n), Buttons: Buttons, User: t.User, Retry: retry, Since: since,
		}
		if err := th.PostImage(ctx, p); err != nil {
			// Given up on (the adapters retry what can be retried); the
			// version stays in the session and its buttons elsewhere work.
			e.log.Error("post image failed", "session", sess.ID, "version", n, "err", err)
		}
		posted(n)
	}
	return true
}

// reply posts text in th unless, on a retry, th already shows it.
func (e *Engine) reply(ctx context.Context, sess *Session, th Thread, text string, since time.Time, retry bool) {
	if r, ok := th.(Resender); ok && retry {
		done, err := r.Posted(ctx, text, since)
		if err != nil {
			e.log.Warn("checking for an earlier reply failed; posting it", "session", sess.ID, "err", err)
		}
		if done {
			return
		}
	}
	if err := th.Reply(ctx, text); err != nil {
		e.log.Error("reply failed", "session", sess.ID, "err", err)
	}
}

// repost finishes posting turn t of sess, which an earlier process ended
// but stopped before posting all of its result.
func (e *Engine) repost(sess *Session, t Turn, th Thread) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.log.Info("posting the result of a turn an earlier process ended", "session", sess.ID, "turn", t.ID)
	ok := e.post(ctx, sess, t.ID, th, nil, true)
	e.status(th, "")
	if f, isF := th.(Finisher); isF {
		if err := f.Finish(ctx, t.Source, ok); err != nil {
			e.log.Warn("finish marker failed", "session", sess.ID, "err", err)
		}
	}
	return nil
}

// undo moves head to its parent; it costs nothing and calls no provider.
func (e *Engine) undo(j *job) error {
	sess, err := e.store.UpdateSession(e.runCtx, j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		v := s.Version(either(t.Target, s.Head))
		if v == nil || v.Parent == 0 {
			return Errorf(Conflict, "nothing to undo: this is the first image of the session")
		}
		s.Head = v.Parent
		t.Kind, t.Base, t.Status, t.StartedAt, t.FinishedAt = KindUndo, v.N, StatusDone, j.started, e.now()
		t.Posting = true
		return nil
	})
	if KindOf(err) == Conflict {
		return e.fail(j, err)
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.end(ctx, j, e.post(ctx, sess, j.turn.ID, j.thread, nil, false))
	return nil
}

// fail records the turn as failed and tells the thread why.
func (e *Engine) fail(j *job, cause error) error {
	ref := NewRef()
	msg := UserMessage(cause, ref)
	level := slog.LevelInfo
	if KindOf(cause) == Internal {
		level = slog.LevelError
	}
	e.log.Log(context.Background(), level, "turn failed", "ref", ref, "session", j.sess.ID, "turn", j.turn.ID,
		"kind", KindOf(cause), "err", cause)
	sess, err := e.store.UpdateSession(e.runCtx, j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		t.Status, t.FinishedAt, t.Error, t.Posting = StatusFailed, e.now(), msg, true
		t.Attempts = j.turn.Attempts + j.attempts
		if KindOf(cause) == Internal {
			t.ErrorRef = ref
		}
		if t.Kind == "" {
			t.Kind = j.kind
		}
		return nil
	})
	if err != nil {
		return e.interrupted(j, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.end(ctx, j, e.post(ctx, sess, j.turn.ID, j.thread, nil, false))
	return nil
}

// interrupted handles a turn that could not be completed because the engine is
// stopping or the store failed: the turn stays active and resumes on the next
// start. It returns cause when the engine is not stopping.
func (e *Engine) interrupted(j *job, cause error) error {
	if e.runCtx.Err() != nil {
		e.log.Info("turn interrupted by shutdown; it resumes on the next start", "session", j.sess.ID, "turn", j.turn.ID)
		return nil
	}
	return fmt.Errorf("turn %d: %w", j.turn.ID, cause)
}

// end releases the user's slot, clears the status line and marks the
// triggering message.
func (e *Engine) end(ctx context.Context, j *job, ok bool) {
	e.release(j.userKey)
	e.releaseQuota(JobRef{SessionID: j.sess.ID, TurnID: j.turn.ID})
	j.ended = true
	e.status(j.thread, "")
	if f, isF := j.thread.(Finisher); isF {
		if err := f.Finish(ctx, j.turn.Source, ok); err != nil {
			e.log.Warn("finish marker failed", "session", j.sess.ID, "err", err)
		}
	}
}

func (e *Engine) status(th Thread, text string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := th.SetStatus(ctx, text); err != nil {
		e.log.Warn("status update failed", "err", err)
	}
}

// Resume restarts the turns left queued or running by an earlier process.
// open returns the Thread of a session, or false to leave it alone (another
// platform's, say). It returns the number of sessions resumed.
func (e *Engine) Resume(ctx context.Context, open func(*Session) (Thread, bool)) (int, error) {
	jobs, err := e.store.ActiveJobs(ctx)
	if err != nil {
		return 0, fmt.Errorf("engine: list active jobs: %w", err)
	}
	started := map[string]bool{}
	for _, jr := range jobs {
		if started[jr.SessionID] {
			continue
		}
		sess, err := e.store.Session(ctx, jr.SessionID)
		if err != nil {
			return len(started), fmt.Errorf("engine: resume %s: %w", jr.SessionID, err)
		}
		th, ok := open(sess)
		if !ok {
			continue
		}
		for _, id := range sess.ActiveTurns() {
			e.mu.Lock()
			e.inFlight[sess.Platform+"\x00"+sess.Turn(id).User.ID]++
			e.mu.Unlock()
			e.resumeQuota(sess, id)
		}
		started[jr.SessionID] = e.startWorker(sess.ID, th)
	}
	return len(started), nil
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
