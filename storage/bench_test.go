package storage

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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

// BenchmarkReceive records deliveries in bursts of 1 or 20 at once: alone,
// and while other goroutines update sessions without pause (as turns do
// under load), which is what a delivery's acknowledgement waits behind. It
// reports the 50th and 99th percentile of a Receive's time.
func BenchmarkReceive(b *testing.B) {
	for _, burst := range []int{1, 20} {
		for _, writers := range []int{0, 4} {
			b.Run(fmt.Sprintf("burst=%d/writers=%d", burst, writers), func(b *testing.B) {
				benchmarkReceive(b, burst, writers)
			})
		}
	}
}

func benchmarkReceive(b *testing.B, burst, writers int) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(b, b.TempDir(), clk)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		id := fmt.Sprint("s", w)
		if err := db.CreateSession(ctx, newSession(id, id)); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.UpdateSession(ctx, id, queue("U1", clk.Now())); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	var mu sync.Mutex
	var took []time.Duration
	n := 0
	for b.Loop() {
		var burstWG sync.WaitGroup
		for range burst {
			n++
			key := fmt.Sprint("ev", n)
			burstWG.Go(func() {
				start := time.Now()
				if _, err := db.Receive(ctx, key, "event", []byte(`{"type":"slash_commands"}`), time.Hour); err != nil {
					b.Error(err)
				}
				d := time.Since(start)
				mu.Lock()
				took = append(took, d)
				mu.Unlock()
			})
		}
		burstWG.Wait()
	}
	close(stop)
	wg.Wait()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}
