package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// Users of the fake workspace.
const (
	ana = "UANA"
	bob = "UBOB"
)

// testPNG returns a valid PNG that differs for every seed.
func testPNG(seed int) []byte { return coretest.PNG(seed) }

// countingEngine counts what reaches the engine.
type countingEngine struct {
	Engine
	handles, sessions atomic.Int64
	recorded          atomic.Int64 // Handle calls that returned with their turn recorded
	mu                sync.Mutex
	errs              []error // Handle's errors
}

func (c *countingEngine) Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error) {
	c.handles.Add(1)
	q, err := c.Engine.Handle(ctx, th, msg)
	if err != nil {
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
	} else {
		c.recorded.Add(1)
	}
	return q, err
}

func (c *countingEngine) Session(ctx context.Context, platform, thread string) (*core.Session, error) {
	c.sessions.Add(1)
	return c.Engine.Session(ctx, platform, thread)
}

// countingLog counts the deliveries recorded.
type countingLog struct {
	inbox.Store
	marks atomic.Int64
}

func (c *countingLog) Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (bool, error) {
	c.marks.Add(1)
	return c.Store.Receive(ctx, key, kind, payload, ttl)
}

// harness runs a Bot against the Slack fake, the real engine and storage
// in a temp dir.
type harness struct {
	t      testing.TB
	fake   *slacktest.Server
	gen    *coretest.Generator
	db     *storage.DB
	engine *countingEngine
	log    *countingLog
	bot    *Bot
	url    string // http mode: the bot's base URL
	// store keeps the engine's images.
	store core.ImageStore
	// stop stops the bot and closes the engine and the store, once; the
	// test's cleanup calls it too.
	stop func()
	logs *syncBuffer // what the bot and the engine logged
}

