package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
)

// Routes of the Discord fake the crash test kills at.
const (
	routeCallback    = "POST /interactions/{interaction_id}/{interaction_token}/callback"
	routeStartThread = "POST /channels/{channel_id}/messages/{message_id}/threads"
	routePost        = "POST /channels/{channel_id}/messages"
)

// TestDiscordCrashSafety runs the real easel binary against the loopback
// Discord fake and kills it with SIGKILL again and again while /imagine
// commands, mentions and replies in session threads arrive together: at
// random moments, right after Discord took an interaction's
// acknowledgement (before its turn is recorded), right after a thread was
// started for a recorded turn, and while a result is being posted. People
// keep posting while no process runs. Then it lets one last process finish,
// stops it with SIGTERM and checks what a server would see: the database
// passes bbolt's check, nothing is left pending or unhandled, every
// acknowledged interaction and every mention and reply (also those posted
// while Easel was down, which Discord never resends) became exactly one
// turn, every turn ended done or failed, every result is in its thread
// exactly once and every failure is told exactly once, and the bot token is
// in no log, database or image file.
func TestDiscordCrashSafety(t *testing.T) {
	bin := buildEasel(t)
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	srv.WaitTimeout = time.Minute
	srv.UnlimitedIdentifies = true // twenty kills a minute are the point (see start)
	data := t.TempDir()
	cfgFile := writeFile(t, fmt.Sprintf(`[storage]
dir = %q
[provider]
default = "preview"
[preview]
delay = "120ms"
[engine]
max_concurrent = 4
max_per_user = 100
max_queue = 50
stop_grace = "20s"
[discord]
enabled = true
api_url = %q
guilds = [%q]
message_content = true
`, data, srv.URL(), srv.Guild))
	c := &discordCrasher{t: t, bin: bin, cfg: cfgFile, data: data, srv: srv,
		users: []discordtest.User{srv.Alice, srv.Bob, srv.AddUser("cat")}}

	// One session is made before the first kill, so that from then on the
	// channel is the parent of a recently active session thread, whose
	// missed mentions every start catches up on.
	p := c.start()
	srv.Wait(t, "/imagine to be registered", func() bool { return len(srv.Commands(srv.Guild)) > 0 })
	c.imagine(srv.Alice, "warm-up")
	srv.Wait(t, "the warm-up's result", func() bool { return len(c.resultThreads()) > 0 })

	for round := 1; round <= *crashRounds; round++ {
		if round > 1 {
			c.whileDown(rng, round)
			p = c.start()
		}
		c.fire(rng, round)
		switch round % 4 {
		case 1: // Discord took the acknowledgement; the turn is not recorded yet
			c.killAt(p, func(call discordtest.Call) bool { return call.Route == routeCallback && call.Status/100 == 2 })
		case 2: // the turn is recorded and its thread just started
			c.killAt(p, func(call discordtest.Call) bool { return call.Route == routeStartThread && call.Status/100 == 2 })
		case 3: // a result is being posted
			c.killAt(p, func(call discordtest.Call) bool { return call.Route == routePost && len(call.Files) > 0 })
		default:
			time.Sleep(time.Duration(50+rng.IntN(1200)) * time.Millisecond)
			p.kill()
			c.kills++
		}
	}

	// The last process catches up, finishes everything and stops.
	c.whileDown(rng, *crashRounds+1)
	p = c.start()
	c.quiesce()
	if code := p.term(); code != 0 {
		t.Errorf("easel run exited %d after SIGTERM", code)
	}
	c.check()
}

// discordCrasher runs easel processes one after another against one
// Discord fake.
type discordCrasher struct {
	t     *testing.T
	bin   string
	cfg   string
	data  string
	srv   *discordtest.Server
	users []discordtest.User

	mu   sync.Mutex
	logs []*syncBuffer

	interactions []string            // ids of the /imagine commands sent
	asked        map[string]struct{} // texts of the mentions and replies posted

	kills, stepKills, whileDownPosts int
}

