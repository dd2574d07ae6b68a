package discord_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
)

// orderLog is the bot's event log, noting for each interaction and message
// recorded whether it was recorded before it was acknowledged or acted on.
type orderLog struct {
	discord.EventLog
	srv *discordtest.Server
	db  *storage.DB

	mu          sync.Mutex
	early, late []string // keys
}

func (l *orderLog) Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (bool, error) {
	var m struct {
		ID      string `json:"id"`
		Channel string `json:"channel_id"`
	}
	_ = json.Unmarshal(payload, &m)
	early := false
	switch kind {
	case "interaction":
		early = l.srv.GetInteraction(m.ID).AckType == 0
	case "message":
		early = !l.turnOf(ctx, m.Channel, m.ID) && !l.turnOf(ctx, m.ID, m.ID)
	}
	l.mu.Lock()
	if early {
		l.early = append(l.early, key)
	} else {
		l.late = append(l.late, key)
	}
	l.mu.Unlock()
	return l.EventLog.Receive(ctx, key, kind, payload, ttl)
}

// turnOf reports whether the session of thread has a turn asked for by
// message source.
func (l *orderLog) turnOf(ctx context.Context, thread, source string) bool {
	s, err := l.db.SessionByThread(ctx, discord.Platform, thread)
	return err == nil && slices.ContainsFunc(s.Turns, func(t core.Turn) bool { return t.Source == source })
}

func (l *orderLog) recorded() (early, late []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.early), slices.Clone(l.late)
}

// Every interaction is recorded before it is acknowledged, and every
// message before anything acts on it; once handled, none is left in the
// inbox.
func TestDeliveriesAreRecordedFirst(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	log := &orderLog{srv: s.srv}
	s.events = func(l discord.EventLog) discord.EventLog { log.EventLog, log.db = l, l.(*storage.DB); return log }
	h := launch(t, s)
	srv := h.srv

	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a lighthouse"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	thread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	result := h.waitResults(thread, 1)[0]
	srv.Click(t, srv.Alice, result, button(t, result, "regenerate"))
	m := srv.Mention(srv.Bob, srv.Channel, "a harbour")
	reply := srv.Say(srv.Alice, thread, "make it blue")
	h.waitResults(thread, 3)
	h.waitResults(h.threadOf(m.ID), 1)
	h.waitIdle(thread)

	early, late := log.recorded()
	if len(early) != 4 || len(late) != 0 {
		t.Errorf("recorded before the ack or the turn: %q; after: %q; want 4 before, none after", early, late)
	}
	for _, id := range []string{ic.ID, m.ID, reply.ID} {
		if !slices.Contains(early, "discord:"+id) {
			t.Errorf("%s was not recorded first", id)
		}
	}
	srv.Wait(t, "the inbox to empty", func() bool {
		left, err := h.db.Unhandled(context.Background())
		return err == nil && len(left) == 0
	})
}

// stuckEngine is an engine whose Handle waits until the bot stops, as a
// process does that dies between acknowledging a request and recording its
// turn.
type stuckEngine struct {
	discord.Engine
	handles chan string // the text of each message handed over
}

func (e *stuckEngine) Handle(ctx context.Context, _ core.Thread, msg core.Message) (core.Queued, error) {
	e.handles <- msg.Text
	<-ctx.Done()
	return core.Queued{}, ctx.Err()
}

// stopBeforeTheTurn runs a bot on s whose turns are never recorded, does
// what act does, waits until the engine was handed what it asked, stops
// the bot and returns s ready for the next process.
func stopBeforeTheTurn(t *testing.T, s *setup, act func(*harness)) {
	t.Helper()
	s.unpaced = true
	stuck := &stuckEngine{handles: make(chan string, 4)}
	s.wrap = func(e discord.Engine) discord.Engine { stuck.Engine = e; return stuck }
	h := launch(t, s)
	act(h)
	<-stuck.handles
	h.stop(time.Second)
	s.wrap = nil
}

