package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/openaitest"
	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
	"github.com/easel-bot/easel/storage/s3images"
	"github.com/easel-bot/easel/storage/s3images/s3test"
)

var (
	chaosRounds = flag.Int("chaos.rounds", 8, "rounds of TestReplicaChaos (the long form: 40)")
	chaosSeed   = flag.Uint64("chaos.seed", 0, "random seed of TestReplicaChaos (0: from the clock)")
)

// Settings of the replica chaos test.
const (
	chaosReplicas  = 3
	chaosLease     = 3 * time.Second        // storage.lease of the replicas
	chaosSlots     = 2                      // engine.max_concurrent: provider calls in flight over all replicas
	chaosProvider  = 300 * time.Millisecond // how long each image takes
	chaosSlackWait = 3 * time.Second        // Slack's deadline for an answer in http mode
)

// TestReplicaChaos runs three replicas of the real easel binary on one
// PostgreSQL database and one S3 server (versitygw), serving Slack in http
// mode behind a loopback load balancer, with the OpenAI fake as provider,
// while many users start sessions and refine them in their threads. Every
// round SIGKILLs a replica at a random moment, or right before it completes
// an upload, or before a result's buttons, or freezes one (SIGSTOP) for
// longer than its lease, and brings it back. Then it lets the replicas
// finish, stops them with SIGTERM, and checks what a team would see: every
// request Slack saw acknowledged became exactly one turn, every result is
// in its thread exactly once, every failure told once, turns of a session
// ran one after another, the provider never had more calls in flight than
// engine.max_concurrent, the usage counters match the turns, no turn or
// delivery is left pending, every stored image's hash matches, and no
// secret reached the logs.
//
// The short form runs in CI; -args -chaos.rounds=40 is the long form.
func TestReplicaChaos(t *testing.T) {
	bin := buildEasel(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -chaos.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	pgURL := pgtest.Start(t).DB(t)
	s3 := s3test.Start(t)
	bucket := s3.Bucket() // a new one on each call
	slack := slacktest.NewServer(t)
	for _, u := range crashUsers {
		slack.AddUser(u, strings.ToLower(u))
	}
	ai := openaitest.NewServer(t)
	provider := newMeteredProxy(t, ai.URL())
	discord := discordtest.NewServer(t)
	discord.MessageContentAllowed = true
	discord.Shards, discord.MaxConcurrency = 2, 2
	discord.HeartbeatInterval = time.Second
	discord.WaitTimeout = 2 * time.Minute
	// A guild on each shard, each with its #general.
	channels := map[int]string{discordtest.ShardOf(discord.Guild, 2): discord.Channel}
	guilds := []string{discord.Guild}
	for len(channels) < 2 {
		time.Sleep(time.Millisecond)
		g, ch := discord.AddGuild("Other", 0)
		if _, ok := channels[discordtest.ShardOf(g, 2)]; !ok {
			channels[discordtest.ShardOf(g, 2)] = ch
			guilds = append(guilds, g)
		}
	}

	c := &cluster{t: t, bin: bin, slack: slack, discord: discord, channels: channels, guilds: guilds, provider: provider, environ: []string{
		"EASEL_POSTGRES_URL=" + pgURL,
		"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey,
		"SLACK_BOT_TOKEN=" + slack.BotToken, "SLACK_SIGNING_SECRET=" + slack.SigningSecret,
		"OPENAI_API_KEY=sk-chaos-test-key", "OPENAI_BASE_URL=" + provider.URL(),
		"DISCORD_BOT_TOKEN=" + discord.Token,
	}}
	c.secrets = []string{slack.BotToken, slack.SigningSecret, s3.SecretKey, "sk-chaos-test-key", discord.Token}
	for i := range chaosReplicas {
		r := &replica{n: i + 1, api: newStepKiller(t, slack.APIURL())}
		r.api.onKill = func() { provider.gone(r.n) }
		r.addr = freeAddr(t)
		r.cfg = writeFile(t, fmt.Sprintf(`[storage]
backend = "postgres"
dir = %q
lease = %q
[images]
backend = "s3"
s3_endpoint = %q
s3_bucket = %q
s3_region = %q
[provider]
default = "openai"
[engine]
max_concurrent = %d
max_per_user = 100
max_queue = 50
stop_grace = "20s"
admins = ["UANA", "UBOB", "UCAT"] # anyone may press any result's buttons
[log]
level = "debug"
[slack]
enabled = true
mode = "http"
listen = %q
api_url = %q
[discord]
enabled = true
api_url = %q
guilds = [%q, %q]
message_content = true
shards = "auto"
`, t.TempDir(), chaosLease, s3.Endpoint, bucket, s3.Region, chaosSlots, r.addr, r.api.URL()+"/api/",
			discord.URL(), guilds[0], guilds[1]))
		c.replicas = append(c.replicas, r)
	}
	lb := newBalancer(t, c)
	for _, r := range c.replicas {
		c.start(r)
	}
	discord.Wait(t, "both Discord shards to be connected", func() bool { return len(discord.LiveShards(2)) == 2 })

	for round := 1; round <= *chaosRounds; round++ {
		c.fire(rng, lb.URL, round)
		r := c.replicas[rng.IntN(len(c.replicas))]
		switch round % 4 {
		case 1: // after the bytes went up, before files.completeUploadExternal
			c.killAt(r, "files.completeUploadExternal", false)
		case 2: // after the file was shared, before its buttons
			c.killAt(r, "chat.postMessage", true)
		case 3: // frozen for longer than its lease, then thawed
			time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
			c.freeze(r, chaosLease+time.Second)
		default:
			time.Sleep(time.Duration(100+rng.IntN(1200)) * time.Millisecond)
			r.p.kill()
			c.provider.gone(r.n)
			c.event("replica %d killed", r.n)
			c.kills++
		}
		if !r.p.alive() {
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			c.start(r)
		}
	}

	c.firing.Wait()
	if !c.quiesce() {
		c.diagnose(pgURL) // and the replicas are gone
	}
	for _, r := range c.replicas {
		if code := r.p.term(); code != 0 && !t.Failed() {
			t.Errorf("replica %d exited %d after SIGTERM", r.n, code)
		}
	}
	c.check(pgURL, s3, bucket, provider)
}

// cluster runs the replicas.
type cluster struct {
	t        *testing.T
	bin      string
	environ  []string
	secrets  []string
	slack    *slacktest.Server
	discord  *discordtest.Server
	channels map[int]string // a guild channel on each Discord shard
	guilds   []string
	provider *meteredProxy
	events   []string // kills, freezes and starts, timed
	replicas []*replica

	firing sync.WaitGroup // deliveries being sent

	mu       sync.Mutex
	logs     []*syncBuffer
	logNames []string // which replica wrote each of logs, and when it started
	roots    []string
	sent     []chaosDelivery
	clicks   []chaosDelivery // Regenerate pressed under a result
	mentions []string        // sent on Discord: each must become one turn

	kills, stepKills, freezes int
}

// chaosDelivery is a slash command or thread reply the test sent.
type chaosDelivery struct {
	text  string
	acked bool   // a replica answered 200 to one of its attempts
	by    string // which, and when
}

// replica is one easel run process, restarted under the same config.
type replica struct {
	n    int
	cfg  string
	addr string      // where it serves Slack's requests
	api  *stepKiller // its way to the Slack Web API
	p    *chaosProc  // the process running now
}

// chaosProc is one process of a replica.
type chaosProc struct {
	proc
}

func (p *chaosProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// start starts r's process and waits until it serves http.
func (c *cluster) start(r *replica) {
	c.t.Helper()
	logs := &syncBuffer{b: &bytes.Buffer{}}
	cmd := exec.Command(c.bin, "run", "-config", r.cfg)
	cmd.Env = append(os.Environ(), c.environ...)
	if c.provider != nil {
		cmd.Env = append(cmd.Env, "OPENAI_BASE_URL="+c.provider.URLFor(r.n))
	}
	cmd.Stderr, cmd.Stdout = logs, logs
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.event("replica %d started", r.n)
	p := &chaosProc{proc{cmd: cmd, done: make(chan struct{})}}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	c.mu.Lock()
	c.logs = append(c.logs, logs)
	c.logNames = append(c.logNames, fmt.Sprintf("replica %d, started %s", r.n, time.Now().Format(time.StampMilli)))
	c.mu.Unlock()
	r.api.target(p)
	deadline := time.Now().Add(time.Minute)
	for {
		if !p.alive() {
			c.t.Fatalf("replica %d exited %d at start:\n%s", r.n, p.code, logs.b.String())
		}
		if conn, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replica %d does not listen on %s:\n%s", r.n, r.addr, logs.b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.p = p
}

// killAt kills r right before it makes the Web API call method (with a
// result's buttons, if withBlocks), or after 3 s if none comes.
func (c *cluster) killAt(r *replica, method string, withBlocks bool) {
	fired := r.api.killBefore(method, withBlocks)
	select {
	case <-r.p.done:
	case <-time.After(3 * time.Second):
		r.p.kill()
		c.provider.gone(r.n)
		c.event("replica %d killed (no step came)", r.n)
	}
	r.api.killBefore("", false)
	c.event("replica %d killed before %s (at that step: %v)", r.n, method, fired.Load())
	c.kills++
	if fired.Load() {
		c.stepKills++
	}
}

// freeze stops r with SIGSTOP for d, then lets it go on.
func (c *cluster) freeze(r *replica, d time.Duration) {
	_ = r.p.cmd.Process.Signal(syscall.SIGSTOP)
	c.event("replica %d frozen", r.n)
	time.Sleep(d)
	_ = r.p.cmd.Process.Signal(syscall.SIGCONT)
	c.event("replica %d thawed", r.n)
	c.freezes++
}

// fire sends, through the load balancer at base, a burst of slash
// commands and replies in threads that have a result, each retried as Slack
// retries. They are sent in the background: the round's fault hits while
// the replicas record and run them.
func (c *cluster) fire(rng *rand.Rand, base string, round int) {
	c.refreshRoots()
	c.mu.Lock()
	roots := slices.Clone(c.roots)
	c.mu.Unlock()
	send := func(text string, env slacktest.Envelope) {
		c.firing.Go(func() {
			acked, by := c.deliver(base, env)
			c.mu.Lock()
			if text == "" {
				c.clicks = append(c.clicks, chaosDelivery{acked: acked, by: by})
			} else {
				c.sent = append(c.sent, chaosDelivery{text: text, acked: acked, by: by})
			}
			c.mu.Unlock()
		})
	}
	for range min(len(roots), rng.IntN(3)) {
		root := roots[rng.IntN(len(roots))]
		for _, m := range c.slack.Replies("C1", root) {
			if m.BotID != "" && !m.Deleted && bytes.Contains(m.Blocks, []byte(`"action_id":"regenerate"`)) {
				send("", c.slack.Click(c.t, crashUsers[rng.IntN(len(crashUsers))], "C1", m.TS, "regenerate"))
				break
			}
		}
	}
	for i := range 4 + rng.IntN(4) {
		text := fmt.Sprintf("round %d prompt %d", round, i)
		send(text, c.slack.SlashCommand(crashUsers[rng.IntN(len(crashUsers))], "C1", text))
	}
	if c.discord != nil {
		// A mention on each shard: Discord sends it to whichever replica
		// holds the shard, or to none (a replica that holds it died), and
		// then the next holder reads it back when it connects.
		for shard, channel := range c.channels {
			text := fmt.Sprintf("round %d discord %d", round, shard)
			c.discord.Mention(c.discord.Alice, channel, text)
			c.mu.Lock()
			c.mentions = append(c.mentions, text)
			c.mu.Unlock()
		}
	}
	for i := range min(len(roots), rng.IntN(5)) {
		text := fmt.Sprintf("round %d change %d", round, i)
		_, envs := c.slack.Post(slacktest.Post{Channel: "C1", User: crashUsers[rng.IntN(len(crashUsers))],
			Text: text, ThreadTS: roots[rng.IntN(len(roots))]})
		for _, env := range envs {
			send(text, env)
		}
	}
}

// deliver posts env as Slack does in http mode, retrying up to
// slacktest.MaxRetries times after an error, a timeout or an answer other
// than 200, and reports whether a replica acknowledged it, and which.
func (c *cluster) deliver(base string, env slacktest.Envelope) (bool, string) {
	client := &http.Client{Timeout: chaosSlackWait}
	for attempt := range slacktest.MaxRetries + 1 {
		env.RetryAttempt = attempt
		req, err := c.slack.HTTPRequest(base, env, slacktest.Signing{})
		if err != nil {
			c.t.Error(err)
			return false, ""
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, fmt.Sprintf("replica %s at %s, attempt %d", resp.Header.Get("X-Chaos-Replica"), time.Now().Format(time.StampMilli), attempt)
			}
		}
		time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
	}
	return false, ""
}

// refreshRoots notes the threads where a result was shared.
func (c *cluster) refreshRoots() {
	roots := resultRoots(c.slack)
	c.mu.Lock()
	c.roots = roots
	c.mu.Unlock()
}

// quiesce waits until both Discord shards are connected and the fakes
// have seen no call for two leases since: long enough for a live replica
// to take up what a dead one left, and for a shard that waited for its
// turn to IDENTIFY to read back what was posted while no one held it. It
// reports whether they did.
func (c *cluster) quiesce() bool {
	deadline := time.Now().Add(4 * time.Minute)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		n := len(c.slack.Calls("")) + len(c.discord.Calls(""))
		if n != last || len(c.discord.LiveShards(2)) < 2 {
			last, since = n, time.Now()
		}
		if time.Since(since) > 2*chaosLease {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	var calls []string
	for _, call := range c.slack.Calls("") {
		calls = append(calls, call.At.Format(time.StampMilli)+" slack "+call.Method+" "+call.Error)
	}
	for _, call := range c.discord.Calls("") {
		calls = append(calls, call.At.Format(time.StampMilli)+" discord "+call.Route)
	}
	slices.Sort(calls)
	c.t.Errorf("the replicas were still busy 4 minutes after the last round (Discord shards live: %v); the last calls:\n%s",
		c.discord.LiveShards(2), strings.Join(calls[max(0, len(calls)-30):], "\n"))
	return false
}

// diagnose shows what holds the limits in the database, and where the
// replicas' goroutines that have waited for a minute or more are, from the
// dump each writes when it gets SIGQUIT (and exits).
func (c *cluster) diagnose(pgURL string) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if db, err := pgx.Connect(ctx, pgURL); err != nil {
		t.Logf("diagnose: %v", err)
	} else {
		for _, q := range []string{
			"SELECT slot, holder, expires_at - now(), easel_holder_alive(holder) FROM provider_slots WHERE holder IS NOT NULL",
			"SELECT session_id, holder, token, expires_at - now(), easel_holder_alive(holder) FROM session_leases",
			"SELECT holder, count(*), max(held_until) - now() FROM inbox GROUP BY holder",
		} {
			rows, err := db.Query(ctx, q)
			if err != nil {
				t.Logf("diagnose: %s: %v", q, err)
				continue
			}
			var out []string
			for rows.Next() {
				vals, _ := rows.Values()
				out = append(out, fmt.Sprint(vals...))
			}
			rows.Close()
			t.Logf("%s:\n%s", q, strings.Join(out, "\n"))
		}
		_ = db.Close(ctx)
	}
	for _, r := range c.replicas {
		if !r.p.alive() {
			continue
		}
		c.mu.Lock()
		logs := c.logs[len(c.logs)-1] // of r's process only if it started last; found below
		for i := len(c.logs) - 1; i >= 0; i-- {
			if strings.HasPrefix(c.logNames[i], fmt.Sprintf("replica %d,", r.n)) {
				logs = c.logs[i]
				break
			}
		}
		c.mu.Unlock()
		_ = r.p.cmd.Process.Signal(syscall.SIGQUIT)
		<-r.p.done
		stacks := map[string]int{} // by their functions, without arguments
		for _, g := range strings.Split(logs.String(), "\n\ngoroutine ")[1:] {
			head, frames, _ := strings.Cut(g, "\n")
			if !strings.Contains(head, "minutes]") || !strings.Contains(frames, "easel-bot/easel/") {
				continue
			}
			var funcs []string
			for _, l := range strings.Split(frames, "\n") {
				if l != "" && !strings.HasPrefix(l, "\t") {
					funcs = append(funcs, "  "+l[:max(strings.LastIndex(l, "("), 0)])
				}
			}
			stacks[strings.Join(funcs, "\n")]++
		}
		for stack, n := range stacks {
			t.Logf("replica %d: %d goroutines waiting a minute or more in:\n%s", r.n, n, stack)
		}
	}
}

// check inspects the database, the bucket and the Slack workspace once
// every replica has stopped.
func (c *cluster) check(pgURL string, s3 *s3test.Server, bucket string, provider *meteredProxy) {
	t := c.t
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgURL, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	images, err := s3images.Open(ctx, s3images.Config{Endpoint: s3.Endpoint, Bucket: bucket, Region: s3.Region,
		AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
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

	// Every delivery a replica acknowledged is exactly one turn.
	turnsByText := map[string]int{}
	for _, s := range sessions {
		for _, tr := range s.Turns {
			turnsByText[tr.Text]++
		}
	}
	for _, text := range c.mentions {
		if n := turnsByText[text]; n != 1 {
			t.Errorf("the Discord mention %q became %d turns, want 1", text, n)
		}
	}
	regenerated, ackedClicks := 0, 0
	for _, s := range sessions {
		for _, tr := range s.Turns {
			if tr.Action == core.ActionRegenerate {
				regenerated++
			}
		}
	}
	for _, d := range c.clicks {
		if d.acked {
			ackedClicks++
		}
	}
	if regenerated < ackedClicks || regenerated > len(c.clicks) {
		t.Errorf("%d Regenerate presses (%d acknowledged) became %d turns", len(c.clicks), ackedClicks, regenerated)
	}
	lost := 0
	for _, d := range c.sent {
		switch n := turnsByText[d.text]; {
		case n > 1:
			t.Errorf("%q became %d turns", d.text, n)
		case n == 0 && d.acked:
			t.Errorf("%q was acknowledged (by %s) but no turn recorded it", d.text, d.by)
		case n == 0:
			lost++ // never acknowledged, retries exhausted: Slack gives up, as it does
		}
	}

	// Every turn ended, in its session's order, and what it made is in its
	// thread exactly once, its bytes whole in the bucket.
	shared := map[string]int{}
	for _, u := range c.slack.Uploads() {
		if u.Completed && strings.HasPrefix(u.Title, "v") {
			shared[u.ThreadTS+"/"+strings.TrimSuffix(u.Filename, filepath.Ext(u.Filename))]++
		}
	}
	var done, failed, outputs int64
	for _, s := range sessions {
		if s.Platform == "discord" {
			done, failed, outputs = c.checkDiscord(s, done, failed, outputs)
			continue
		}
		channel, root, _ := strings.Cut(s.Thread, "/")
		replies := c.slack.Replies(channel, root)
		var prev *core.Turn
		for i := range s.Turns {
			tr := &s.Turns[i]
			if tr.Status.Active() || tr.Posting {
				t.Errorf("session %s turn %d ended %s (posting %v)", s.ID, tr.ID, tr.Status, tr.Posting)
				continue
			}
			if prev != nil && !tr.StartedAt.IsZero() && !prev.FinishedAt.IsZero() && tr.StartedAt.Before(prev.FinishedAt) {
				t.Errorf("session %s: turn %d started at %s, before turn %d finished at %s", s.ID, tr.ID,
					tr.StartedAt.Format(time.StampMicro), prev.ID, prev.FinishedAt.Format(time.StampMicro))
			}
			prev = tr
			if tr.Status == core.StatusFailed {
				failed++
				if n := countText(replies, "❌ "+slackEscape(tr.Error)); n < 1 {
					t.Errorf("session %s turn %d failed (%s) but the thread was not told", s.ID, tr.ID, tr.Error)
				}
				continue
			}
			done++
			for _, v := range tr.Outputs {
				outputs++
				name := fmt.Sprintf("easel-%s-v%d", s.ID, v) // whatever the format
				if n := shared[root+"/"+name]; n != 1 {
					t.Errorf("%s shared %d times in its thread, want once", name, n)
				}
				if n := countButtons(replies, fmt.Sprintf("%s:%d", s.ID, v)); n != 1 {
					t.Errorf("buttons of %s v%d posted %d times, want once", s.ID, v, n)
				}
				if _, err := images.Get(ctx, s.Version(v).Image); err != nil {
					t.Errorf("%s v%d: %v", s.ID, v, err)
				}
			}
		}
	}

	// The usage counters, which the quotas read, count each done turn once.
	var used core.UsageTotals
	for _, w := range append([]string{"slack\x00" + c.slack.TeamID}, c.guilds...) {
		platform, id, _ := strings.Cut(w, "\x00")
		if platform != "slack" {
			platform, id = "discord", w
		}
		u, err := db.UsageTotals(ctx, core.WorkspaceMonthKey(platform, id, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		used.Turns, used.Images = used.Turns+u.Turns, used.Images+u.Images
	}
	if used.Turns != done || used.Images != outputs {
		t.Errorf("usage counted %d turns and %d images; the sessions hold %d done turns with %d images", used.Turns, used.Images, done, outputs)
	}
	if peak := provider.peak.Load(); peak > chaosSlots {
		t.Errorf("%d provider calls were in flight at once over the replicas, above engine.max_concurrent = %d:\n%s\nwhile:\n%s",
			peak, chaosSlots, strings.Join(provider.peaks, "\n"), strings.Join(c.events, "\n"))
	}

	c.mu.Lock()
	var all strings.Builder
	for i, l := range c.logs {
		fmt.Fprintf(&all, "=== %s\n%s", c.logNames[i], l.b.String())
	}
	c.mu.Unlock()
	logs := all.String()
	if t.Failed() {
		for _, e := range c.slack.Ephemerals() {
			t.Logf("told privately: %s in %s/%s: %q", e.User, e.Channel, e.ThreadTS, e.Text)
		}
		t.Logf("the replicas' logs, last 20,000 bytes:\n%s", logs[max(0, len(logs)-20000):])
		if path := os.Getenv("EASEL_CHAOS_LOGS"); path != "" { // all of them, for a closer look
			_ = os.WriteFile(path, []byte(logs), 0o600)
		}
	}
	for _, s := range c.secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret appears in the logs")
		}
	}
	acked := 0
	for _, d := range c.sent {
		if d.acked {
			acked++
		}
	}
	t.Logf("figures: %d replicas, %d rounds, %d SIGKILLs (%d at an upload step), %d freezes past the lease; "+
		"%d deliveries sent, %d acknowledged, %d never acknowledged, %d Discord mentions, %d Regenerate presses; %d sessions, %d turns done, %d failed, %d images each shared once; "+
		"provider calls in flight at most %d (cap %d), %d in all; %d deliveries dropped as another's, %d taken up from a stopped replica",
		chaosReplicas, *chaosRounds, c.kills, c.stepKills, c.freezes, len(c.sent), acked, lost, len(c.mentions), len(c.clicks), len(sessions), done, failed, outputs,
		provider.peak.Load(), chaosSlots, provider.calls.Load(),
		strings.Count(logs, "another Easel process handles"), strings.Count(logs, "handling deliveries an earlier process received"))
}

// meteredProxy forwards the provider's requests, counting those in
// flight at once; it can hold them, and tells when each arrives.
type meteredProxy struct {
	srv            *httptest.Server
	inFlight, peak atomic.Int64
	calls          atomic.Int64
	held           atomic.Pointer[chan struct{}] // while set, requests wait for it to close
	arrived        chan time.Time                // each request's arrival, if there is room

	mu    sync.Mutex
	by    map[string]int                   // calls in flight by replica
	ends  map[string]map[*sync.Once]func() // how to end each, by replica
	peaks []string                         // who was in flight at each new peak
}

// gone ends the calls in flight of replica n, which the test killed: a
// dead process calls nothing, though the proxy may take a moment to see
// its connection closed.
func (m *meteredProxy) gone(n int) {
	m.mu.Lock()
	ends := m.ends[fmt.Sprint(n)]
	delete(m.ends, fmt.Sprint(n))
	m.mu.Unlock()
	for _, end := range ends {
		end()
	}
}

func newMeteredProxy(t *testing.T, target string) *meteredProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	m := &meteredProxy{arrived: make(chan time.Time, 1000), by: map[string]int{}, ends: map[string]map[*sync.Once]func(){}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := ""
		if rest, ok := strings.CutPrefix(r.URL.Path, "/r"); ok { // a replica's own root, /rN/v1
			who, r.URL.Path, _ = strings.Cut(rest, "/")
			r.URL.Path = "/" + r.URL.Path
		}
		if strings.HasPrefix(r.URL.Path, "/v1/images/") {
			n := m.inFlight.Add(1)
			m.mu.Lock()
			m.by[who]++
			if n > m.peak.Load() {
				m.peak.Store(n)
				m.peaks = append(m.peaks, fmt.Sprintf("%s: %d in flight, by replica %v", time.Now().Format(time.StampMilli), n, m.by))
			}
			m.mu.Unlock()
			// A call ends when its answer is written or its caller is
			// gone (a killed replica's connection closes at once).
			end := &sync.Once{}
			done := func() {
				end.Do(func() {
					m.inFlight.Add(-1)
					m.mu.Lock()
					m.by[who]--
					delete(m.ends[who], end)
					m.mu.Unlock()
				})
			}
			m.mu.Lock()
			if m.ends[who] == nil {
				m.ends[who] = map[*sync.Once]func(){}
			}
			m.ends[who][end] = done
			m.mu.Unlock()
			defer done()
			stop := context.AfterFunc(r.Context(), done)
			defer stop()
			m.calls.Add(1)
			select {
			case m.arrived <- time.Now():
			default:
			}
			if gate := m.held.Load(); gate != nil {
				select {
				case <-*gate:
				case <-r.Context().Done():
					return
				}
			}
			select { // the image model at work
			case <-time.After(chaosProvider):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the API root to give the replicas.
func (m *meteredProxy) URL() string { return m.srv.URL + "/v1" }

// URLFor is the API root to give replica n, whose calls are then told
// apart.
func (m *meteredProxy) URLFor(n int) string { return fmt.Sprintf("%s/r%d/v1", m.srv.URL, n) }

// stepKiller is one replica's way to the Slack Web API: it forwards every
// call, and can kill the replica right before a given call reaches Slack.
type stepKiller struct {
	srv *httptest.Server

	onKill func() // called right after it killed its replica

	mu         sync.Mutex
	p          *chaosProc
	method     string
	withBlocks bool
	fired      *atomic.Bool
}

func newStepKiller(t *testing.T, apiURL string) *stepKiller {
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	k := &stepKiller{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	// Upload URLs lead through the proxy too: Easel sends its token only
	// to Slack's hosts and the API URL's.
	fake := u.Scheme + "://" + u.Host
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/files.getUploadURLExternal") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte(fake), []byte(k.srv.URL))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return nil
	}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		k.mu.Lock()
		p, fired := k.p, k.fired
		hit := k.method != "" && strings.HasSuffix(r.URL.Path, "/"+k.method) &&
			(!k.withBlocks || bytes.Contains(body, []byte("regenerate"))) // a result's buttons, not a status line's
		if hit {
			k.method = ""
		}
		k.mu.Unlock()
		if hit && p != nil {
			fired.Store(true)
			p.kill()
			if k.onKill != nil {
				k.onKill()
			}
			http.Error(w, "killed", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// URL is the Web API proxy's root.
func (k *stepKiller) URL() string { return k.srv.URL }

// target makes p the process to kill.
func (k *stepKiller) target(p *chaosProc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.p = p
}

// killBefore arms the killer for the next call of method ("" disarms it)
// and returns what reports whether it fired.
func (k *stepKiller) killBefore(method string, withBlocks bool) *atomic.Bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.method, k.withBlocks, k.fired = method, withBlocks, &atomic.Bool{}
	return k.fired
}

// newBalancer is a loopback load balancer in front of the replicas' http
// listeners: each request goes to the next replica in turn, and to the one
// after when a replica refuses the connection (it is down), as a load
// balancer's passive health check does; a replica that accepted the
// request and then failed gets a 502, which Slack retries.
func newBalancer(t *testing.T, c *cluster) *httptest.Server {
	var next atomic.Uint64
	client := &http.Client{Timeout: chaosSlackWait, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: time.Second}).DialContext,
	}}
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		first := next.Add(1)
		for i := range uint64(len(c.replicas)) {
			r0 := c.replicas[(first+i)%uint64(len(c.replicas))]
			req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+r0.addr+r.URL.RequestURI(), bytes.NewReader(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			req.Header = r.Header.Clone()
			resp, err := client.Do(req)
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				continue // down: the next replica
			}
			if err != nil {
				http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
				return
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.Header().Set("X-Chaos-Replica", fmt.Sprint(r0.n))
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no replica up", http.StatusBadGateway)
	}))
	t.Cleanup(lb.Close)
	return lb
}

// freeAddr returns a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestReplicaTakeover measures how long a turn whose replica died (SIGKILL)
// or froze (SIGSTOP) waits before another replica runs it: two replicas of
// the real binary on PostgreSQL, a slash command sent to one, which is
// killed or frozen while the provider holds its call; the time is from the
// signal to the other replica's provider call for the same turn. It fails
// only when no takeover comes within ten leases; the figures are logged.
func TestReplicaTakeover(t *testing.T) {
	bin := buildEasel(t)
	pgURL := pgtest.Start(t).DB(t)
	slack := slacktest.NewServer(t)
	slack.AddUser("UANA", "ana")
	ai := openaitest.NewServer(t)
	provider := newMeteredProxy(t, ai.URL())
	c := &cluster{t: t, bin: bin, slack: slack, environ: []string{
		"EASEL_POSTGRES_URL=" + pgURL,
		"SLACK_BOT_TOKEN=" + slack.BotToken, "SLACK_SIGNING_SECRET=" + slack.SigningSecret,
		"OPENAI_API_KEY=sk-takeover-test-key", "OPENAI_BASE_URL=" + provider.URL(),
	}}
	images := t.TempDir() // one directory both replicas use
	for i := range 2 {
		r := &replica{n: i + 1, api: newStepKiller(t, slack.APIURL()), addr: freeAddr(t)}
		r.cfg = writeFile(t, fmt.Sprintf(`[storage]
backend = "postgres"
dir = %q
lease = %q
[provider]
default = "openai"
[engine]
stop_grace = "5s"
[slack]
enabled = true
mode = "http"
listen = %q
api_url = %q
`, images, chaosLease, r.addr, r.api.URL()+"/api/"))
		c.replicas = append(c.replicas, r)
		c.start(r)
	}
	a, b := c.replicas[0], c.replicas[1]

	want := 0 // images posted
	for _, how := range []struct {
		name string
		stop func()
		undo func()
	}{
		{"SIGKILL", func() { a.p.kill() }, func() { c.start(a) }},
		{"SIGSTOP", func() { _ = a.p.cmd.Process.Signal(syscall.SIGSTOP) }, func() { _ = a.p.cmd.Process.Signal(syscall.SIGCONT) }},
	} {
		gate := make(chan struct{})
		provider.held.Store(&gate)
		for len(provider.arrived) > 0 {
			<-provider.arrived
		}
		if ok, _ := c.deliver("http://"+a.addr, slack.SlashCommand("UANA", "C1", "taken over after "+how.name)); !ok {
			t.Fatalf("%s: the command was not acknowledged", how.name)
		}
		select {
		case <-provider.arrived:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the provider was never called", how.name)
		}
		provider.held.Store(nil)
		how.stop()
		stopped := time.Now()
		select {
		case at := <-provider.arrived:
			took := at.Sub(stopped)
			t.Logf("figures: after %s, the turn ran again on the other replica in %.1f s (storage.lease %s: %.2f leases)",
				how.name, took.Seconds(), chaosLease, took.Seconds()/chaosLease.Seconds())
		case <-time.After(10 * chaosLease):
			t.Errorf("%s: no replica took the turn over within ten leases", how.name)
		}
		close(gate)
		how.undo()
		want++
		slack.WaitFor(t, "the taken-over turn's image", func() bool {
			n := 0
			for _, u := range slack.Uploads() {
				if u.Completed && strings.HasPrefix(u.Title, "v") {
					n++
				}
			}
			return n == want
		})
	}
	for _, r := range []*replica{a, b} {
		if code := r.p.term(); code != 0 {
			t.Errorf("replica %d exited %d after SIGTERM", r.n, code)
		}
	}
}

// checkDiscord checks that a Discord session's turns ended and that each
// image is in its thread exactly once (a result is one message with its
// buttons), and adds the session's turns to the counts.
func (c *cluster) checkDiscord(s *core.Session, done, failed, outputs int64) (int64, int64, int64) {
	results := 0
	for _, m := range c.discord.Messages(s.Thread) {
		if m.Author.ID == c.discord.Bot.ID && len(m.Buttons()) > 0 && !strings.HasPrefix(m.Buttons()[0].CustomID, "easel:cancel:") {
			results++
		}
	}
	want := 0
	for _, tr := range s.Turns {
		switch {
		case tr.Status.Active() || tr.Posting:
			c.t.Errorf("Discord session %s turn %d ended %s (posting %v)", s.ID, tr.ID, tr.Status, tr.Posting)
		case tr.Status == core.StatusFailed:
			failed++
		default:
			done++
			outputs += int64(len(tr.Outputs))
			want += len(tr.Outputs)
		}
	}
	if results != want {
		c.t.Errorf("Discord session %s: %d results in its thread, want %d", s.ID, results, want)
	}
	return done, failed, outputs
}

// event notes what the test did to the replicas, and when.
func (c *cluster) event(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, time.Now().Format(time.StampMilli)+": "+fmt.Sprintf(format, args...))
}
