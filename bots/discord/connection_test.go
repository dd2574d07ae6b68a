package discord_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// TestGatewayReconnectOpcodeResumes: on RECONNECT (opcode 7) the bot closes
// the connection with a code that keeps its session and RESUMEs it, so a
// message sent meanwhile is replayed and handled, with no new IDENTIFY.
func TestGatewayReconnectOpcodeResumes(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	srv.Reconnect()
	m := srv.Mention(srv.Alice, srv.Channel, "a harbour") // dispatched while the bot reconnects
	srv.Wait(t, "the bot to resume", func() bool { return srv.Resumes() == 1 && srv.Connected() })
	thread := h.threadOf(m.ID)
	h.waitResults(thread, 1)
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d IDENTIFYs, want the session resumed", n)
	}
}

// TestGatewayInvalidSessionIdentifiesAgain: on INVALID_SESSION (opcode 9),
// resumable or not, the bot identifies again on the same connection and
// keeps working. (discordgo answers both with IDENTIFY; a resumable one
// could have been resumed, so it costs one IDENTIFY of the day's budget.)
func TestGatewayInvalidSessionIdentifiesAgain(t *testing.T) {
	for _, resumable := range []bool{false, true} {
		name := "not resumable"
		if resumable {
			name = "resumable"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// discordgo answers INVALID_SESSION with an IDENTIFY at once,
			// sooner than Discord's 5 s.
			h := start(t, func(s *setup) { s.srv.UnlimitedIdentifies = true })
			srv := h.srv
			srv.InvalidateSession(resumable)
			srv.Wait(t, "a new IDENTIFY", func() bool { return len(srv.Identifies()) == 2 && srv.Connected() })
			m := srv.Mention(srv.Alice, srv.Channel, "a glacier")
			h.waitResults(h.threadOf(m.ID), 1)
			// The IDENTIFY discordgo made by itself is recorded for pacing.
			srv.Wait(t, "both IDENTIFYs recorded", func() bool {
				starts, err := h.db.Starts(context.Background(), discord.IdentifyName, time.Time{})
				return err == nil && len(starts) == 2
			})
		})
	}
}

// TestResumeReplayStartsNoSecondJob: a RESUME whose replay repeats a
// MESSAGE_CREATE and an INTERACTION_CREATE the bot already handled starts
// no second job for either: the durable inbox drops them.
func TestResumeReplayStartsNoSecondJob(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	events := &watchedLog{}
	h := launchWith(t, s, func(db *storage.DB) discord.EventLog { events.DB = db; return events }, nil)
	srv := h.srv

	m := srv.Mention(srv.Alice, srv.Channel, "a windmill")
	mentionThread := h.threadOf(m.ID)
	h.waitResults(mentionThread, 1)
	h.waitIdle(mentionThread)
	ic := srv.Command(t, srv.Bob, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a lighthouse"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	commandThread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	h.waitResults(commandThread, 1)
	h.waitIdle(commandThread)

	srv.ReplayOnResume(1 << 20) // the whole session
	srv.Disconnect()
	srv.Wait(t, "the bot to resume", func() bool { return srv.Resumes() == 1 && srv.Connected() })
	srv.Wait(t, "the replayed events to be dropped", func() bool {
		return events.dropped("discord:"+m.ID) > 0 && events.dropped("discord:"+ic.ID) > 0
	})
	// A new message after the replay is handled, and by the time its
	// result is in, a duplicate job would have shown.
	later := srv.Mention(srv.Alice, srv.Channel, "a marker")
	laterThread := h.threadOf(later.ID)
	h.waitResults(laterThread, 1)
	h.waitIdle(laterThread)
	h.waitIdle(mentionThread)
	h.waitIdle(commandThread)

	for _, th := range []string{mentionThread, commandThread} {
		if n := len(h.results(th)); n != 1 {
			t.Errorf("thread %s: %d results, want 1", th, n)
		}
		sess, err := h.engine.Session(context.Background(), discord.Platform, th)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sess.Turns); n != 1 {
			t.Errorf("thread %s: %d turns, want 1", th, n)
		}
	}
	if n := h.gen.Calls.Load(); n != 3 {
		t.Errorf("%d provider calls, want 3", n)
	}
	// The replayed interaction is not answered again: it was recorded
	// before its first answer.
	if n := len(srv.Calls("POST /interactions/{interaction_id}/{interaction_token}/callback")); n != 1 {
		t.Errorf("%d interaction callbacks, want 1", n)
	}
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d IDENTIFYs, want 1", n)
	}
	t.Logf("%d dispatches replayed, none started a job", srv.Replayed())
}