// start starts a process and waits until it is connected to the gateway.
// The bot paces its IDENTIFYs so that a crash loop cannot use up Discord's
// daily budget (bots/discord tests that); here twenty kills a minute are the
// point, so the IDENTIFYs recorded so far are forgotten first.
func (c *discordCrasher) start() *proc {
	c.t.Helper()
	c.forgetIdentifies()
	identified := len(c.srv.Identifies())
	logs := &syncBuffer{b: &bytes.Buffer{}}
	cmd := exec.Command(c.bin, "run", "-config", c.cfg)
	cmd.Env = append(os.Environ(), "DISCORD_BOT_TOKEN="+c.srv.Token)
	cmd.Stderr, cmd.Stdout = logs, logs
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	c.mu.Lock()
	c.logs = append(c.logs, logs)
	c.mu.Unlock()
	c.srv.Wait(c.t, "a new gateway connection", func() bool {
		select {
		case <-p.done:
			c.t.Fatalf("easel exited %d at start:\n%s", p.code, logs.String())
		default:
		}
		return len(c.srv.Identifies()) > identified && c.srv.Connected()
	})
	return p
}

// identifyName is the name under which the Discord adapter records its
// IDENTIFYs.
const identifyName = "discord:identify"

// forgetIdentifies leaves one IDENTIFY on record, a month old, and forgets
// the later ones: RecordStart forgets every start before at-keep, here a
// moment from now.
func (c *discordCrasher) forgetIdentifies() {
	ctx := context.Background()
	db, err := storage.Open(ctx, c.data, storage.Options{Timeout: 5 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	month := 30 * 24 * time.Hour
	if _, err := db.RecordStart(ctx, identifyName, time.Now().Add(-month), -month-time.Second); err != nil {
		c.t.Fatal(err)
	}
}

// killAt kills p at the first REST call matching at, once the fake has
// acted on it and before the bot reads the answer, or after 3 s if none
// comes.
func (c *discordCrasher) killAt(p *proc, at func(discordtest.Call) bool) {
	var fired atomic.Bool
	c.srv.AfterCall(func(call discordtest.Call) {
		if at(call) && fired.CompareAndSwap(false, true) {
			p.kill()
		}
	})
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.kill()
	}
	c.srv.AfterCall(nil)
	c.kills++
	if fired.Load() {
		c.stepKills++
	}
}

// imagine runs /imagine as user with a prompt, and returns the
// interaction.
func (c *discordCrasher) imagine(user discordtest.User, prompt string) discordtest.Interaction {
	ic := c.srv.Command(c.t, user, c.srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: prompt})
	c.mu.Lock()
	c.interactions = append(c.interactions, ic.ID)
	c.mu.Unlock()
	return ic
}

// ask posts a mention in the channel, or a reply in a session thread, and
// notes its text.
func (c *discordCrasher) ask(user discordtest.User, channel, text string, mention bool) {
	c.srv.Post(discordtest.Draft{From: user, Channel: channel, Content: text, Mention: mention})
	c.mu.Lock()
	if c.asked == nil {
		c.asked = map[string]struct{}{}
	}
	c.asked[text] = struct{}{}
	c.mu.Unlock()
}

// fire sends a burst at a running process: /imagine commands, mentions in
// the channel, replies in threads that have a result.
func (c *discordCrasher) fire(rng *rand.Rand, round int) {
	for i := range 2 + rng.IntN(3) {
		c.imagine(c.users[rng.IntN(len(c.users))], fmt.Sprintf("round %d imagine %d", round, i))
	}
	c.mentionsAndReplies(rng, round, "", 1+rng.IntN(2), rng.IntN(4))
}

// whileDown posts mentions and replies while no process runs: Discord will
// not resend them.
func (c *discordCrasher) whileDown(rng *rand.Rand, round int) {
	mentions, replies := rng.IntN(2), rng.IntN(3)
	c.mentionsAndReplies(rng, round, "missed ", mentions, replies)
	c.whileDownPosts += mentions + replies
}