// An /imagine the previous process acknowledged but stopped before
// recording is handled on the next start, once: through its token while it
// works, and, once it has expired, with the bot token in its channel.
func TestInteractionLeftByAStopIsHandledOnce(t *testing.T) {
	for _, expired := range []bool{false, true} {
		name := "token alive"
		if expired {
			name = "token expired"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := defaults(t)
			srv := s.srv
			var ic discordtest.Interaction
			stopBeforeTheTurn(t, s, func(*harness) {
				ic = srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a lighthouse"})
			})
			if srv.GetInteraction(ic.ID).AckType == 0 {
				t.Fatal("the interaction was not acknowledged")
			}
			if expired {
				srv.ExpireTokens() // 15 minutes pass
			}
			h := launch(t, s)
			var starter discordtest.Message
			srv.Wait(t, "a thread started for the command", func() bool {
				for _, m := range srv.Messages(srv.Channel) {
					if m.Author.ID == srv.Bot.ID && m.Thread != "" {
						starter = m
						return true
					}
				}
				return false
			})
			h.waitResults(starter.Thread, 1)
			h.waitIdle(starter.Thread)
			if via := starter.InteractionID != ""; via == expired {
				t.Errorf("the session's starter message came through the interaction: %v, want %v", via, !expired)
			}
			if !strings.Contains(starter.Content, "a lighthouse") {
				t.Errorf("starter message %q", starter.Content)
			}
			srv.RedeliverInteraction(ic)
			later := srv.Mention(srv.Bob, srv.Channel, "a marker")
			h.waitResults(h.threadOf(later.ID), 1)
			if n := h.gen.Calls.Load(); n != 2 {
				t.Errorf("%d provider calls, want 2: the command once and the marker", n)
			}
			threads := 0
			for _, m := range srv.Messages(srv.Channel) {
				if m.Thread != "" {
					threads++
				}
			}
			if threads != 2 {
				t.Errorf("%d threads in the channel, want 2", threads)
			}
		})
	}
}

// A direct message the previous process took but stopped before recording
// (Discord does not resend it, and a DM is not caught up on) is handled on
// the next start, once.
func TestMessageLeftByAStopIsHandledOnce(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	srv := s.srv
	var dm discordtest.Message
	stopBeforeTheTurn(t, s, func(*harness) { dm = srv.DM(srv.Alice, "a paper boat") })
	h := launch(t, s)
	h.waitResults(dm.ChannelID, 1)
	h.waitIdle(dm.ChannelID)
	srv.Redeliver(dm)
	later := srv.DM(srv.Alice, "make it red")
	h.waitResults(dm.ChannelID, 2)
	h.waitIdle(dm.ChannelID)
	sess, err := h.db.SessionByThread(context.Background(), discord.Platform, dm.ChannelID)
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, tr := range sess.Turns {
		sources = append(sources, tr.Source)
	}
	if !slices.Equal(sources, []string{dm.ID, later.ID}) {
		t.Errorf("turns asked for by %v, want %v", sources, []string{dm.ID, later.ID})
	}
}

// A session whose first turn was recorded by a process that stopped before
// starting the session's thread gets its thread when the turn is resumed,
// and its result there.
func TestResumedSessionStartsItsMissingThread(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	srv := s.srv
	m := srv.Mention(srv.Alice, srv.Channel, "a kite") // no bot is connected
	db, err := storage.Open(context.Background(), s.dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sess := &core.Session{ID: "S1", Platform: discord.Platform, Workspace: srv.Guild, Channel: srv.Channel, Thread: m.ID,
		CreatedBy: core.User{ID: srv.Alice.ID}, Turns: []core.Turn{{ID: 1, Action: core.ActionPrompt, User: core.User{ID: srv.Alice.ID},
			Text: "a kite", Prompt: "a kite", Provider: "fake", Source: m.ID, Status: core.StatusQueued, QueuedAt: time.Now()}}}
	if err := db.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	db.Close()

	h := launch(t, s)
	if n, err := h.engine.Resume(context.Background(), h.bot.Thread); err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v", n, err)
	}
	thread := h.threadOf(m.ID)
	h.waitResults(thread, 1)
	h.waitIdle(thread)
	if got, _ := srv.GetChannel(thread); got.Name != "🎨 a kite" {
		t.Errorf("thread named %q", got.Name)
	}
}

// failingInbox is an event log that cannot record deliveries.
type failingInbox struct{ discord.EventLog }

func (failingInbox) Receive(context.Context, string, string, []byte, time.Duration) (bool, error) {
	return false, errors.New("disk full")
}

// An interaction that cannot be recorded is not acknowledged as taken: its
// user is told, in its only response, that Easel cannot save requests now,
// and nothing else happens.
func TestUnrecordedInteractionIsRefused(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.events = func(l discord.EventLog) discord.EventLog { return failingInbox{l} } })
	srv := h.srv
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a lighthouse"})
	srv.Wait(t, "the answer", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	got := srv.GetInteraction(ic.ID)
	if got.AckType != discordtest.CallbackMessage {
		t.Fatalf("answered with callback type %d, want %d (a message, not a deferred answer)", got.AckType, discordtest.CallbackMessage)
	}
	if m, _ := srv.GetMessage(got.Original); !m.Ephemeral() || !strings.Contains(m.Content, "can't save new requests") {
		t.Errorf("answer %q (ephemeral %v)", m.Content, m.Ephemeral())
	}
	if n := h.gen.Calls.Load(); n != 0 {
		t.Errorf("%d provider calls", n)
	}
}
