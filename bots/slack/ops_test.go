package slack

import (
	"sync"
	"testing"
	"time"
)

// opsLog is a Metrics that counts what it is told.
type opsLog struct {
	mu                    sync.Mutex
	acks, dupes, replayed int
}

func (o *opsLog) Acked(time.Duration) { o.mu.Lock(); o.acks++; o.mu.Unlock() }
func (o *opsLog) Duplicate()          { o.mu.Lock(); o.dupes++; o.mu.Unlock() }
func (o *opsLog) Replayed(n int)      { o.mu.Lock(); o.replayed += n; o.mu.Unlock() }

func (o *opsLog) counts() (acks, dupes, replayed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acks, o.dupes, o.replayed
}

// waitReady waits until b.Ready() is nil, or not nil, as want says.
func waitReady(t *testing.T, b *Bot, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for (b.Ready() == nil) != want {
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want ready: %v", b.Ready(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReadySocketMode: the bot is ready while its Socket Mode connection
// is open, not while it opens another, and says so.
func TestReadySocketMode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	waitReady(t, h.bot, true)
	h.fake.Fail("apps.connections.open", "internal_error") // the next connection waits for a retry
	h.fake.Drop(t, false)
	waitReady(t, h.bot, false)
	if err := h.bot.Ready(); err.Error() != "not connected over Socket Mode" {
		t.Errorf("Ready() = %q", err)
	}
	waitReady(t, h.bot, true)
}

// TestReadyHTTPMode: in http mode the bot is ready while it serves the
// Events API, and not before Run.
func TestReadyHTTPMode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{http: true})
	waitReady(t, h.bot, true)
	b, err := New(Config{BotToken: "xoxb-1", SigningSecret: "s", Mode: "http"}, h.engine, h.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err == nil || err.Error() != "not serving the Events API" {
		t.Errorf("Ready() before Run = %v", err)
	}
}

// TestMetricsSocketMode: each acknowledgement is observed, and a
// redelivered envelope counts as a duplicate.
func TestMetricsSocketMode(t *testing.T) {
	t.Parallel()
	ops := &opsLog{}
	h := newHarness(t, options{cfg: func(c *Config) { c.Metrics = ops }})
	env := h.fake.SlashCommand(ana, "C1", "a fox")
	h.deliver(env)
	h.root(ana, "C1", "a fox")
	h.deliver(env) // Slack delivers it again
	acks, dupes, _ := ops.counts()
	if acks != 2 || dupes != 1 {
		t.Errorf("%d acks and %d duplicates observed, want 2 and 1", acks, dupes)
	}
}
