package inbox_test

import (
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
)

// counts is an inbox.Metrics that counts what it is told.
type counts struct{ dupes, replayed int }

func (c *counts) Duplicate()     { c.dupes++ }
func (c *counts) Replayed(n int) { c.replayed += n }

// TestObserve: an observed inbox reports each duplicate it drops and the
// deliveries Left hands back; nil observes nothing.
func TestObserve(t *testing.T) {
	db := open(t, t.TempDir())
	dead := inbox.New(db, "chat", time.Hour, nil) // a process that stopped before handling them
	for _, id := range []string{"m1", "m2"} {
		if _, _, err := dead.Record(ctx, id, "message", nil); err != nil {
			t.Fatal(err)
		}
	}
	c := &counts{}
	in := inbox.New(db, "chat", time.Hour, nil)
	in.Observe(nil)
	in.Observe(c)
	if got := keys(t, in); len(got) != 2 {
		t.Fatalf("left %v, want m1 and m2", got)
	}
	keys(t, in) // nothing more: nothing counted
	if _, first, err := in.Record(ctx, "m1", "message", nil); err != nil || first {
		t.Fatalf("a redelivery: first %v, %v", first, err)
	}
	if c.dupes != 1 || c.replayed != 2 {
		t.Errorf("%d duplicates and %d replays observed, want 1 and 2", c.dupes, c.replayed)
	}
}
