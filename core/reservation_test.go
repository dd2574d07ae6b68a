package core

import (
	"context"
	"testing"
)

// A reservation is one thing: its slot and its quota hold go together, once,
// whichever path ends the turn and however often it is released.
func TestReservationReleasesSlotAndHoldOnce(t *testing.T) {
	e, err := NewEngine(EngineConfig{DefaultProvider: "p", MaxPerUser: 2, Quotas: Quotas{ImagesPerUserDay: 5}},
		usageOnly{}, nil, map[string]Generator{"p": fixedCost{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg := Message{Platform: "test", User: User{ID: "U1"}, Source: "m1"}
	sess := &Session{}
	turn := Turn{Action: ActionPrompt, User: msg.User, Flags: Flags{N: 2}}
	a, b, c := JobRef{SessionID: "s", TurnID: 1}, JobRef{SessionID: "s", TurnID: 2}, JobRef{SessionID: "s", TurnID: 3}
	if err := e.reserve(ctx, a, sess, turn, msg); err != nil {
		t.Fatal(err)
	}
	if err := e.reserve(ctx, b, sess, turn, msg); err != nil {
		t.Fatal(err)
	}
	if err := e.reserve(ctx, c, sess, turn, msg); KindOf(err) != Busy {
		t.Fatalf("a third turn with max_per_user 2: %v, want Busy", err)
	}
	images := func() int64 { n, _, _ := e.limits.Holds.Held(ctx, "test\x00U1", ""); return n }
	slots := func() int { n, _ := e.limits.Users.Count(ctx, "test\x00U1"); return n }
	if got := images(); got != 4 {
		t.Fatalf("held images %d, want 4", got)
	}
	e.release(a)
	e.release(a) // a second release of the same turn frees nothing more
	if got, n := images(), slots(); got != 2 || n != 1 {
		t.Fatalf("after releasing one turn twice: %d images and %d slots held, want 2 and 1", got, n)
	}
	if got := e.releaseSession("s"); len(got) != 1 || got[0] != "m1" {
		t.Fatalf("releasing the session told %v, want [m1]", got)
	}
	holds := e.limits.Holds.(*localHolds)
	if len(e.held) != 0 || slots() != 0 || len(holds.images) != 0 || len(holds.spend) != 0 {
		t.Errorf("all released, yet held %v, %d slots, images %v, spend %v", e.held, slots(), holds.images, holds.spend)
	}
	// A closing engine admits nothing, and holds nothing for what it refused.
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	if err := e.reserve(ctx, c, sess, turn, msg); KindOf(err) != Busy || len(e.held) != 0 || images() != 0 {
		t.Errorf("reserve on a closing engine: %v, held %v, images %d", err, e.held, images())
	}
}

// usageOnly is a Store that reports no usage; only reserve's quota check
// reads it.
type usageOnly struct{ SessionStore }

func (usageOnly) UsageTotals(context.Context, string) (UsageTotals, error) {
	return UsageTotals{}, nil
}

// fixedCost is a Generator that is never called.
type fixedCost struct{ Generator }
