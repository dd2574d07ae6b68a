package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/easel-bot/easel/core"
)

// BenchmarkUpdateSession replaces the last turn of a session with 20 done
// turns by a queued one with a new attempt count: a load, a store of about
// 20 turns and a job record, and a commit.
func BenchmarkUpdateSession(b *testing.B) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(b, b.TempDir(), clk)
	s := newSession("s1", "a")
	for i := range 20 {
		_ = queue("U1", clk.Now())(s)
		_ = finish(i+1, 1, 0.04, clk.Now())(s)
		s.Turns[i].Text = fmt.Sprintf("refinement %d: make the title gold and add a second person on the left", i)
		s.Versions[i].Image = core.ImageRef{SHA256: fmt.Sprintf("%064x", i), MIME: "image/png", Size: 1 << 20, Width: 1024, Height: 1024}
	}
	if err := db.CreateSession(ctx, s); err != nil {
		b.Fatal(err)
	}
	attempt := 0
	for b.Loop() {
		attempt++
		_, err := db.UpdateSession(ctx, "s1", func(s *core.Session) error {
			s.Turns = s.Turns[:20]
			if err := queue("U2", clk.Now())(s); err != nil {
				return err
			}
			s.Turns[20].Attempts = attempt
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
