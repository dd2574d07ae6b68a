package storage

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a DB on dir with clk, closing it when the test ends.
func openTest(t testing.TB, dir string, clk *clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), dir, Options{Now: clk.Now, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newSession returns a session with no turns bound to a Slack thread.
func newSession(id, thread string) *core.Session {
	return &core.Session{
		ID:        id,
		Platform:  "slack",
		Workspace: "T1",
		Channel:   "C1",
		Thread:    thread,
		CreatedBy: core.User{ID: "U1", Name: "ana"},
	}
}

// queue returns fn for UpdateSession that appends a queued turn by user,
// queued at at.
func queue(user string, at time.Time) func(*core.Session) error {
	return func(s *core.Session) error {
		s.Turns = append(s.Turns, core.Turn{
			ID:       len(s.Turns) + 1,
			Kind:     core.KindGenerate,
			Action:   core.ActionPrompt,
			User:     core.User{ID: user},
			Text:     "a red fox",
			Prompt:   "a red fox",
			Status:   core.StatusQueued,
			QueuedAt: at,
		})
		return nil
	}
}

// setStatus returns fn for UpdateSession that moves turn id to status.
func setStatus(id int, status core.TurnStatus) func(*core.Session) error {
	return func(s *core.Session) error {
		s.Turn(id).Status = status
		return nil
	}
}

// finish returns fn for UpdateSession that ends turn id done, with n
// outputs costing cost, at at.
func finish(id, n int, cost float64, at time.Time) func(*core.Session) error {
	return func(s *core.Session) error {
		t := s.Turn(id)
		for range n {
			v := len(s.Versions) + 1
			s.Versions = append(s.Versions, core.Version{N: v, Turn: id})
			t.Outputs = append(t.Outputs, v)
		}
		t.Status, t.CostUSD, t.FinishedAt = core.StatusDone, cost, at
		return nil
	}
}

// mustJSON returns v encoded, for comparing stored values.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
