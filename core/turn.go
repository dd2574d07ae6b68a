package core

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"time"
)

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
	started  time.Time
	attempts int   // provider calls made by this run, retries included
	storeErr error // recording an attempt failed for good
	// region is the part of the base image a region edit may change, in
	// its pixels (empty for a whole-image turn); strict says the results
	// are composited onto the base inside it.
	region image.Rectangle
	strict bool
	// statusSet is closed once the status line set when the turn started
	// is shown; nil when none was set.
	statusSet <-chan struct{}
	// slot is whether the turn holds a provider slot: it lets go of one
	// it lost (see keepSlot) and failed to replace, and must not then
	// free another turn's.
	slot bool
	// slotAt is when the process last set out to confirm that it holds
	// its slots (see keepSlot); zero when it must before the next call.
	slotAt time.Time
}

// statusShown waits until the status line set when j started is shown, so
// that what follows it in the thread comes after it.
func (j *job) statusShown() {
	if j.statusSet != nil {
		<-j.statusSet
	}
}

// ref names the job's turn.
func (j *job) ref() JobRef { return JobRef{SessionID: j.sess.ID, TurnID: j.turn.ID} }

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
	if t.Action == ActionPick {
		return e.pick(j)
	}
	if err := e.plan(j); err != nil {
		return e.fail(j, err)
	}
	if t.Starts >= maxStarts {
		return e.fail(j, Errorf(Unavailable, "this request was interrupted %d times while Easel restarted, so it was stopped; ask again", t.Starts))
	}
	run, stop := e.track(j)
	defer e.untrack(j, stop)
	if err := e.acquire(run, j); err != nil {
		if wasCanceled(run, err) {
			return e.canceled(j, Result{})
		}
		return e.interrupted(j, err)
	}
	j.slot = true
	defer func() {
		if j.slot {
			e.limits.Providers.Release()
		}
	}()
	e.running.Add(1)
	defer e.running.Add(-1)

	err := e.update(e.runCtx, "record a turn's start", sess.ID, func(s *Session) error {
		st := s.Turn(t.ID)
		if err := stillLive(st); err != nil {
			return err
		}
		st.Status, st.StartedAt, st.Kind, st.Base, st.Provider = StatusRunning, j.started, j.kind, j.base, j.turn.Provider
		st.Prompt, st.Flags = j.turn.Prompt, j.turn.Flags
		st.Starts++
		// The first provider call is counted now, in the same commit, so
		// that recording it costs nothing more before it is sent (see
		// Attempt below); a run cut short before the call counts one
		// more than it made, never one less.
		st.Attempts = t.Attempts + 1
		return nil
	}, nil)
	if errors.Is(err, errCanceled) {
		return e.canceled(j, Result{})
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	line := fmt.Sprintf("🎨 rendering v%d with %s", len(sess.Versions)+1, j.turn.Provider)
	msg := line
	if behind > 0 {
		msg += fmt.Sprintf(" (%d more queued)", behind)
	}
	e.showLine(sess.ID, line)
	defer e.showLine(sess.ID, "")
	// The status line is posted while the provider works, not before.
	j.statusSet = e.statusAsync(th, msg+"…", cancelButtons(sess, j.ref()))
	defer j.statusShown() // whatever path the turn takes, nothing outlives it

	if err := e.loadInputs(j); err != nil {
		return e.fail(j, err)
	}
	ctx, cancel := context.WithTimeout(run, e.cfg.TurnTimeout)
	defer cancel()
	called := time.Now()
	if p, ok := th.(Previewer); ok {
		if l, ok := th.(PreviewLimiter); ok {
			j.req.Partials = max(l.Previews(), 1)
		}
		first := true
		j.req.Progress = func(part Partial) {
			if first { // Generate calls Progress from its calling goroutine
				first = false
				e.metrics.FirstPartial(j.turn.Provider, time.Since(called))
			}
			j.statusShown()
			if err := p.Preview(ctx, part.Image); err != nil {
				e.log.Warn("preview failed", "session", sess.ID, "err", err)
			}
		}
	}
	recorded := false
	j.req.Attempt = func(n int) error {
		recorded = true
		if wasCanceled(run, nil) {
			return errCanceled
		}
		if err := e.keepSlot(ctx, j); err != nil {
			return err
		}
		if n == 1 { // recorded with the turn's start
			j.attempts = 1
			return nil
		}
		err := e.update(ctx, "record a provider attempt", sess.ID, func(s *Session) error {
			if err := stillLive(s.Turn(t.ID)); err != nil {
				return err
			}
			s.Turn(t.ID).Attempts = t.Attempts + n
			return nil
		}, nil)
		if errors.Is(err, errCanceled) {
			stop(errCanceled) // asked from another process
			return err
		}
		if err != nil {
			j.storeErr = fmt.Errorf("engine: record attempt %d: %w", n, err)
			return j.storeErr
		}
		j.attempts = n
		return nil
	}
	watching, unwatch := context.WithCancel(ctx)
	go e.watchCancel(watching, j, stop)
	res, err := j.gen.Generate(withBeforeSend(ctx, func(ctx context.Context) error { return e.slotFresh(ctx, j) }), j.req)
	unwatch()
	e.metrics.ProviderCalled(j.turn.Provider, err != nil, time.Since(called))
	if !recorded {
		j.attempts = max(res.Attempts, 1) // a provider without an API to call
	}
	switch {
	case wasCanceled(run, err):
		return e.canceled(j, res)
	case e.runCtx.Err() != nil:
		return e.interrupted(j, err)
	case j.storeErr != nil:
		return e.interrupted(j, j.storeErr)
	case KindOf(err) == Internal && errors.Is(err, context.DeadlineExceeded):
		return e.fail(j, WrapError(Unavailable, err, "the image took longer than %s; try again, perhaps at a lower --quality", e.cfg.TurnTimeout))
	case err != nil:
		return e.fail(j, err)
	case len(res.Images) == 0 && res.Text != "":
		return e.answer(j, res)
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
	if err := s.live(target); err != nil {
		return err
	}
	flags := t.Flags
	var inputs []ImageRef
	from := t.ID // the turn whose place in the conversation this one takes
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
		j.kind, j.base, j.parent, from = KindRegenerate, orig.Base, v.Parent, orig.ID
		t.Prompt, inputs, t.Applied = orig.Prompt, orig.Inputs, orig.Applied
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
		flags.Region, flags.StrictRegion = "", nil // the whole image is re-rendered
		flags.Size = HighQualitySize(v.Image.Width, v.Image.Height)
	default:
		return Errorf(Invalid, "unknown action %q", t.Action)
	}
	if err := s.live(j.base); err != nil {
		return err
	}
	if flags.Region != "" && j.base == 0 {
		return errNoImageForRegion()
	}
	if flags.StrictRegion != nil && *flags.StrictRegion && flags.Region == "" {
		return errStrictWithoutRegion()
	}
	gen, name, err := e.provider(flags.Provider)
	if err != nil {
		return err
	}
	t.Provider, t.Flags, t.Inputs = name, flags, inputs
	j.gen = gen
	j.req = GenerateRequest{
		Kind:    j.kind,
		Prompt:  t.styledPrompt(),
		History: s.history(j.base),
		Flags:   flags,
		Model:   flags.Model,
		N:       max(flags.N, 1),
		Version: len(s.Versions) + 1,
		Parent:  j.parent,
	}
	j.req.PreviousResponseID, j.req.Conversation = s.continuation(j.base, from)
	if c, ok := gen.(RequestChecker); ok {
		return c.CheckRequest(j.req)
	}
	return nil
}

