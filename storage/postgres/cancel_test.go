package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// A Cancel pressed on the replica that does not run the turn: it is
// recorded in the shared session, the running replica's call stops within
// its poll, the thread is told once, and the user's slot is free again on
// every replica.
func TestCancelAcrossReplicas(t *testing.T) {
	rs := replicas(t, 2, core.EngineConfig{MaxPerUser: 1, CancelPoll: 20 * time.Millisecond}, 5*time.Second, true)
	ana := core.User{ID: "U1", Name: "ana"}
	m := core.Message{Platform: "chat", Workspace: "W1", Thread: "t1", User: ana, Text: "a red fox"}
	runs, presses := coretest.NewThread(), coretest.NewThread()
	q, err := rs[0].engine.Handle(context.Background(), runs, m)
	if err != nil {
		t.Fatal(err)
	}
	runs.WaitFor(t, "the provider call", func(*coretest.Thread) bool { return rs[0].gen.Calls.Load() == 1 })
	if err := rs[1].engine.Cancel(context.Background(), presses, core.Message{Platform: "chat", Thread: "t1", User: ana}, q.TurnID); err != nil {
		t.Fatal(err)
	}
	runs.WaitTurns(t, 1)
	if !slices.Equal(runs.Replies, []string{"🛑 canceled by ana"}) || len(presses.Replies) != 0 || len(runs.Posts) != 0 {
		t.Errorf("the running replica said %q and posted %d, the other said %q", runs.Replies, len(runs.Posts), presses.Replies)
	}
	s, err := rs[1].db.Session(context.Background(), q.SessionID)
	if err != nil || s.Turn(q.TurnID).Status != core.StatusCanceled {
		t.Fatalf("turn after the cancel: %+v, %v", s.Turn(q.TurnID), err)
	}
	close(rs[1].gen.Gate())
	rs[1].gen.SetGate(nil)
	m.Thread, m.Text = "t2", "a green owl"
	if _, err := rs[1].engine.Handle(context.Background(), presses, m); err != nil {
		t.Errorf("the user's next request on the other replica: %v", err)
	}
}