// options tweak a harness before it starts.
type options struct {
	http     bool
	cfg      func(*Config)
	engine   core.EngineConfig
	partials int
	gate     chan struct{}
	// before runs on the fake and the store before the bot starts, to
	// leave them as an earlier process might have.
	before func(*slacktest.Server, *storage.DB)
	// store, if set, wraps the stores the engine is given.
	store func(*storage.DB) *coretest.FailingStore
	// bot changes the bot before it starts.
	bot func(*Bot)
	// dir and fake, if set, are the data dir and the Slack of a harness
	// stopped before: the same deployment restarted.
	dir  string
	fake *slacktest.Server
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	fake := o.fake
	if fake == nil {
		fake = slacktest.NewServer(t)
		fake.AddUser(ana, "ana")
		fake.AddUser(bob, "bob")
	}
	h := &harness{t: t, fake: fake, gen: coretest.Gated(o.gate)}
	h.gen.SetPartials(o.partials)

	logs := &syncBuffer{}
	h.logs = logs
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := storage.Open(context.Background(), dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ecfg := o.engine
	ecfg.DefaultProvider = "fake"
	ecfg.Limits = core.Limits{MaxN: 4, MaxPromptChars: 4000}
	ecfg.Variations = max(ecfg.Variations, 2)
	ecfg.StyleStore = db
	var store core.SessionStore = db
	var images core.ImageStore = coretest.ImageDir(t, dir)
	if o.store != nil {
		fs := o.store(db)
		store, images = fs, fs.Images(images)
	}
	engine, err := core.NewEngine(ecfg, store, images, map[string]core.Generator{"fake": h.gen}, log)
	if err != nil {
		t.Fatal(err)
	}
	h.db, h.engine, h.log, h.store = db, &countingEngine{Engine: engine}, &countingLog{Store: db}, images
	if o.before != nil {
		o.before(fake, db)
	}

	cfg := Config{BotToken: fake.BotToken, AppToken: fake.AppToken, SigningSecret: fake.SigningSecret, APIURL: fake.APIURL()}
	var ln net.Listener
	if o.http {
		cfg.Mode = "http"
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		h.url = "http://" + ln.Addr().String()
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if h.bot, err = New(cfg, h.engine, h.log, log); err != nil {
		t.Fatal(err)
	}
	if o.bot != nil {
		o.bot(h.bot)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.bot.run(ctx, ln) }()
	h.stop = sync.OnceFunc(func() {
		if o.gate != nil {
			close(o.gate)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := engine.Close(cctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("db close: %v", err)
		}
	})
	t.Cleanup(h.stop)
	if o.http {
		fake.WaitFor(t, "auth.test", func() bool { return len(fake.Calls("auth.test")) > 0 })
	} else {
		fake.Connected(t)
	}
	return h
}

// deliver sends envelopes over Socket Mode and waits for their acks; in
// http mode it posts them to the bot's request URLs, each answered 200.
func (h *harness) deliver(envs ...slacktest.Envelope) {
	h.t.Helper()
	for _, env := range envs {
		if h.url == "" {
			h.fake.WaitAck(h.t, h.fake.Send(h.t, env))
			continue
		}
		if status, body := h.fake.PostHTTP(h.t, h.url, env, slacktest.Signing{}); status != http.StatusOK {
			h.t.Fatalf("a %s delivery answered %d %q", env.Type, status, body)
		}
	}
}

// slash runs the slash command and returns the timestamp of the root
// message it posts.
func (h *harness) slash(user, channel, text string) string {
	h.t.Helper()
	h.deliver(h.fake.SlashCommand(user, channel, text))
	return h.root(user, channel, text)
}

// queuedBehind starts a turn by ana in C1 with "a clock" and, once the
// provider is rendering it (held by options.gate), replies "add a cat" as
// user in its thread, which queues behind it. It returns the thread's root.
func (h *harness) queuedBehind(user string) string {
	h.t.Helper()
	root := h.slash(ana, "C1", "a clock")
	h.fake.WaitFor(h.t, "the first render", func() bool { return len(h.gen.Requests()) == 1 })
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: user, Text: "add a cat", ThreadTS: root})
	h.deliver(envs...)
	return root
}

// root waits for the root message of user's command and returns its ts.
func (h *harness) root(user, channel, text string) string {
	h.t.Helper()
	var ts string
	h.fake.WaitFor(h.t, "the root message", func() bool {
		for _, m := range h.fake.Messages(channel) {
			if m.BotID != "" && m.ThreadTS == "" && m.Text == "<@"+user+">: "+escape(text) {
				ts = m.TS
				return true
			}
		}
		return false
	})
	return ts
}

// images waits until n result images (not previews) were shared and
// returns them in order.
func (h *harness) images(n int) []slacktest.Upload {
	h.t.Helper()
	var ups []slacktest.Upload
	h.fake.WaitFor(h.t, "result images", func() bool {
		ups = nil
		for _, u := range h.fake.Uploads() {
			if u.Completed && strings.HasPrefix(u.Title, "v") {
				ups = append(ups, u)
			}
		}
		return len(ups) >= n
	})
	return ups
}

// buttons waits for the buttons message of version v in the thread and
// returns its ts and the session id its buttons name.
func (h *harness) buttons(channel, root string, v int) (ts, session string) {
	h.t.Helper()
	h.fake.WaitFor(h.t, "buttons", func() bool {
		for _, m := range h.fake.Replies(channel, root) {
			if s, ver, ok := parseValue(buttonsOf(m.Blocks)["regenerate"]); ok && ver == v {
				ts, session = m.TS, s
				return true
			}
		}
		return false
	})
	return ts, session
}

// reacted waits until message ts in channel carries exactly the reactions
// want.
func (h *harness) reacted(channel, ts string, want ...string) {
	h.t.Helper()
	h.fake.WaitFor(h.t, "reactions "+strings.Join(want, ","), func() bool {
		m, _ := h.fake.Message(channel, ts)
		return strings.Join(m.Reactions, ",") == strings.Join(want, ",")
	})
}

// ephemeral waits for an ephemeral message to user containing text.
func (h *harness) ephemeral(user, text string) slacktest.Ephemeral {
	h.t.Helper()
	var found slacktest.Ephemeral
	h.fake.WaitFor(h.t, "an ephemeral message to "+user+" about "+text, func() bool {
		for _, e := range h.fake.Ephemerals() {
			if e.User == user && strings.Contains(e.Text, text) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// settle waits until the engine has no turn left to run and no thread
// shows a status message, so a test can assert that nothing more happens.
func (h *harness) settle() {
	h.t.Helper()
	h.fake.WaitFor(h.t, "idle engine", func() bool {
		jobs, err := h.db.ActiveJobs(context.Background())
		if err != nil || len(jobs) > 0 {
			return false
		}
		c := h.bot.threads
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, th := range c.threads {
			th.mu.Lock()
			busy := th.statusTS != ""
			th.mu.Unlock()
			if busy {
				return false
			}
		}
		return true
	})
}

// buttonsOf returns the values of the buttons in blocks by action_id.
func buttonsOf(blocks json.RawMessage) map[string]string {
	var bs []struct {
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(blocks, &bs)
	values := map[string]string{}
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.Type == "button" {
				values[e.ActionID] = e.Value
			}
		}
	}
	return values
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