func (c *discordCrasher) mentionsAndReplies(rng *rand.Rand, round int, prefix string, mentions, replies int) {
	for i := range mentions {
		c.ask(c.users[rng.IntN(len(c.users))], c.srv.Channel, fmt.Sprintf("%sround %d mention %d", prefix, round, i), true)
	}
	// Replies go to the threads made lately: a start catches up on the 50
	// most recently active threads of a guild.
	threads := c.resultThreads()
	threads = threads[max(0, len(threads)-20):]
	for i := range min(len(threads), replies) {
		thread := threads[rng.IntN(len(threads))]
		c.ask(c.users[rng.IntN(len(c.users))], thread, fmt.Sprintf("%sround %d reply %d", prefix, round, i), false)
	}
}

// resultThreads returns the threads of the channel holding a result,
// oldest first.
func (c *discordCrasher) resultThreads() []string {
	var out []string
	for _, th := range c.srv.Threads(c.srv.Channel) {
		if slices.ContainsFunc(c.srv.Messages(th.ID), func(m discordtest.Message) bool { return c.isResult(m) }) {
			out = append(out, th.ID)
		}
	}
	return out
}

// isResult reports whether m is one of Easel's results: its buttons, not
// a status message's Cancel.
func (c *discordCrasher) isResult(m discordtest.Message) bool {
	return m.Author.ID == c.srv.Bot.ID && len(m.Buttons()) > 0 && !strings.HasPrefix(m.Buttons()[0].CustomID, "easel:cancel:")
}

// quiesce waits until the fake has seen no REST call for 3 s.
func (c *discordCrasher) quiesce() {
	deadline := time.Now().Add(3 * time.Minute)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		n := len(c.srv.Calls(""))
		if n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) > 3*time.Second {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Error("easel was still busy 3 minutes after the last restart")
}