// history returns the prompts that led to version n, oldest first.
func (s *Session) history(n int) []string {
	var h []string
	for _, v := range s.Lineage(n) {
		if t := s.Turn(v.Turn); t.Prompt != "" && t.Kind != KindHighQuality {
			h = append(h, t.styledPrompt())
		}
	}
	return h
}

// styledPrompt returns the turn's prompt with the words of the style it
// used, as the provider is asked.
func (t *Turn) styledPrompt() string {
	if t.Applied == nil || t.Applied.StylePrompt == "" || t.Prompt == "" {
		return t.Prompt
	}
	return t.Prompt + ", " + t.Applied.StylePrompt
}

// loadInputs reads the base image and attachments from the store.
func (e *Engine) loadInputs(j *job) error {
	if v := j.sess.Version(j.base); v != nil {
		img, err := e.images.Get(e.runCtx, v.Image)
		if err != nil {
			return fmt.Errorf("engine: load v%d: %w", v.N, err)
		}
		j.req.Base = &img
		if err := e.regionMask(j, img); err != nil {
			return err
		}
	}
	for _, ref := range j.turn.Inputs {
		img, err := e.images.Get(e.runCtx, ref)
		if err != nil {
			return fmt.Errorf("engine: load attachment: %w", err)
		}
		j.req.Inputs = append(j.req.Inputs, img)
	}
	return nil
}

