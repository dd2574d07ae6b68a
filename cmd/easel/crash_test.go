package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
	"github.com/easel-bot/easel/storage/s3images/s3test"
)

var (
	crashRounds = flag.Int("crash.rounds", 20, "SIGKILL rounds of TestCrashSafety")
	crashSeed   = flag.Uint64("crash.seed", 0, "random seed of TestCrashSafety (0: from the clock)")
)

// TestCrashSafety runs the real easel binary against the loopback Slack
// fake and kills it with SIGKILL again and again while turns are in flight:
// at random moments, between the steps of Slack's three-step upload, and
// between the upload and its buttons. Then it lets one last process finish,
// stops it with SIGTERM and checks what a team would see: the database
// passes bbolt's check, every delivery Slack saw acknowledged became
// exactly one turn, every turn ended done or failed, every result is in its
// thread exactly once and every failure is told exactly once, and no token
// is in the logs, the database or the image files.
func TestCrashSafety(t *testing.T) {
	bin := buildEasel(t)
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	srv := slacktest.NewServer(t)
	for _, u := range crashUsers {
		srv.AddUser(u, strings.ToLower(u))
	}
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
[slack]
enabled = true
api_url = %q
`, data, srv.APIURL()))
	c := &crasher{t: t, bin: bin, cfg: cfgFile, data: data, srv: srv,
		environ: []string{"SLACK_BOT_TOKEN=" + srv.BotToken, "SLACK_APP_TOKEN=" + srv.AppToken}}

	var sent []sentDelivery
	for round := 1; round <= *crashRounds; round++ {
		p := c.start()
		sent = append(sent, c.fire(rng, round)...)
		switch round % 5 {
		case 1: // after the bytes went up, before files.completeUploadExternal
			c.killAt(p, func(method string, _ map[string]string) bool { return method == "upload" })
		case 2: // after the file was shared, before its buttons
			c.killAt(p, func(method string, params map[string]string) bool {
				return method == "chat.postMessage" && params["blocks"] != ""
			})
		default:
			time.Sleep(time.Duration(50+rng.IntN(1200)) * time.Millisecond)
			p.kill()
			c.kills++
		}
	}

	// The last process finishes everything, then stops gracefully.
	p := c.start()
	c.quiesce()
	if code := p.term(); code != 0 {
		t.Errorf("easel run exited %d after SIGTERM", code)
	}
	c.check(sent)
}

var crashUsers = []string{"UANA", "UBOB", "UCAT"}

// crasher runs easel processes one after another against one fake.
type crasher struct {
	t       *testing.T
	bin     string
	cfg     string
	data    string
	environ []string
	srv     *slacktest.Server

	mu    sync.Mutex
	logs  []*syncBuffer
	conns int
	roots []string // roots of threads that have a result, for replies

	kills, stepKills int
}

// proc is one easel process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int
}

func (c *crasher) start() *proc {
	c.t.Helper()
	logs := &syncBuffer{b: &bytes.Buffer{}}
	cmd := exec.Command(c.bin, "run", "-config", c.cfg)
	cmd.Env = append(os.Environ(), c.environ...)
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
	// Wait for this process's Socket Mode connection, not a dead one's.
	c.srv.WaitFor(c.t, "a new Socket Mode connection", func() bool {
		select {
		case <-p.done:
			c.t.Fatalf("easel exited %d at start:\n%s", p.code, logs.b.String())
		default:
		}
		return c.srv.Connections() > c.conns
	})
	c.conns = c.srv.Connections()
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term stops p with SIGTERM and returns its exit code.
func (p *proc) term() int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		return -1
	}
	return p.code
}

// killAt kills p at the first Web API call matching at, before the fake
// acts on it, or after 3 s if none comes.
func (c *crasher) killAt(p *proc, at func(method string, params map[string]string) bool) {
	var fired atomic.Bool
	c.srv.Intercept(func(method string, params map[string]string) {
		if at(method, params) && fired.CompareAndSwap(false, true) {
			p.kill()
		}
	})
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.kill()
	}
	c.srv.Intercept(nil)
	c.kills++
	if fired.Load() {
		c.stepKills++
	}
}

// sentDelivery is a slash command or thread reply the test sent.
type sentDelivery struct {
	text     string
	envelope string
}

// fire sends a burst of slash commands and replies in threads that have a
// result already.
func (c *crasher) fire(rng *rand.Rand, round int) []sentDelivery {
	c.refreshRoots()
	var out []sentDelivery
	for i := range 3 + rng.IntN(4) {
		user := crashUsers[rng.IntN(len(crashUsers))]
		text := fmt.Sprintf("round %d prompt %d", round, i)
		out = append(out, sentDelivery{text, c.srv.Send(c.t, c.srv.SlashCommand(user, "C1", text))})
	}
	c.mu.Lock()
	roots := append([]string(nil), c.roots...)
	c.mu.Unlock()
	for i := range min(len(roots), rng.IntN(4)) {
		root := roots[rng.IntN(len(roots))]
		text := fmt.Sprintf("round %d change %d", round, i)
		_, envs := c.srv.Post(slacktest.Post{Channel: "C1", User: crashUsers[rng.IntN(len(crashUsers))], Text: text, ThreadTS: root})
		for _, env := range envs {
			out = append(out, sentDelivery{text, c.srv.Send(c.t, env)})
		}
	}
	return out
}

// refreshRoots notes the threads where a result was shared.
func (c *crasher) refreshRoots() {
	roots := resultRoots(c.srv)
	c.mu.Lock()
	c.roots = roots
	c.mu.Unlock()
}

// resultRoots returns the roots of the threads where srv saw a result
// shared, each once.
func resultRoots(srv *slacktest.Server) []string {
	seen := map[string]bool{}
	var roots []string
	for _, u := range srv.Uploads() {
		if u.Completed && u.ThreadTS != "" && !seen[u.ThreadTS] && strings.HasPrefix(u.Title, "v") {
			seen[u.ThreadTS] = true
			roots = append(roots, u.ThreadTS)
		}
	}
	return roots
}

// quiesce waits until the fake has seen no call for 3 s.
func (c *crasher) quiesce() {
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

// check inspects the database and the fake workspace after the last stop.
func (c *crasher) check(sent []sentDelivery) {
	t := c.t
	ctx := context.Background()
	dir := c.data
	db, err := storage.Open(ctx, dir, storage.Options{Timeout: 5 * time.Second})
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

	// Every delivery Slack saw acknowledged is exactly one turn.
	turnsByText := map[string]int{}
	for _, s := range sessions {
		for _, tr := range s.Turns {
			turnsByText[tr.Text]++
		}
	}
	acked := map[string]bool{}
	for _, a := range c.srv.Acks() {
		acked[a.EnvelopeID] = true
	}
	for _, r := range c.srv.Redeliveries() {
		if acked[r.EnvelopeID] {
			acked[r.Of] = true
		}
	}
	lost := 0
	for _, d := range sent {
		n := turnsByText[d.text]
		switch {
		case n > 1:
			t.Errorf("%q became %d turns", d.text, n)
		case n == 0 && acked[d.envelope]:
			t.Errorf("%q was acknowledged but no turn recorded it", d.text)
		case n == 0:
			lost++ // never acknowledged, retries exhausted: Slack gave up, as it does
		}
	}

	// Every turn ended, and what it made is in its thread exactly once.
	shared := map[string]int{}
	for _, u := range c.srv.Uploads() {
		if u.Completed && strings.HasPrefix(u.Title, "v") {
			shared[u.ThreadTS+"/"+u.Filename]++
		}
	}
	var turns, done, failed, images int
	for _, s := range sessions {
		channel, root, _ := strings.Cut(s.Thread, "/")
		replies := c.srv.Replies(channel, root)
		for _, tr := range s.Turns {
			turns++
			if tr.Status.Active() || tr.Posting {
				t.Errorf("session %s turn %d ended %s (posting %v)", s.ID, tr.ID, tr.Status, tr.Posting)
				continue
			}
			if tr.Status == core.StatusFailed {
				failed++
				if n := countText(replies, "❌ "+slackEscape(tr.Error)); n < 1 {
					t.Errorf("session %s turn %d failed (%s) but the thread was not told", s.ID, tr.ID, tr.Error)
				}
				continue
			}
			done++
			for _, v := range tr.Outputs {
				images++
				name := fmt.Sprintf("easel-%s-v%d.png", s.ID, v)
				if n := shared[root+"/"+name]; n != 1 {
					t.Errorf("%s shared %d times in its thread, want once; its log:\n%s", name, n, c.logsOf(s.ID))
				}
				if n := countButtons(replies, fmt.Sprintf("%s:%d", s.ID, v)); n != 1 {
					t.Errorf("buttons of %s v%d posted %d times, want once", s.ID, v, n)
				}
			}
		}
	}
	failures := map[string]int{}
	for _, s := range sessions {
		channel, root, _ := strings.Cut(s.Thread, "/")
		for _, tr := range s.Turns {
			if tr.Status == core.StatusFailed {
				failures[channel+"/"+root+"\x00"+tr.Error]++
			}
		}
	}
	for key, want := range failures {
		thread, msg, _ := strings.Cut(key, "\x00")
		channel, root, _ := strings.Cut(thread, "/")
		if n := countText(c.srv.Replies(channel, root), "❌ "+slackEscape(msg)); n != want {
			t.Errorf("failure %q told %d times in %s, want %d", msg, n, thread, want)
		}
	}

	logs := c.allLogs()
	c.scanSecrets(dir, logs)
	t.Logf("figures: %d rounds, %d SIGKILLs (%d inside an upload), %d deliveries sent, %d redelivered by the fake, "+
		"%d never acknowledged and dropped after %d retries; %d sessions, %d turns (%d done, %d failed), %d images each shared once; "+
		"%d duplicate deliveries ignored, %d deliveries replayed from the inbox, %d results reposted after a crash",
		*crashRounds, c.kills, c.stepKills, len(sent), len(c.srv.Redeliveries()), lost, slacktest.MaxRetries,
		len(sessions), turns, done, failed, images,
		strings.Count(logs, "duplicate delivery ignored"), strings.Count(logs, "handling deliveries an earlier process received"),
		strings.Count(logs, "posting the rest of an ended turn's result"))
}

// logsOf returns the log lines that mention session id.
func (c *crasher) logsOf(id string) string {
	var b strings.Builder
	for _, l := range strings.Split(c.allLogs(), "\n") {
		if strings.Contains(l, id) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (c *crasher) allLogs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.logs {
		l.mu.Lock()
		b.Write(l.b.Bytes())
		l.mu.Unlock()
	}
	return b.String()
}

// scanSecrets fails if a token is in the logs, the database or any stored
// file.
func (c *crasher) scanSecrets(dir, logs string) {
	secrets := []string{c.srv.BotToken, c.srv.AppToken}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			c.t.Errorf("a token appears in the logs")
		}
	}
	scanned := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				c.t.Errorf("a token appears in %s", path)
			}
		}
		return nil
	})
	if err != nil || scanned == 0 {
		c.t.Errorf("scanning the data dir: %d files, %v", scanned, err)
	}
}

func countText(msgs []slacktest.Message, text string) int {
	n := 0
	for _, m := range msgs {
		if m.BotID != "" && !m.Deleted && m.Text == text {
			n++
		}
	}
	return n
}

// countButtons counts the messages whose result buttons carry value (a
// status message's Cancel button is none).
func countButtons(msgs []slacktest.Message, value string) int {
	n := 0
	for _, m := range msgs {
		if m.BotID != "" && !m.Deleted && bytes.Contains(m.Blocks, []byte(`"value":"`+value+`"`)) &&
			bytes.Contains(m.Blocks, []byte(`"action_id":"regenerate"`)) {
			n++
		}
	}
	return n
}

// slackEscape escapes text as Slack's message formatting needs.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// built is the easel binary the process tests run, built once per test
// run into a temp dir that TestMain removes.
var built struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// buildEasel returns the path of an easel binary built from this package.
func buildEasel(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "easel-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "easel")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	s3test.Stop()
	if built.bin != "" {
		_ = os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}
