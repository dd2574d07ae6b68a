package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

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
	q, sess, err := e.record(ctx, msg, turn)
	for tries := 1; errors.Is(err, errTurnTaken) && tries < maxRecordTries; tries++ {
		q, sess, err = e.record(ctx, msg, turn) // with the session read again
	}
	if err != nil {
		return Queued{}, err
	}
	if q.Position > 0 {
		text, buttons := e.queuedStatus(sess, q)
		e.turnStatus(th, text, buttons)
	}
	if !e.startWorker(ctx, sess, th, q.Position > 0) {
		// Closed while we were recording: the turn stays queued for the next start.
		e.release(JobRef{SessionID: q.SessionID, TurnID: q.TurnID})
	}
	return q, nil
}

// queuedStatus returns the status line shown when turn q is queued behind
// others in sess: the line of the turn this engine runs there, with the
// length of the queue, or else q's position; with a Cancel button for the
// turn in progress and each one queued.
func (e *Engine) queuedStatus(sess *Session, q Queued) (string, []CancelButton) {
	active := sess.ActiveTurns()
	buttons := cancelButtons(sess, JobRef{SessionID: sess.ID, TurnID: active[0]})
	e.mu.Lock()
	var line string
	if w := e.sessions[sess.ID]; w != nil {
		line = w.line
	}
	e.mu.Unlock()
	if line != "" {
		return fmt.Sprintf("%s (%d more queued)…", line, len(active)-1), buttons
	}
	return fmt.Sprintf("⏳ queued, position %d in this thread", q.Position), buttons
}

// Check reports what Handle would say about msg now, without recording or
// holding anything: access, the prompt and its flags against the limits,
// the provider's own checks of the request, the sender's turns in flight,
// the quotas and the session's queue. It returns nil, the *Error Handle
// would return, or an error reading the store. Adapters call it before they
// post anything public for a message, so that a refused one leaves no
// trace but a private note; nil is no promise, since other turns may take
// the last slot before Handle runs.
func (e *Engine) Check(ctx context.Context, msg Message) error {
	msg, turn, err := e.prepare(msg)
	if err != nil {
		return err
	}
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return err
	}
	if err := e.applyStyle(ctx, sess, &turn, msg); err != nil {
		return err
	}
	if err := e.admit(sess, &turn, msg); err != nil {
		return err
	}
	if err := e.vacancy(ctx, msg.Platform+"\x00"+msg.User.ID); err != nil {
		return err
	}
	if _, err := e.reserveQuota(ctx, JobRef{}, sess, turn, msg, false); err != nil {
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

// queueFull says that a session has active turns waiting, its most.
func queueFull(active int) error {
	return Errorf(Busy, "this thread already has %d requests waiting; try again when they finish", active)
}

// Allowed reports whether msg's sender may use Easel where msg was sent:
// nil, or a Forbidden *Error whose message tells the sender why (see
// Access.Check). Users in the engine's admins count as admins. It does no
// I/O, so adapters call it before anything costly, such as downloading
// attachments or posting a message. A refusal is counted (see Metrics).
func (e *Engine) Allowed(msg Message) error {
	msg.User.Admin = msg.User.Admin || slices.Contains(e.cfg.Admins, msg.User.ID)
	reason, err := e.cfg.Access.check(msg)
	if err != nil {
		e.metrics.AccessRefused(reason)
	}
	return err
}

// record admits turn, reserves what it holds (see reserve) and stores it as
// queued in msg's session, creating the session if needed. It returns where
// the turn stands and the session as stored. On error nothing is held and no
// turn is recorded; a store that fails gives an Unavailable *Error.
func (e *Engine) record(ctx context.Context, msg Message, turn Turn) (q Queued, stored *Session, err error) {
	unlock := e.lockThread(msg.Platform + "\x00" + msg.Thread)
	defer unlock()
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return Queued{}, nil, err
	}
	if err := e.applyStyle(ctx, sess, &turn, msg); err != nil {
		return Queued{}, nil, err
	}
	if err := e.admit(sess, &turn, msg); err != nil {
		return Queued{}, nil, err
	}
	// Only record appends turns, under the thread's lock, so the new turn's
	// id is known before it is stored and what it holds is bound to it from
	// the start: its worker may end it before record returns. Another
	// process sharing the store may append one meanwhile: then the update
	// is refused (errTurnTaken), and Handle records the turn again.
	ref := JobRef{SessionID: sess.ID, TurnID: len(sess.Turns) + 1}
	if sess.ID == "" {
		ref = JobRef{SessionID: NewSessionID(), TurnID: 1}
	}
	if err := e.reserve(ctx, ref, sess, turn, msg); err != nil {
		return Queued{}, nil, err
	}
	defer func() {
		if err != nil {
			e.release(ref)
			if KindOf(err) == Internal && !errors.Is(err, errTurnTaken) {
				e.log.Error("recording a request failed", "session", ref.SessionID, "err", err)
				err = WrapError(Unavailable, err, "Easel can't save new requests right now; try again in a few minutes")
			}
		}
	}()
	for _, in := range msg.Inputs {
		img, err := e.images.Put(ctx, in)
		if err != nil {
			return Queued{}, nil, fmt.Errorf("engine: store attachment: %w", err)
		}
		turn.Inputs = append(turn.Inputs, img)
	}
	if sess.ID == "" {
		// A new session is stored with its first turn, in one commit: a
		// turn the store refuses (its delivery is another's) leaves no
		// empty session behind.
		turn.ID, turn.QueuedAt = ref.TurnID, e.now()
		sess = &Session{
			ID: ref.SessionID, Platform: msg.Platform, Workspace: msg.Workspace, Channel: msg.Channel,
			Thread: msg.Thread, CreatedBy: msg.User, CreatedAt: turn.QueuedAt, Turns: []Turn{turn},
		}
		if err := e.store.CreateSession(ctx, sess); err != nil {
			return Queued{}, nil, fmt.Errorf("engine: create session: %w", err)
		}
		return Queued{SessionID: sess.ID, TurnID: turn.ID}, sess, nil
	}
	stored, err = e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
		active := len(s.ActiveTurns())
		if active >= e.cfg.MaxQueue {
			return queueFull(active)
		}
		if len(s.Turns)+1 != ref.TurnID {
			return errTurnTaken // by another process sharing the store
		}
		turn.ID, turn.QueuedAt = ref.TurnID, e.now()
		s.Turns = append(s.Turns, turn)
		if turn.Action == ActionPrompt {
			delete(s.Regions, turn.User.ID) // a region chosen from a menu is for one prompt
		}
		q = Queued{SessionID: s.ID, TurnID: turn.ID, Position: active}
		return nil
	})
	if err != nil {
		return Queued{}, nil, err
	}
	return q, stored, nil
}