// acquire waits for a global provider slot, telling the thread if it must wait.
// It returns ctx's error if ctx ends first.
func (e *Engine) acquire(ctx context.Context, j *job) error {
	if ok, err := e.limits.Providers.TryAcquire(ctx); ok && err == nil {
		return nil
	}
	ahead := e.waiting.Add(1) - 1
	defer e.waiting.Add(-1)
	e.turnStatus(j.thread, fmt.Sprintf("⏳ waiting for a free renderer, %d ahead", ahead), cancelButtons(j.sess, j.ref()))
	return e.limits.Providers.Acquire(ctx)
}

// finish stores the outputs, records the turn as done and posts the images.
// A strict region edit stores each image as the provider made it and, shown
// as the version, composited onto the base.
func (e *Engine) finish(j *job, res Result) error {
	var originals []Image
	if j.strict {
		originals = res.Images
		shown := make([]Image, len(res.Images))
		for i, img := range res.Images {
			c, err := Composite(*j.req.Base, img, j.region)
			if err != nil {
				return e.fail(j, fmt.Errorf("engine: provider %s returned an image that cannot be composited: %w", j.turn.Provider, err))
			}
			shown[i] = c
		}
		res.Images = shown
	}
	origRefs := make([]ImageRef, len(originals))
	for i, img := range originals {
		err := e.retry(e.runCtx, "store an image", func(ctx context.Context) (err error) {
			origRefs[i], err = e.images.Put(ctx, img)
			return err
		})
		if KindOf(err) == Invalid {
			return e.fail(j, fmt.Errorf("engine: provider %s returned an image that cannot be stored: %w", j.turn.Provider, err))
		}
		if err != nil {
			return e.interrupted(j, err)
		}
	}
	refs := make([]ImageRef, len(res.Images))
	for i, img := range res.Images {
		err := e.retry(e.runCtx, "store an image", func(ctx context.Context) (err error) {
			refs[i], err = e.images.Put(ctx, img)
			return err
		})
		if KindOf(err) == Invalid {
			return e.fail(j, fmt.Errorf("engine: provider %s returned an image that cannot be stored: %w", j.turn.Provider, err))
		}
		if err != nil {
			return e.interrupted(j, err)
		}
	}
	var sess *Session
	err := e.update(e.runCtx, "record a finished turn", j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		if err := stillLive(t); err != nil {
			return err
		}
		t.Outputs = t.Outputs[:0]
		for i, ref := range refs {
			n := s.addVersion(j.parent, t.ID, ref)
			if i < len(res.Details) {
				s.Version(n).ResponseID, s.Version(n).RevisedPrompt = res.Details[i].ResponseID, res.Details[i].RevisedPrompt
			}
			if i < len(origRefs) {
				s.Version(n).Original = &origRefs[i]
			}
			t.Outputs = append(t.Outputs, n)
		}
		s.Head = t.Outputs[0]
		t.Grid = len(t.Outputs) > 1 && len(t.Outputs) <= maxGridCells
		t.Answer = res.Text
		t.Status, t.FinishedAt, t.Posting, t.Posted = StatusDone, e.now(), true, nil
		t.Model, t.Usage, t.CostUSD, t.Attempts = res.Model, res.Usage, res.CostUSD, j.turn.Attempts+j.attempts
		return nil
	}, &sess)
	if errors.Is(err, errCanceled) {
		return e.canceled(j, res) // nothing the call returned is kept
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	images := map[int]Image{}
	for i, n := range sess.Turn(j.turn.ID).Outputs {
		images[n] = res.Images[i]
	}
	return e.conclude(j, sess, images)
}

