package core

import (
	"maps"
	"slices"
	"time"
)

// Effects are what storing a changed session changes beside the session
// itself. Core decides them (see EffectsOf); a SessionStore applies them in the
// same transaction as the session and decides nothing, so that every
// backend keeps the same index, counters and inbox.
type Effects struct {
	// Jobs are the job records to write: one for each turn that is new or
	// whose status, attempts or posting state changed.
	Jobs []Job
	// Dropped are turns that are no longer in the session; their job
	// records leave the pending index.
	Dropped []JobRef
	// Usage are the amounts to add to usage counters: a turn that has just
	// become done, or canceled after the provider charged for it, counts
	// once under its user's day and its workspace's month.
	Usage []UsageAdd
	// Handled are the inbox keys of deliveries handled now: each new turn
	// handles the delivery that asked for it.
	Handled []string
	// Ended are the turns that left the queued or running state (done,
	// failed or canceled) or were dropped. A store that keeps quota holds durably
	// releases theirs in the same transaction; usage already counts them.
	Ended []JobRef
}

// Job is the job index's record of one turn: what the engine needs to find
// and resume pending work without reading every session.
type Job struct {
	Ref      JobRef
	Status   TurnStatus
	Kind     TurnKind
	User     string // the user id of the turn's author
	Attempts int
	// Pending is set while the turn has work left (see Turn.Pending); only
	// pending jobs are returned by SessionStore.ActiveJobs.
	Pending  bool
	QueuedAt time.Time
}

// UsageAdd is an amount to add to the usage counter under Key (see
// UserDayKey and WorkspaceMonthKey).
type UsageAdd struct {
	Key     string
	Turns   int64
	Images  int64
	CostUSD float64
}

// EffectsOf returns the effects of storing after, which was before (nil for
// a session being created). now stands in for a turn's missing QueuedAt and
// dates the usage of a done turn without a FinishedAt. It is a pure
// function: it reads both sessions and changes neither.
func EffectsOf(before, after *Session, now time.Time) Effects {
	var fx Effects
	old := map[int]*Turn{}
	if before != nil {
		for i := range before.Turns {
			old[before.Turns[i].ID] = &before.Turns[i]
		}
	}
	for i := range after.Turns {
		t := &after.Turns[i]
		prev := old[t.ID]
		delete(old, t.ID)
		ref := JobRef{SessionID: after.ID, TurnID: t.ID}
		if prev == nil && t.Delivery != "" {
			fx.Handled = append(fx.Handled, t.Delivery)
		}
		if prev != nil && prev.Status == t.Status && prev.Attempts == t.Attempts && prev.Posting == t.Posting {
			continue
		}
		queued := t.QueuedAt
		if queued.IsZero() {
			queued = now
		}
		fx.Jobs = append(fx.Jobs, Job{Ref: ref, Status: t.Status, Kind: t.Kind, User: t.User.ID, Attempts: t.Attempts,
			Pending: t.Pending(), QueuedAt: queued})
		wasActive := prev == nil || prev.Status.Active()
		if wasActive && !t.Status.Active() {
			fx.Ended = append(fx.Ended, ref)
		}
		if counts(t) && (prev == nil || !counts(prev)) {
			fx.Usage = append(fx.Usage, usageOf(after, t, now)...)
		}
	}
	for user, c := range after.Regions {
		// Recording a region chosen from a menu handles the delivery that
		// chose it, so that a restart cannot choose it again after the
		// reply that used it up.
		if c.Delivery != "" && (before == nil || before.Regions[user] != c) {
			fx.Handled = append(fx.Handled, c.Delivery)
		}
	}
	gone := make([]int, 0, len(old))
	for id := range old {
		gone = append(gone, id)
	}
	slices.Sort(gone)
	for _, id := range gone {
		ref := JobRef{SessionID: after.ID, TurnID: id}
		fx.Dropped = append(fx.Dropped, ref)
		if old[id].Status.Active() {
			fx.Ended = append(fx.Ended, ref)
		}
	}
	return fx
}

// counts reports whether turn t counts against the quotas: it is done, or
// it was canceled during a provider call the provider says it charged for.
func counts(t *Turn) bool {
	return t.Status == StatusDone || t.Status == StatusCanceled && t.CostUSD > 0
}

// usageOf returns what done turn t of s adds to its user's daily and its
// workspace's monthly counters, dated by its FinishedAt (or now).
func usageOf(s *Session, t *Turn, now time.Time) []UsageAdd {
	at := t.FinishedAt
	if at.IsZero() {
		at = now
	}
	images := int64(len(t.Outputs))
	return []UsageAdd{
		{Key: UserDayKey(s.Platform, t.User.ID, at), Turns: 1, Images: images, CostUSD: t.CostUSD},
		{Key: WorkspaceMonthKey(s.Platform, s.Workspace, at), Turns: 1, Images: images, CostUSD: t.CostUSD},
	}
}

// Clone returns a deep copy of s, for a store to keep the state before an
// update while the update changes s.
func (s *Session) Clone() *Session {
	c := *s
	c.Versions = slices.Clone(s.Versions)
	for i := range c.Versions {
		if o := c.Versions[i].Original; o != nil {
			orig := *o
			c.Versions[i].Original = &orig
		}
		if d := c.Versions[i].Deleted; d != nil {
			del := *d
			c.Versions[i].Deleted = &del
		}
	}
	c.Turns = slices.Clone(s.Turns)
	for i := range c.Turns {
		t := &c.Turns[i]
		t.Inputs, t.Outputs, t.Posted = slices.Clone(t.Inputs), slices.Clone(t.Outputs), slices.Clone(t.Posted)
		if t.Cancel != nil {
			c := *t.Cancel
			t.Cancel = &c
		}
		if t.Flags.Seed != nil {
			seed := *t.Flags.Seed
			t.Flags.Seed = &seed
		}
		if t.Flags.StrictRegion != nil {
			strict := *t.Flags.StrictRegion
			t.Flags.StrictRegion = &strict
		}
	}
	c.Regions = maps.Clone(s.Regions)
	return &c
}
