package core

import (
	"slices"
	"testing"
	"time"
)

func TestEffectsOf(t *testing.T) {
	now := time.Date(2026, 3, 4, 23, 30, 0, 0, time.UTC)
	finished := time.Date(2026, 3, 5, 0, 10, 0, 0, time.UTC) // the next UTC day
	ana := User{ID: "U1"}
	s := &Session{ID: "s", Platform: "chat", Workspace: "T1"}

	// A new queued turn: indexed as pending, its delivery handled.
	s.Turns = []Turn{{ID: 1, User: ana, Status: StatusQueued, Delivery: "ev1"}}
	fx := EffectsOf(nil, s, now)
	if want := (Job{Ref: JobRef{"s", 1}, Status: StatusQueued, User: "U1", Pending: true, QueuedAt: now}); len(fx.Jobs) != 1 || fx.Jobs[0] != want {
		t.Errorf("new turn jobs %+v, want %+v", fx.Jobs, want)
	}
	if !slices.Equal(fx.Handled, []string{"ev1"}) || len(fx.Usage) != 0 || len(fx.Ended) != 0 {
		t.Errorf("new turn: handled %v usage %v ended %v", fx.Handled, fx.Usage, fx.Ended)
	}

	// Nothing changed: nothing to do, and the delivery is not handled twice.
	before := s.Clone()
	if fx := EffectsOf(before, s, now); len(fx.Jobs)+len(fx.Handled)+len(fx.Usage)+len(fx.Ended)+len(fx.Dropped) != 0 {
		t.Errorf("an unchanged session has effects %+v", fx)
	}

	// Done with two images, not yet posted: still pending, counted once
	// under the day and month it finished.
	s.Turns[0].Status, s.Turns[0].Posting, s.Turns[0].Outputs = StatusDone, true, []int{1, 2}
	s.Turns[0].CostUSD, s.Turns[0].FinishedAt = 0.5, finished
	fx = EffectsOf(before, s, now)
	want := []UsageAdd{{Key: "user/chat/U1/2026-03-05", Turns: 1, Images: 2, CostUSD: 0.5}, {Key: "workspace/chat/T1/2026-03", Turns: 1, Images: 2, CostUSD: 0.5}}
	if !slices.Equal(fx.Usage, want) || !slices.Equal(fx.Ended, []JobRef{{"s", 1}}) || len(fx.Jobs) != 1 || !fx.Jobs[0].Pending {
		t.Errorf("done turn: usage %v ended %v jobs %+v", fx.Usage, fx.Ended, fx.Jobs)
	}

	// Posted: no longer pending, not counted again, not ended again.
	before = s.Clone()
	s.Turns[0].Posting = false
	fx = EffectsOf(before, s, now)
	if len(fx.Usage) != 0 || len(fx.Ended) != 0 || len(fx.Jobs) != 1 || fx.Jobs[0].Pending {
		t.Errorf("posted turn: usage %v ended %v jobs %+v", fx.Usage, fx.Ended, fx.Jobs)
	}

	// A failed turn ends and counts nothing; an attempt alone rewrites the job.
	before = s.Clone()
	s.Turns = append(s.Turns, Turn{ID: 2, User: ana, Status: StatusRunning, QueuedAt: now})
	mid := s.Clone()
	s.Turns[1].Attempts = 1
	if fx := EffectsOf(mid, s, now); len(fx.Jobs) != 1 || fx.Jobs[0].Attempts != 1 || len(fx.Ended) != 0 {
		t.Errorf("an attempt: %+v", fx)
	}
	s.Turns[1].Status, s.Turns[1].Posting = StatusFailed, true
	if fx := EffectsOf(before, s, now); len(fx.Usage) != 0 || !slices.Equal(fx.Ended, []JobRef{{"s", 2}}) {
		t.Errorf("failed turn: usage %v ended %v", fx.Usage, fx.Ended)
	}

	// A turn gone from the session leaves the index.
	gone := &Session{ID: "s", Turns: s.Turns[:1]}
	running := s.Clone()
	running.Turns[1].Status = StatusRunning
	if fx := EffectsOf(running, gone, now); !slices.Equal(fx.Dropped, []JobRef{{"s", 2}}) || !slices.Equal(fx.Ended, []JobRef{{"s", 2}}) {
		t.Errorf("dropped turn: dropped %v ended %v", fx.Dropped, fx.Ended)
	}
}

func TestCloneIsDeep(t *testing.T) {
	seed := int64(7)
	s := &Session{ID: "s", Versions: []Version{{N: 1}}, Turns: []Turn{{ID: 1, Outputs: []int{1}, Posted: []int{1},
		Inputs: []ImageRef{{SHA256: "a"}}, Flags: Flags{Seed: &seed}}}}
	c := s.Clone()
	c.Turns[0].Outputs[0], c.Turns[0].Posted[0], c.Turns[0].Inputs[0].SHA256, *c.Turns[0].Flags.Seed = 9, 9, "b", 9
	c.Versions[0].N, c.Turns[0].Status = 9, StatusDone
	if t0 := s.Turns[0]; t0.Outputs[0] != 1 || t0.Posted[0] != 1 || t0.Inputs[0].SHA256 != "a" || *t0.Flags.Seed != 7 || s.Versions[0].N != 1 || t0.Status != "" {
		t.Errorf("changing the clone changed the original: %+v", s)
	}
}

// TestRegionChoiceEffects: recording a region chosen from a menu handles
// the delivery that chose it, once; Clone copies the choices, a
// composited version's original and --strict-region deeply.
func TestRegionChoiceEffects(t *testing.T) {
	strict := true
	s := &Session{ID: "s", Versions: []Version{{N: 1, Original: &ImageRef{SHA256: "o"}}},
		Turns: []Turn{{ID: 1, Flags: Flags{StrictRegion: &strict}}}}
	before := s.Clone()
	s.Regions = map[string]RegionChoice{"U1": {Version: 1, Region: "top", Delivery: "slack:abc"}}
	if fx := EffectsOf(before, s, time.Now()); !slices.Equal(fx.Handled, []string{"slack:abc"}) {
		t.Errorf("handled %v, want the choice's delivery", fx.Handled)
	}
	again := s.Clone()
	if fx := EffectsOf(s, again, time.Now()); len(fx.Handled) != 0 {
		t.Errorf("an unchanged choice handled %v again", fx.Handled)
	}
	again.Regions["U1"] = RegionChoice{Region: "left"}
	*again.Versions[0].Original = ImageRef{SHA256: "x"}
	*again.Turns[0].Flags.StrictRegion = false
	if s.Regions["U1"].Region != "top" || s.Versions[0].Original.SHA256 != "o" || !*s.Turns[0].Flags.StrictRegion {
		t.Errorf("changing the clone changed the original: %+v", s)
	}
}
