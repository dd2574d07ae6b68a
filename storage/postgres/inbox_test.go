package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

// Replicas share one inbox, and each delivery is handled by one of them: a
// delivery is held by the replica that recorded it, so another's take-up
// passes it by while that one lives; once its holder froze past the lease,
// another takes it up, and the frozen one, thawed, can no longer record its
// turn. A replica that stops lets go of what it held at once.
func TestDeliveriesAreHeldByOneReplica(t *testing.T) {
	url := pgtest.Start(t).DB(t)
	ctx := context.Background()
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	a, b := open(), open()
	keys := func(db *postgres.DB) []string {
		ds, err := db.Unhandled(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.Key)
		}
		return out
	}
	turn := func(db *postgres.DB, id, delivery string) error {
		s := &core.Session{ID: id, Platform: "chat", Thread: id}
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		_, err := db.UpdateSession(ctx, id, func(s *core.Session) error {
			s.Turns = append(s.Turns, core.Turn{ID: 1, Kind: core.KindGenerate, Action: core.ActionPrompt,
				Text: "a fox", Prompt: "a fox", Status: core.StatusQueued, QueuedAt: time.Now(), Delivery: delivery})
			return nil
		})
		return err
	}

	// a holds what it records; b's take-up passes it by.
	a.SetLease(time.Second)
	for _, k := range []string{"chat:1", "chat:2"} {
		if first, err := a.Receive(ctx, k, "message", []byte("{}"), time.Hour); err != nil || !first {
			t.Fatalf("Receive(%s) = %v, %v", k, first, err)
		}
	}
	if got := keys(b); len(got) != 0 {
		t.Fatalf("b took up %v while a holds them", got)
	}
	if err := turn(a, "S1", "chat:1"); err != nil {
		t.Fatalf("a records the turn of its own delivery: %v", err)
	}

	// a freezes with chat:2 past its lease: b takes it up and records its
	// turn; a, thawed, is refused, and a second turn of it is refused too.
	time.Sleep(1500 * time.Millisecond)
	if got := keys(b); !slices.Equal(got, []string{"chat:2"}) {
		t.Fatalf("b took up %v after a's hold ran out, want [chat:2]", got)
	}
	if got := keys(a); len(got) != 0 {
		t.Errorf("a took up %v, which b holds now", got)
	}
	if err := turn(a, "S2", "chat:2"); !errors.Is(err, core.ErrDeliveryTaken) {
		t.Errorf("the frozen replica recorded a turn of a delivery b holds: %v", err)
	}
	// a, thawed, marking it handled (its job ended on the refusal) leaves
	// it to b.
	if err := a.Handled(ctx, "chat:2"); err != nil {
		t.Fatal(err)
	}
	if err := turn(b, "S3", "chat:2"); err != nil {
		t.Fatalf("b records the turn of the delivery it took up: %v", err)
	}
	if err := turn(a, "S4", "chat:2"); !errors.Is(err, core.ErrDeliveryTaken) {
		t.Errorf("a second turn of a handled delivery: %v", err)
	}
	if s, err := a.Session(ctx, "S2"); err != nil || len(s.Turns) != 0 {
		t.Errorf("the refused update wrote a turn: %+v, %v", s, err)
	}

	// A replica that stops lets go of its deliveries: the next takes them
	// up at once, without waiting for the lease.
	a.SetLease(time.Hour)
	if _, err := a.Receive(ctx, "chat:3", "message", []byte("{}"), time.Hour); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	if got := keys(b); !slices.Equal(got, []string{"chat:3"}) {
		t.Errorf("after a stopped, b took up %v, want [chat:3]", got)
	}
	if err := b.Handled(ctx, "chat:3"); err != nil {
		t.Fatal(err)
	}

	// A replica killed outright lets go of nothing, but its connections
	// close: the next takes what it held up at once too.
	c := open()
	c.SetLease(time.Hour)
	if _, err := c.Receive(ctx, "chat:4", "message", []byte("{}"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := keys(b); len(got) != 0 {
		t.Fatalf("b took up %v from a live replica", got)
	}
	c.Die()
	waitFor(t, "b to take up what the killed replica held", func() bool { return slices.Equal(keys(b), []string{"chat:4"}) })
}
