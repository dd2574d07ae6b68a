package discord_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"image"
	"image/png"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// testPNG returns a valid PNG that differs for every seed.
func testPNG(seed int) []byte { return coretest.PNG(seed) }

// noisePNG returns an uncompressed PNG of random pixels, about 4*w*h bytes.
func noisePNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	_, _ = rand.Read(img.Pix)
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// harness is a Bot running against the fake Discord, with the real engine
// and storage in a temp dir.
type harness struct {
	t      testing.TB
	srv    *discordtest.Server
	gen    *coretest.Generator
	db     *storage.DB
	engine *core.Engine
	bot    *discord.Bot
	stop   func(grace time.Duration) // stops the bot, the engine and the store
	images core.ImageStore           // the engine's images
}

// setup is what a test may change before the bot starts.
type setup struct {
	srv    *discordtest.Server
	dir    string // data dir
	cfg    discord.Config
	engine core.EngineConfig
	gen    *coretest.Generator
	// store, if set, wraps the stores the engine is given.
	store func(*storage.DB) *coretest.FailingStore
	// events, if set, wraps the event log the bot is given.
	events func(discord.EventLog) discord.EventLog
	// wrap, if set, wraps the engine the bot is given.
	wrap func(discord.Engine) discord.Engine
	// unpaced makes the bot connect at once however recently an earlier
	// one did, for tests that restart it (the pacing has tests of its own).
	unpaced bool
}

// start runs a bot with /imagine registered in the fake's guild and the
// Message Content intent, until the test ends; setup functions may change
// that first.
func start(t testing.TB, opts ...func(*setup)) *harness {
	t.Helper()
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	s := &setup{
		srv: srv,
		dir: t.TempDir(),
		cfg: discord.Config{Token: srv.Token, APIURL: srv.URL(), Guilds: []string{srv.Guild}, MessageContent: true},
		engine: core.EngineConfig{DefaultProvider: "fake", Variations: 2, MaxPerUser: 10, MaxConcurrent: 8,
			Limits: core.Limits{MaxN: 4}},
		gen: &coretest.Generator{},
	}
	for _, o := range opts {
		o(s)
	}
	return launch(t, s)
}

// launch starts a bot process for s and waits until it is connected and
// its command registered.
func launch(t testing.TB, s *setup) *harness {
	t.Helper()
	h := &harness{t: t, srv: s.srv, gen: s.gen}
	ctx := context.Background()
	var err error
	if h.db, err = storage.Open(ctx, s.dir, storage.Options{}); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	var store core.SessionStore = h.db
	var images core.ImageStore = coretest.ImageDir(t, s.dir)
	if s.store != nil {
		fs := s.store(h.db)
		store, images = fs, fs.Images(images)
	}
	h.images = images
	cfg := s.engine
	cfg.StyleStore = h.db // the styles and channel defaults set in chat
	if h.engine, err = core.NewEngine(cfg, store, images, map[string]core.Generator{"fake": s.gen}, log); err != nil {
		t.Fatal(err)
	}
	var events discord.EventLog = h.db
	if s.events != nil {
		events = s.events(events)
	}
	var engine discord.Engine = h.engine
	if s.wrap != nil {
		engine = s.wrap(engine)
	}
	if h.bot, err = discord.New(s.cfg, engine, events, log); err != nil {
		t.Fatal(err)
	}
	if s.unpaced {
		discord.SetPacer(h.bot, time.Now, func(context.Context, time.Duration) error { return nil }, nil)
		s.srv.UnlimitedIdentifies = true
	}
	identified := len(s.srv.Identifies())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.bot.Run(runCtx) }()
	var once sync.Once
	h.stop = func(grace time.Duration) {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context ended")
			}
			closeCtx, stop := context.WithTimeout(ctx, grace)
			defer stop()
			if err := h.engine.Close(closeCtx); err != nil && grace > 0 {
				t.Errorf("engine close: %v", err)
			}
			h.db.Close()
		})
	}
	t.Cleanup(func() { h.stop(10 * time.Second) })
	s.srv.Wait(t, "the bot to connect", func() bool { return len(s.srv.Identifies()) > identified && s.srv.Connected() })
	scope := ""
	if len(s.cfg.Guilds) > 0 {
		scope = s.cfg.Guilds[0]
	}
	waitCommands(t, s.srv, scope)
	return h
}

// waitCommands waits until Easel's commands are registered in scope (a
// guild, or "" for global ones).
func waitCommands(t testing.TB, srv *discordtest.Server, scope string) {
	t.Helper()
	srv.Wait(t, "the commands to be registered", func() bool {
		return slices.ContainsFunc(srv.Commands(scope), func(c discordtest.Command) bool { return c.Name == "easel" })
	})
}

// testLogger logs to the test until it ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Logf("%s", bytes.TrimSpace(p))
	}
	return len(p), nil
}

// results returns Easel's result messages in a channel: those with
// buttons other than a status message's Cancel, seen by everyone.
func (h *harness) results(channel string) []discordtest.Message {
	var out []discordtest.Message
	for _, m := range h.srv.Messages(channel) {
		if m.Author.ID == h.srv.Bot.ID && len(m.Buttons()) > 0 && !h.isStatus(m) && !m.Ephemeral() {
			out = append(out, m)
		}
	}
	return out
}

// waitResults waits until a channel holds n results and returns them.
func (h *harness) waitResults(channel string, n int) []discordtest.Message {
	h.t.Helper()
	h.srv.Wait(h.t, "results in the thread", func() bool { return len(h.results(channel)) >= n })
	return h.results(channel)
}

// waitIdle waits until no status message is left in a channel.
func (h *harness) waitIdle(channel string) {
	h.t.Helper()
	h.srv.Wait(h.t, "the status message to be cleaned up", func() bool {
		return !slices.ContainsFunc(h.srv.Messages(channel), h.isStatus)
	})
}

// isStatus reports whether m is a status message: Easel's, silent, with
// no button but a Cancel.
func (h *harness) isStatus(m discordtest.Message) bool {
	return m.Author.ID == h.srv.Bot.ID && m.Flags&(1<<12) != 0 &&
		!slices.ContainsFunc(m.Buttons(), func(b discordtest.Component) bool { return !strings.HasPrefix(b.CustomID, "easel:cancel:") })
}

// replies returns the texts Easel posted in a channel that are neither
// results nor status messages.
func (h *harness) replies(channel string) []string {
	var out []string
	for _, m := range h.srv.Messages(channel) {
		if m.Author.ID == h.srv.Bot.ID && len(m.Buttons()) == 0 && !h.isStatus(m) && m.InteractionID == "" {
			out = append(out, m.Content)
		}
	}
	return out
}

// button returns the custom id of a result's button for action.
func button(t testing.TB, m discordtest.Message, action string) string {
	t.Helper()
	for _, b := range m.Buttons() {
		if strings.HasPrefix(b.CustomID, "easel:"+action+":") {
			return b.CustomID
		}
	}
	t.Fatalf("result %s has no %s button: %+v", m.ID, action, m.Buttons())
	return ""
}

// threadOf returns the thread started from message id.
func (h *harness) threadOf(id string) string {
	h.t.Helper()
	h.srv.Wait(h.t, "a thread on message "+id, func() bool {
		m, _ := h.srv.GetMessage(id)
		return m.Thread != ""
	})
	m, _ := h.srv.GetMessage(id)
	return m.Thread
}