// TestCrashLoopBacksOffIdentifies: five processes in a row that each
// connect and die at once. The IDENTIFY times are kept in the data dir, so
// each start sees the earlier ones: the first goes at once, the next two
// keep Discord's 5 s between IDENTIFYs, and from the fourth the waits
// double. A stop during the wait makes no IDENTIFY.
func TestCrashLoopBacksOffIdentifies(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewServer(t)
	srv.UnlimitedIdentifies = true // the bot's clock is fake: its 5 s take none
	dir := t.TempDir()
	clk := &fakeClock{at: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	var waits []time.Duration
	for i := range 5 {
		before := clk.slept()
		runOnce(t, srv, dir, log, clk.now, clk.sleep, func(ctx context.Context, stop context.CancelFunc) {
			srv.Wait(t, "IDENTIFY", func() bool { return len(srv.Identifies()) == i+1 })
			srv.Wait(t, "the bot to be ready", func() bool { return strings.Count(logs.String(), "connected to Discord") == i+1 })
			stop()
		})
		waits = append(waits, clk.slept()-before)
		clk.advance(time.Second) // the process restarts
	}
	want := []time.Duration{0, 4 * time.Second, 4 * time.Second, 12500 * time.Millisecond, 26 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("start %d waited %s, want %s (all: %v)", i+1, waits[i], want[i], waits)
		}
	}
	if !strings.Contains(logs.String(), "crash-looping") {
		t.Errorf("the wait was not explained in the log:\n%s", logs)
	}

	// A sixth start is stopped while it waits: it returns at once, without
	// an IDENTIFY.
	waiting := make(chan time.Duration, 1)
	block := func(ctx context.Context, d time.Duration) error {
		waiting <- d
		<-ctx.Done()
		return ctx.Err()
	}
	runOnce(t, srv, dir, log, clk.now, block, func(ctx context.Context, stop context.CancelFunc) {
		select {
		case d := <-waiting:
			if d < 50*time.Second {
				t.Errorf("sixth start waits %s, want about 53s", d)
			}
		case <-time.After(10 * time.Second):
			t.Error("sixth start did not wait")
		}
		stop()
	})
	if n := len(srv.Identifies()); n != 5 {
		t.Errorf("%d IDENTIFYs, want 5", n)
	}
}

// runOnce runs one bot process on dir until during, given the Run context
// and its cancel, cancels it, and checks that Run returned nil.
func runOnce(t *testing.T, srv *discordtest.Server, dir string, log *slog.Logger, now func() time.Time,
	sleep func(context.Context, time.Duration) error, during func(context.Context, context.CancelFunc)) {
	t.Helper()
	db, err := storage.Open(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bot, err := discord.New(discord.Config{Token: srv.Token, APIURL: srv.URL()}, nil, db, log)
	if err != nil {
		t.Fatal(err)
	}
	discord.SetPacer(bot, now, sleep, func() float64 { return 0.5 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	during(ctx, cancel)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// fakeClock is a clock whose sleeps return at once and move it on.
type fakeClock struct {
	mu    sync.Mutex
	at    time.Time
	total time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
	c.total += d
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

func (c *fakeClock) slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// watchedLog is the store as the bot's event log, counting the deliveries
// it reported as duplicates.
type watchedLog struct {
	*storage.DB
	mu   sync.Mutex
	dups map[string]int
}

func (l *watchedLog) Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (bool, error) {
	first, err := l.DB.Receive(ctx, key, kind, payload, ttl)
	if err == nil && !first {
		l.mu.Lock()
		if l.dups == nil {
			l.dups = map[string]int{}
		}
		l.dups[key]++
		l.mu.Unlock()
	}
	return first, err
}

func (l *watchedLog) dropped(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dups[key]
}

// defaults returns start's setup: /imagine in the fake's guild, the Message
// Content intent, the real engine with a fake provider.
func defaults(t *testing.T) *setup {
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	return &setup{
		srv: srv, dir: t.TempDir(),
		cfg: discord.Config{Token: srv.Token, APIURL: srv.URL(), Guilds: []string{srv.Guild}, MessageContent: true},
		engine: core.EngineConfig{DefaultProvider: "fake", Variations: 2, MaxPerUser: 10, MaxConcurrent: 8,
			Limits: core.Limits{MaxN: 4}},
		gen: &coretest.Generator{},
	}
}

// launchWith is launch with the store wrapped as the bot's event log and
// the bot adjusted before it runs.
func launchWith(t *testing.T, s *setup, events func(*storage.DB) discord.EventLog, adjust func(*discord.Bot)) *harness {
	t.Helper()
	h := &harness{t: t, srv: s.srv, gen: s.gen}
	ctx := context.Background()
	var err error
	if h.db, err = storage.Open(ctx, s.dir, storage.Options{}); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	cfg := s.engine
	cfg.StyleStore = h.db
	if h.engine, err = core.NewEngine(cfg, h.db, coretest.ImageDir(t, s.dir), map[string]core.Generator{"fake": s.gen}, log); err != nil {
		t.Fatal(err)
	}
	if h.bot, err = discord.New(s.cfg, h.engine, events(h.db), log); err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(h.bot)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.bot.Run(runCtx) }()
	var once sync.Once
	h.stop = func(grace time.Duration) {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			closeCtx, stop := context.WithTimeout(ctx, grace)
			defer stop()
			if err := h.engine.Close(closeCtx); err != nil {
				t.Errorf("engine close: %v", err)
			}
			h.db.Close()
		})
	}
	t.Cleanup(func() { h.stop(10 * time.Second) })
	s.srv.Wait(t, "the bot to connect", func() bool { return s.srv.Connected() })
	waitCommands(t, s.srv, s.cfg.Guilds[0])
	return h
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