// undo moves head to its parent; it costs nothing and calls no provider.
func (e *Engine) undo(j *job) error {
	var sess *Session
	err := e.update(e.runCtx, "record an undo", j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		if err := stillLive(t); err != nil {
			return err
		}
		v := s.Version(either(t.Target, s.Head))
		if v == nil || v.Parent == 0 {
			return Errorf(Conflict, "nothing to undo: this is the first image of the session")
		}
		if err := s.live(v.Parent); err != nil {
			return Errorf(Conflict, "nothing to undo to: v%d, before v%d, was deleted", v.Parent, v.N)
		}
		s.Head = v.Parent
		t.Kind, t.Base, t.Status, t.StartedAt, t.FinishedAt = KindUndo, v.N, StatusDone, j.started, e.now()
		t.Posting = true
		return nil
	}, &sess)
	if errors.Is(err, errCanceled) {
		return e.canceled(j, Result{})
	}
	if KindOf(err) == Conflict && !errors.Is(err, ErrLeaseLost) {
		return e.fail(j, err)
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	return e.conclude(j, sess, nil)
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
	var sess *Session
	err := e.update(e.runCtx, "record a failed turn", j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		if err := stillLive(t); err != nil {
			return err
		}
		t.Status, t.FinishedAt, t.Error, t.Posting = StatusFailed, e.now(), msg, true
		t.Attempts = j.turn.Attempts + j.attempts
		if KindOf(cause) == Internal {
			t.ErrorRef = ref
		}
		if t.Kind == "" {
			t.Kind = j.kind
		}
		return nil
	}, &sess)
	if errors.Is(err, errCanceled) {
		return e.canceled(j, Result{})
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	return e.conclude(j, sess, nil)
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

// end releases what the turn held, clears the status line and marks the
// triggering message.
func (e *Engine) end(ctx context.Context, j *job, ok bool) {
	e.release(j.ref())
	j.statusShown()
	e.status(j.thread, "")
	if f, isF := j.thread.(Finisher); isF {
		if err := f.Finish(ctx, j.turn.Source, ok); err != nil {
			e.log.Warn("finish marker failed", "session", j.sess.ID, "err", err)
		}
	}
}

// keepSlot makes sure, before a provider call, that this process still
// holds the provider slot j took: one taken over while the process was
// frozen is replaced by another, waited for, so that the calls in flight
// stay within the cap. A store that cannot tell is trusted.
func (e *Engine) keepSlot(ctx context.Context, j *job) error {
	asked := time.Now() // the slot's lease, once renewed, runs at least from here
	err := e.limits.Providers.Keep(ctx)
	switch {
	case errors.Is(err, ErrLeaseLost):
		e.log.Info("a provider slot was taken over while this process was paused; waiting for another", "session", j.sess.ID)
		j.slot, j.slotAt = false, time.Time{}
		if err := e.limits.Providers.Acquire(ctx); err != nil {
			return err
		}
		j.slot = true
	case err != nil:
		e.log.Warn("checking the provider slot failed; calling the provider", "session", j.sess.ID, "err", err)
	default:
		j.slotAt = asked
	}
	return nil
}

// slotTrusted is how long after its last check a provider slot is trusted
// without another: well within the shortest lease a store gives it (3 s),
// so that a slot trusted cannot have run out and been taken over.
const slotTrusted = time.Second

// slotFresh checks j's provider slot again (see keepSlot) unless it was
// checked within slotTrusted. The provider runs it right before each
// request leaves, after the request is built: a process paused between
// its check before the attempt and the request's sending (longer than
// the slot's lease) would otherwise send it on a slot another process
// now holds.
func (e *Engine) slotFresh(ctx context.Context, j *job) error {
	if !j.slotAt.IsZero() && time.Since(j.slotAt) < slotTrusted {
		return nil
	}
	return e.keepSlot(ctx, j)
}