// check inspects the database and the fake server after the last stop.
func (c *discordCrasher) check() {
	t := c.t
	ctx := context.Background()
	db, err := storage.Open(ctx, c.data, storage.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(ctx); err != nil {
		t.Errorf("bbolt check after %d kills: %v", c.kills, err)
	}
	if jobs, err := db.ActiveJobs(ctx); err != nil || len(jobs) != 0 {
		t.Errorf("turns still pending after the final stop: %v %v", jobs, err)
	}
	if left, err := db.Unhandled(ctx); err != nil || len(left) != 0 {
		t.Errorf("deliveries still unhandled after the final stop: %d %v", len(left), err)
	}
	sessions, err := db.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Every acknowledged interaction, every mention and every reply is
	// exactly one turn.
	turnsByText := map[string]int{}
	for _, s := range sessions {
		for _, tr := range s.Turns {
			turnsByText[tr.Text]++
		}
	}
	acked, unacked, unackedHandled := 0, 0, 0
	for _, id := range c.interactions {
		ic := c.srv.GetInteraction(id)
		var prompt string
		if err := jsonPrompt(c.srv.InteractionPayload(id), &prompt); err != nil {
			t.Fatal(err)
		}
		n := turnsByText[prompt]
		switch {
		case n > 1:
			t.Errorf("/imagine %q became %d turns", prompt, n)
		case ic.AckType != 0 && n == 0:
			t.Errorf("/imagine %q was acknowledged but no turn recorded it", prompt)
		case ic.AckType != 0:
			acked++
		default:
			unacked++ // the process died before it could answer: Discord told the user it failed
			unackedHandled += n
		}
	}
	for text := range c.asked {
		if n := turnsByText[text]; n != 1 {
			t.Errorf("%q became %d turns, want 1", text, n)
		}
	}

	// Every turn ended, and what it made is in its thread exactly once.
	var turns, done, failed, images int
	for _, s := range sessions {
		msgs := c.srv.Messages(s.Thread)
		for _, tr := range s.Turns {
			turns++
			if tr.Status.Active() || tr.Posting {
				t.Errorf("session %s turn %d ended %s (posting %v)", s.ID, tr.ID, tr.Status, tr.Posting)
				continue
			}
			if tr.Status == core.StatusFailed {
				failed++
				continue
			}
			done++
			for _, v := range tr.Outputs {
				images++
				id := "easel:regenerate:" + s.ID + ":" + strconv.Itoa(v)
				n := 0
				for _, m := range msgs {
					if c.isResult(m) && slices.ContainsFunc(m.Buttons(), func(b discordtest.Component) bool { return b.CustomID == id }) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("result v%d of session %s posted %d times in its thread, want once; its log:\n%s", v, s.ID, n, c.logsOf(s.ID))
				}
			}
		}
	}
	for _, s := range sessions {
		want := map[string]int{}
		for _, tr := range s.Turns {
			if tr.Status == core.StatusFailed {
				want["❌ "+tr.Error]++
			}
		}
		for text, n := range want {
			got := 0
			for _, m := range c.srv.Messages(s.Thread) {
				if m.Author.ID == c.srv.Bot.ID && m.Content == text {
					got++
				}
			}
			if got != n {
				t.Errorf("failure %q told %d times in thread %s, want %d", text, got, s.Thread, n)
			}
		}
	}

	logs := c.allLogs()
	c.scanSecrets(logs)
	t.Logf("figures: %d rounds, %d SIGKILLs (%d at a step: after an acknowledgement, a thread start or inside a result post); "+
		"%d /imagine (%d acknowledged, %d never acknowledged, of which %d handled from the inbox all the same), "+
		"%d mentions and replies (%d posted while no process ran); %d sessions, %d turns (%d done, %d failed), %d images each posted once; "+
		"%d duplicate deliveries dropped (and %d messages a catch-up read again), %d deliveries replayed from the inbox, %d missed messages caught up on, "+
		"%d results reposted after a crash, %d threads started after a crash",
		*crashRounds, c.kills, c.stepKills, len(c.interactions), acked, unacked, unackedHandled,
		len(c.asked), c.whileDownPosts, len(sessions), turns, done, failed, images,
		strings.Count(logs, "duplicate delivery ignored"), sumCounts(logs, "read back the messages posted while Easel was away", "known"), sumCounts(logs, "handling deliveries an earlier process received", "count"),
		sumCounts(logs, "read back the messages posted while Easel was away", "handled"),
		strings.Count(logs, "posting the rest of an ended turn's result"),
		strings.Count(logs, "started the thread of a session an earlier process recorded"))
}

// jsonPrompt reads the prompt option of an /imagine interaction payload.
func jsonPrompt(payload []byte, prompt *string) error {
	var ic struct {
		Data struct {
			Options []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"options"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ic); err != nil {
		return fmt.Errorf("interaction payload: %w", err)
	}
	for _, o := range ic.Data.Options {
		if o.Name == "prompt" {
			*prompt = o.Value
			return nil
		}
	}
	return fmt.Errorf("no prompt in %s", payload)
}

// sumCounts adds up the numbers given as key= in the log lines with msg.
func sumCounts(logs, msg, key string) int {
	total := 0
	re := regexp.MustCompile(`\b` + key + `=(\d+)`)
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}

// logsOf returns the log lines that mention session id.
func (c *discordCrasher) logsOf(id string) string {
	var b strings.Builder
	for _, l := range strings.Split(c.allLogs(), "\n") {
		if strings.Contains(l, id) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (c *discordCrasher) allLogs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.logs {
		b.WriteString(l.String())
	}
	return b.String()
}

// scanSecrets fails if the bot token is in the logs, the database or any
// stored file.
func (c *discordCrasher) scanSecrets(logs string) {
	token := c.srv.Token
	if strings.Contains(logs, token) {
		c.t.Errorf("the bot token appears in the logs")
	}
	scanned := 0
	err := filepath.WalkDir(c.data, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		if bytes.Contains(b, []byte(token)) {
			c.t.Errorf("the bot token appears in %s", path)
		}
		return nil
	})
	if err != nil || scanned == 0 {
		c.t.Errorf("scanning the data dir: %d files, %v", scanned, err)
	}
}
