package core

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRequestCancel(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	ana, bob := User{ID: "U1", Name: "ana"}, User{ID: "U2", Name: "bob"}
	admin := User{ID: "U3", Name: "root", Admin: true}
	for _, c := range []struct {
		name   string
		status TurnStatus
		asked  bool // a cancel is recorded already
		by     User
		kind   ErrorKind // "" for success
		after  TurnStatus
	}{
		{"queued by requester", StatusQueued, false, ana, "", StatusCanceled},
		{"running by requester", StatusRunning, false, ana, "", StatusRunning},
		{"running by admin", StatusRunning, false, admin, "", StatusRunning},
		{"by someone else", StatusRunning, false, bob, Forbidden, StatusRunning},
		{"done", StatusDone, false, ana, Conflict, StatusDone},
		{"failed", StatusFailed, false, ana, Conflict, StatusFailed},
		{"canceled", StatusCanceled, true, ana, Conflict, StatusCanceled},
		{"being canceled", StatusRunning, true, ana, Conflict, StatusRunning},
	} {
		t.Run(c.name, func(t *testing.T) {
			tu := &Turn{ID: 1, User: ana, Status: c.status}
			if c.asked {
				tu.Cancel = &CancelRequest{By: ana, At: now.Add(-time.Minute)}
			}
			before := *tu
			err := requestCancel(tu, c.by, now)
			if KindOf(err) != c.kind && !(c.kind == "" && err == nil) {
				t.Fatalf("error %v, want kind %q", err, c.kind)
			}
			if tu.Status != c.after {
				t.Errorf("status %s, want %s", tu.Status, c.after)
			}
			if err != nil && (tu.Cancel != before.Cancel || tu.Posting != before.Posting) {
				t.Errorf("a refused cancel changed the turn: %+v", tu)
			}
			if err == nil && (tu.Cancel == nil || tu.Cancel.By.ID != c.by.ID || tu.Cancel.By.Admin || !tu.Cancel.At.Equal(now)) {
				t.Errorf("cancel request %+v", tu.Cancel)
			}
			if err == nil && tu.Posting != (c.after == StatusCanceled) {
				t.Errorf("posting %v for a turn now %s", tu.Posting, tu.Status)
			}
		})
	}
}

func TestCancelable(t *testing.T) {
	ana, bob := User{ID: "U1"}, User{ID: "U2"}
	s := &Session{Turns: []Turn{
		{ID: 1, User: ana, Status: StatusDone},
		{ID: 2, User: ana, Status: StatusRunning},
		{ID: 3, User: bob, Status: StatusQueued},
		{ID: 4, User: ana, Status: StatusQueued},
		{ID: 5, User: ana, Status: StatusRunning, Cancel: &CancelRequest{By: ana}},
	}}
	if ids, err := cancelable(s, ana, 0); err != nil || !slices.Equal(ids, []int{2, 4}) {
		t.Errorf("ana's turns in progress: %v, %v", ids, err)
	}
	if ids, err := cancelable(s, bob, 3); err != nil || !slices.Equal(ids, []int{3}) {
		t.Errorf("turn 3: %v, %v", ids, err)
	}
	if _, err := cancelable(s, ana, 6); KindOf(err) != NotFound {
		t.Errorf("turn 6: %v", err)
	}
	if _, err := cancelable(s, User{ID: "U9"}, 0); KindOf(err) != NotFound {
		t.Errorf("nothing in progress: %v", err)
	}
}

