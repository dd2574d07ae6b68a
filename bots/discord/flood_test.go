package discord_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// repliesTo counts Easel's replies to msgs in channel.
func repliesTo(h *harness, channel string, msgs []discordtest.Message) int {
	n := 0
	for _, r := range h.srv.Messages(channel) {
		if r.Author.ID == h.srv.Bot.ID && slices.ContainsFunc(msgs, func(m discordtest.Message) bool { return r.Reference == m.ID }) {
			n++
		}
	}
	return n
}

// markCounter counts the events marked in an event log, by the kind their
// key starts with ("discord:problem", …).
type markCounter struct {
	discord.EventLog
	mu    sync.Mutex
	kinds map[string]int
}

func (c *markCounter) MarkEvent(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	kind, _, _ := strings.Cut(strings.TrimPrefix(key, "discord:"), ":")
	c.mu.Lock()
	c.kinds[kind]++
	c.mu.Unlock()
	return c.EventLog.MarkEvent(ctx, key, ttl)
}

func (c *markCounter) count(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kinds[kind]
}

// TestProblemRepliesAreThrottled sends 35 mentions with a bad flag from one
// person: Easel replies to one, explaining, and ignores the rest instead of
// filling the channel with 35 replies. Someone else is still told, and
// direct messages, which flood no one, are each answered.
func TestProblemRepliesAreThrottled(t *testing.T) {
	t.Parallel()
	marks := &markCounter{kinds: map[string]int{}}
	h := start(t, func(s *setup) {
		s.events = func(l discord.EventLog) discord.EventLog { marks.EventLog = l; return marks }
	})
	srv := h.srv
	var flood []discordtest.Message
	for range 35 {
		flood = append(flood, srv.Mention(srv.Alice, srv.Channel, "a fox --ar banana"))
	}
	srv.Wait(t, "every bad message handled", func() bool {
		n := repliesTo(h, srv.Channel, flood)
		return marks.count("problem") == 35 && n > 0 || n > 1
	})
	if n := repliesTo(h, srv.Channel, flood); n != 1 {
		t.Errorf("35 bad messages from one person got %d replies, want 1", n)
	}
	for _, text := range h.replies(srv.Channel) {
		if !strings.Contains(text, "--ar banana") {
			t.Errorf("reply %q does not explain the flag", text)
		}
	}

	bob := []discordtest.Message{srv.Mention(srv.Bob, srv.Channel, "a fox --n 9")}
	srv.Wait(t, "a reply to bob", func() bool { return repliesTo(h, srv.Channel, bob) == 1 })

	dm := srv.DMChannel(srv.Alice)
	var dms []discordtest.Message
	for range 3 {
		dms = append(dms, srv.DM(srv.Alice, "a fox --ar banana"))
	}
	srv.Wait(t, "a reply to each direct message", func() bool { return repliesTo(h, dm, dms) == 3 })
	if n, threads := h.gen.Calls.Load(), srv.Threads(srv.Channel); n != 0 || len(threads) != 0 {
		t.Errorf("%d provider calls and %d threads for bad messages", n, len(threads))
	}
}