// errTurnTaken is record's error when another process sharing the store
// recorded a turn in the session since it was read, taking the new turn's
// id: Handle records the turn again, with the session read again.
var errTurnTaken = errors.New("engine: another process recorded a turn in this session meanwhile")

// maxRecordTries bounds how often Handle records a turn whose id another
// process took meanwhile.
const maxRecordTries = 10

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
	case KindOf(err) == NotFound && (msg.Action == ActionPrompt || msg.Action == ActionDescribe) && msg.SessionID == "":
		return &Session{}, nil
	case KindOf(err) == NotFound:
		return nil, Errorf(NotFound, "this thread has no Easel session; start one with a prompt")
	case err != nil:
		return nil, fmt.Errorf("engine: find session: %w", err)
	}
	if msg.SessionID != "" && msg.SessionID != sess.ID {
		// A button from an earlier session of this thread (after "new").
		sess, err = e.store.Session(ctx, msg.SessionID)
		if err != nil && KindOf(err) != NotFound {
			return nil, err
		}
		if err != nil || sess.Platform != msg.Platform || sess.Thread != msg.Thread {
			return nil, Errorf(NotFound, "that button belongs to no Easel session of this thread")
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
	pendingRegion(sess, t)
	if err := sess.live(either(t.Target, sess.Head)); err != nil {
		return err
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
	if t.Action == ActionPick {
		return pickable(sess, msg.Grid, msg.Version)
	}
	if t.Action == ActionUndo {
		return nil
	}
	flags := t.Flags
	if base := sess.Version(either(t.Target, sess.Head)); base != nil && t.Action == ActionPrompt {
		flags = flags.Inherit(sess.Turn(base.Turn).Flags)
	}
	if t.Action == ActionPrompt {
		if flags.StrictRegion != nil && *flags.StrictRegion && flags.Region == "" {
			return errStrictWithoutRegion()
		}
		base := sess.Version(either(t.Target, sess.Head))
		if flags.Region != "" && base == nil && len(sess.ActiveTurns()) == 0 {
			return errNoImageForRegion()
		}
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

type keyMutex struct {
	sync.Mutex
	refs int
}
