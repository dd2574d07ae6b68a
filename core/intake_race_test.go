package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// racingStore is a session store shared with another process, which
// records a turn in the armed session just before this process's next
// update of it.
type racingStore struct {
	core.SessionStore
	mu    sync.Mutex
	armed string
}

func (s *racingStore) UpdateSession(ctx context.Context, id string, fn func(*core.Session) error) (*core.Session, error) {
	s.mu.Lock()
	race := s.armed == id
	s.armed = ""
	s.mu.Unlock()
	if race {
		_, err := s.SessionStore.UpdateSession(ctx, id, func(sess *core.Session) error {
			sess.Turns = append(sess.Turns, core.Turn{ID: len(sess.Turns) + 1, Kind: core.KindRefine, Action: core.ActionPrompt,
				User: ana, Text: "from another process", Status: core.StatusFailed, Error: "elsewhere",
				QueuedAt: time.Now(), FinishedAt: time.Now()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return s.SessionStore.UpdateSession(ctx, id, fn)
}

// A turn another process records in the session between this one's read
// and its write takes the id this one meant to use: Handle records its
// turn after it, instead of refusing the request.
func TestHandleRecordsAfterAnotherProcessesTurn(t *testing.T) {
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store := &racingStore{SessionStore: db}
	e, err := core.NewEngine(core.EngineConfig{DefaultProvider: "fake", MaxQueue: 10, MaxPerUser: 10},
		store, coretest.ImageDir(t, ""), map[string]core.Generator{"fake": &coretest.Generator{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	th := coretest.NewThread()
	q, err := e.Handle(context.Background(), th, msg("t1", "a red fox"))
	if err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 1)

	store.mu.Lock()
	store.armed = q.SessionID
	store.mu.Unlock()
	q2, err := e.Handle(context.Background(), th, msg("t1", "make it blue"))
	if err != nil {
		t.Fatalf("a refinement racing another process's turn: %v", err)
	}
	if q2.TurnID != 3 {
		t.Errorf("the refinement is turn %d, want 3 (after the other process's)", q2.TurnID)
	}
	th.WaitTurns(t, 2)
	s, err := db.Session(context.Background(), q.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Turns) != 3 || s.Turn(3).Text != "make it blue" || s.Turn(3).Status != core.StatusDone {
		t.Errorf("turns after the race: %+v", s.Turns)
	}
}
