package openai

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	"github.com/easel-bot/easel/storage"
)

// TestEngineFaultMatrix runs a turn facing each fault of the matrix through
// core.Engine, with real storage in a temporary directory and this provider
// talking to the fake (streaming, as configured by default), and checks the
// stored turn: failed with the fault class's message, or done when a single
// transient fault was retried away; its attempts equal to the requests the
// fake received; and a terminal state reached within the provider's bound.
func TestEngineFaultMatrix(t *testing.T) {
	for _, tc := range faultCases {
		var cfg Config
		matrixConfig(&cfg, tc)
		maxAttempts := 1 + cfg.MaxRetries
		for _, persistent := range []bool{true, false} {
			if !persistent && !tc.retried {
				continue // the same as the persistent case
			}
			name := tc.name + "/always"
			if !persistent {
				name = tc.name + "/once"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv, g, _ := newTestGenerator(t, func(c *Config) { matrixConfig(c, tc); c.Stream = true })
				g.sleep = wire.Sleep
				if persistent {
					for range 2 * maxAttempts {
						srv.Fail(tc.fault)
					}
				} else {
					srv.Fail(tc.fault)
				}

				ctx := context.Background()
				db, err := storage.Open(ctx, t.TempDir(), storage.Options{Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
				engine, err := core.NewEngine(core.EngineConfig{
					DefaultProvider: "openai",
					TurnTimeout:     time.Minute, // the provider's own bound ends the turn first
					Limits:          core.Limits{MaxN: 4, MaxPromptChars: 32000},
				}, db, coretest.ImageDir(t, ""), map[string]core.Generator{"openai": g}, log)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := engine.Close(cctx); err != nil {
						t.Errorf("engine close: %v", err)
					}
					if err := db.Close(); err != nil {
						t.Errorf("db close: %v", err)
					}
				})

				th := coretest.NewThread()
				start := time.Now()
				q, err := engine.Handle(ctx, th, core.Message{Platform: "test", Thread: "T1", User: core.User{ID: "U1", Name: "ana"}, Text: "a fox"})
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
				th.WaitTurns(t, 1)
				elapsed := time.Since(start)

				sess, err := db.Session(ctx, q.SessionID)
				if err != nil {
					t.Fatal(err)
				}
				turn := sess.Turn(q.TurnID)
				wantOK := tc.retried && !persistent
				wantRequests := 1
				switch {
				case tc.retried && persistent:
					wantRequests = maxAttempts
				case tc.retried:
					wantRequests = 2
				}
				if got := srv.Arrivals(); got != wantRequests {
					t.Errorf("the fake received %d requests, want %d", got, wantRequests)
				}
				if turn.Attempts != wantRequests {
					t.Errorf("turn recorded %d attempts, the fake received %d", turn.Attempts, srv.Arrivals())
				}
				th.Lock()
				replies, posts, ok := th.Replies, len(th.Posts), th.Finished[0]
				th.Unlock()
				if wantOK {
					if !ok || turn.Status != core.StatusDone || posts != 1 || turn.Error != "" {
						t.Errorf("turn %s (finished ok=%v), %d images posted, error %q; want done with one image", turn.Status, ok, posts, turn.Error)
					}
				} else {
					if ok || turn.Status != core.StatusFailed || posts != 0 {
						t.Errorf("turn %s (finished ok=%v), %d images posted; want failed", turn.Status, ok, posts)
					}
					if turn.Error != tc.message {
						t.Errorf("stored error %q, want %q", turn.Error, tc.message)
					}
					if len(replies) != 1 || !strings.Contains(replies[0], tc.message) {
						t.Errorf("thread replies %q, want the message %q", replies, tc.message)
					}
				}
				if bound := tc.bound(cfg, wantRequests); elapsed > bound {
					t.Errorf("the turn took %v to end, beyond the bound %v", elapsed, bound)
				}
				t.Logf("engine: %s | %s | %d attempts | %v", name, turn.Status, turn.Attempts, elapsed.Round(time.Millisecond))
			})
		}
	}
}