func TestEffectsOfCanceledTurn(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	s := &Session{ID: "s", Platform: "chat", Workspace: "T1", Turns: []Turn{{ID: 1, User: User{ID: "U1"}, Status: StatusRunning, QueuedAt: now}}}
	before := s.Clone()
	s.Turns[0].Status, s.Turns[0].Posting, s.Turns[0].FinishedAt = StatusCanceled, true, now
	fx := EffectsOf(before, s, now)
	if len(fx.Usage) != 0 || !slices.Equal(fx.Ended, []JobRef{{"s", 1}}) || !fx.Jobs[0].Pending {
		t.Errorf("canceled before any charge: usage %v ended %v jobs %+v", fx.Usage, fx.Ended, fx.Jobs)
	}
	s.Turns[0].CostUSD = 0.02
	fx = EffectsOf(before, s, now)
	want := []UsageAdd{{Key: "user/chat/U1/2026-03-04", Turns: 1, CostUSD: 0.02}, {Key: "workspace/chat/T1/2026-03", Turns: 1, CostUSD: 0.02}}
	if !slices.Equal(fx.Usage, want) {
		t.Errorf("canceled after a charge: usage %v, want %v", fx.Usage, want)
	}
	charged := s.Clone()
	s.Turns[0].Posting = false
	if fx := EffectsOf(charged, s, now); len(fx.Usage) != 0 || len(fx.Ended) != 0 {
		t.Errorf("posting the note counted again: %+v", fx)
	}
}

func TestWriteTurnsSaysWhoCanceled(t *testing.T) {
	s := &Session{Turns: []Turn{{ID: 1, Kind: KindGenerate, User: User{ID: "U1", Name: "ana"}, Status: StatusCanceled,
		Cancel: &CancelRequest{By: User{ID: "U3", Name: "root"}}}}}
	var b strings.Builder
	if err := WriteTurns(&b, s); err != nil || !strings.Contains(b.String(), "by ana · canceled by root") {
		t.Errorf("WriteTurns wrote %q, %v", b.String(), err)
	}
}

func TestDeleteVersionMovesHead(t *testing.T) {
	ana, bob := User{ID: "U1", Name: "ana"}, User{ID: "U2"}
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	s := &Session{Head: 3, Turns: []Turn{{ID: 1, User: ana}, {ID: 2, User: ana}, {ID: 3, User: ana}},
		Versions: []Version{{N: 1, Turn: 1}, {N: 2, Parent: 1, Turn: 2}, {N: 3, Parent: 2, Turn: 3}}}
	if err := deleteVersion(s, 3, bob, now); KindOf(err) != Forbidden || s.Version(3).Deleted != nil {
		t.Fatalf("bob's delete: %v", err)
	}
	if err := deleteVersion(s, 2, ana, now); err != nil || s.Head != 3 {
		t.Fatalf("deleting v2 under head: %v, head v%d", err, s.Head)
	}
	if err := deleteVersion(s, 3, User{ID: "U9", Admin: true}, now); err != nil || s.Head != 1 {
		t.Fatalf("an admin deleting head v3 (parent v2 deleted): %v, head v%d", err, s.Head)
	}
	if err := deleteVersion(s, 1, ana, now); err != nil || s.Head != 0 {
		t.Fatalf("deleting the root: %v, head v%d", err, s.Head)
	}
	if err := deleteVersion(s, 1, ana, now); KindOf(err) != Conflict {
		t.Errorf("deleting twice: %v", err)
	}
	if err := deleteVersion(s, 4, ana, now); KindOf(err) != NotFound {
		t.Errorf("deleting v4: %v", err)
	}
	if d := s.Version(3).Deleted; d == nil || d.By.ID != "U9" || d.By.Admin || !d.At.Equal(now) {
		t.Errorf("v3's deletion %+v", d)
	}
}

func TestImageUsed(t *testing.T) {
	ref := func(h string) ImageRef { return ImageRef{SHA256: h} }
	orig := ref("o")
	sessions := []*Session{
		{Versions: []Version{{N: 1, Image: ref("a")}, {N: 2, Image: ref("b"), Deleted: &Deletion{}}, {N: 3, Image: ref("c"), Original: &orig}}},
		{Turns: []Turn{{ID: 1, Inputs: []ImageRef{ref("i")}}}},
	}
	for hash, want := range map[string]bool{"a": true, "b": false, "c": true, "o": true, "i": true, "z": false} {
		if got := imageUsed(sessions, hash); got != want {
			t.Errorf("imageUsed(%q) = %v, want %v", hash, got, want)
		}
	}
}
