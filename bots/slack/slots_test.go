package slack

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSlots are ConnectionSlots in memory, n of them, for bots in one test.
type memSlots struct {
	n     int
	lease time.Duration

	mu    sync.Mutex
	held  map[int]int64 // slot → token
	grant int64
}

func (m *memSlots) Lease() time.Duration { return m.lease }

func (m *memSlots) Acquire(context.Context) (int, int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for slot := 1; slot <= m.n; slot++ {
		if _, taken := m.held[slot]; !taken {
			m.grant++
			m.held[slot] = m.grant
			return slot, m.grant, true, nil
		}
	}
	return 0, 0, false, nil
}

func (m *memSlots) Renew(_ context.Context, slot int, token int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[slot] == token, nil
}

func (m *memSlots) Release(_ context.Context, slot int, token int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held[slot] == token {
		delete(m.held, slot)
	}
	return nil
}

// takeOver gives slot to another holder, as a replica does once this
// one froze past its lease.
func (m *memSlots) takeOver(slot int) (token int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grant++
	m.held[slot] = m.grant
	return m.grant
}

// TestSocketModeConnectionSlots: with one slot left for two bots, only one
// opens a Socket Mode connection and serves; the other logs why it waits,
// and opens its connection once the first stops. A bot whose slot is taken
// over closes its connection.
func TestSocketModeConnectionSlots(t *testing.T) {
	slots := &memSlots{n: 1, lease: 600 * time.Millisecond, held: map[int]int64{}}
	h := newHarness(t, options{cfg: func(c *Config) { c.Connections = slots }})
	h.slash(ana, "C1", "a kite")

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	cfg := Config{BotToken: h.fake.BotToken, AppToken: h.fake.AppToken, APIURL: h.fake.APIURL(), Connections: slots}
	second, err := New(cfg, h.engine, h.log, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- second.run(ctx, nil) }()
	h.fake.WaitFor(t, "the second bot to say it waits", func() bool {
		return strings.Contains(logs.String(), "serves nothing on Slack")
	})
	time.Sleep(2 * slots.lease) // it tries again, and still opens nothing
	if n := h.fake.OpenConnections(); n != 1 {
		t.Fatalf("%d Socket Mode connections open with one slot", n)
	}

	// The first bot's slot is taken over (it froze, say): it closes its
	// connection, and the second bot, its slot freed for it, connects.
	opened := h.fake.Connections()
	slots.mu.Lock()
	var slot int
	for s := range slots.held {
		slot = s
	}
	slots.mu.Unlock()
	token := slots.takeOver(slot)
	h.fake.WaitFor(t, "the first bot to close its connection", func() bool { return h.fake.OpenConnections() == 0 })
	_ = slots.Release(context.Background(), slot, token)
	h.fake.WaitFor(t, "one bot to connect again", func() bool {
		return h.fake.Connections() > opened && h.fake.OpenConnections() == 1
	})
	h.slash(bob, "C1", "a second kite")
	if n := h.fake.OpenConnections(); n != 1 {
		t.Errorf("%d Socket Mode connections open with one slot", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("second bot: %v", err)
	}
}
