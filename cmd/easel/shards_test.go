package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

// replicaProc is one easel run process of TestDiscordShardsOnReplicas.
type replicaProc struct {
	*proc
	name string
	logs *syncBuffer
}

// holding returns the shards the process last said it holds, or nil.
func (r *replicaProc) holding() []int {
	m := holdingRE.FindAllStringSubmatch(r.logs.String(), -1)
	if len(m) == 0 {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(m[len(m)-1][1]) {
		var n int
		fmt.Sscan(f, &n)
		out = append(out, n)
	}
	return out
}

var shardsLease = flag.Duration("shards.lease", 3*time.Second, "storage.lease of TestDiscordShardsOnReplicas")

var holdingRE = regexp.MustCompile(`msg="holding Discord shards".*? shards="?\[([0-9 ]*)\]`)

// TestDiscordShardsOnReplicas runs the Discord fake with 2 shards and
// replicas of the real binary on one PostgreSQL database. The shards
// spread one to a replica, each guild's mentions and buttons are handled
// once, by whichever replica holds its shard; a replica killed outright
// (SIGKILL) has its shard taken over within the lease, and so has one
// frozen (SIGSTOP) past it, which on waking stops using the shard. Every
// IDENTIFY keeps to its max_concurrency bucket across the replicas, and no
// shard is ever asked for by two live connections.
func TestDiscordShardsOnReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three easel processes")
	}
	bin := buildEasel(t)
	url := pgtest.Start(t).DB(t)
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	srv.Shards, srv.MaxConcurrency = 2, 2
	srv.HeartbeatInterval = time.Second
	srv.WaitTimeout = time.Minute
	// A guild on each shard, each with its #general.
	guilds, channels := map[int]string{}, map[int]string{}
	sh := discordtest.ShardOf(srv.Guild, 2)
	guilds[sh], channels[sh] = srv.Guild, srv.Channel
	for len(guilds) < 2 {
		time.Sleep(time.Millisecond)
		g, c := srv.AddGuild("Other", 0)
		guilds[discordtest.ShardOf(g, 2)], channels[discordtest.ShardOf(g, 2)] = g, c
	}
	lease := *shardsLease
	cfg := writeFile(t, fmt.Sprintf(`[storage]
backend = "postgres"
dir = %q
lease = "%s"
[provider]
default = "preview"
[preview]
delay = "50ms"
[engine]
max_concurrent = 4
max_per_user = 100
[discord]
enabled = true
api_url = %q
guilds = [%q, %q]
message_content = true
shards = "auto"
`, t.TempDir(), lease, srv.URL(), guilds[0], guilds[1]))

	var procs []*replicaProc
	start := func(name string) *replicaProc {
		t.Helper()
		logs := &syncBuffer{b: &bytes.Buffer{}}
		cmd := exec.Command(bin, "run", "-config", cfg)
		cmd.Env = append(os.Environ(), "DISCORD_BOT_TOKEN="+srv.Token, "EASEL_POSTGRES_URL="+url)
		cmd.Stderr, cmd.Stdout = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd: cmd, done: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			p.code = cmd.ProcessState.ExitCode()
			close(p.done)
		}()
		r := &replicaProc{proc: p, name: name, logs: logs}
		procs = append(procs, r)
		return r
	}
	t.Cleanup(func() {
		for _, r := range procs {
			_ = r.cmd.Process.Signal(syscall.SIGCONT)
			r.kill()
			if t.Failed() {
				t.Logf("%s:\n%s", r.name, r.logs.String())
			}
		}
	})
	// spread waits until each of rs holds one shard, and both are live.
	spread := func(rs ...*replicaProc) map[int]*replicaProc {
		t.Helper()
		holders := map[int]*replicaProc{}
		srv.Wait(t, "the shards to spread one to a replica", func() bool {
			clear(holders)
			for _, r := range rs {
				h := r.holding()
				if len(h) != 1 {
					return false
				}
				holders[h[0]] = r
			}
			return len(holders) == 2 && len(srv.LiveShards(2)) == 2
		})
		return holders
	}
	// result waits for the n-th result in the thread of a mention, and
	// checks that no more come.
	result := func(thread string, n int) discordtest.Message {
		t.Helper()
		var res []discordtest.Message
		isResult := func(m discordtest.Message) bool { // its buttons, not a status message's Cancel
			return m.Author.ID == srv.Bot.ID && len(m.Buttons()) > 0 && !strings.HasPrefix(m.Buttons()[0].CustomID, "easel:cancel:")
		}
		srv.Wait(t, fmt.Sprintf("result %d in thread %s", n, thread), func() bool {
			res = slices.DeleteFunc(srv.Messages(thread), func(m discordtest.Message) bool { return !isResult(m) })
			return len(res) >= n
		})
		time.Sleep(300 * time.Millisecond)
		if got := slices.DeleteFunc(srv.Messages(thread), func(m discordtest.Message) bool { return !isResult(m) }); len(got) != n {
			t.Errorf("thread %s has %d results, want %d", thread, len(got), n)
		}
		return res[n-1]
	}
	mention := func(shard int, text string) discordtest.Message {
		t.Helper()
		m := srv.Mention(srv.Alice, channels[shard], text)
		return result(m.ID, 1)
	}
	// identifiedSince waits for an accepted IDENTIFY of shard after at,
	// and returns when it came.
	identifiedSince := func(shard int, at time.Time) time.Duration {
		t.Helper()
		var d time.Duration
		srv.Wait(t, fmt.Sprintf("shard %d to be taken over", shard), func() bool {
			for _, id := range srv.Identifies() {
				if id.Shard == shard && id.Refused == "" && id.At.After(at) {
					d = id.At.Sub(at)
					return slices.Contains(srv.LiveShards(2), shard)
				}
			}
			return false
		})
		return d
	}

	a := start("replica A")
	srv.Wait(t, "replica A to hold both shards", func() bool { return len(a.holding()) == 2 && srv.Connected() })
	srv.Wait(t, "/imagine to be registered", func() bool {
		return len(srv.Commands(guilds[0])) > 0 && len(srv.Commands(guilds[1])) > 0
	})
	b := start("replica B")
	holders := spread(a, b)
	t.Logf("shard 0: %s, shard 1: %s", holders[0].name, holders[1].name)

	// Each guild's mention is handled once, and a button on a result
	// works.
	results := map[int]discordtest.Message{}
	for shard := range 2 {
		results[shard] = mention(shard, fmt.Sprintf("a fox on shard %d", shard))
	}

	// The holder of shard 0 is killed outright: the other takes the shard
	// over, and the buttons on the results the dead one posted work.
	victim, other := holders[0], holders[1]
	killed := time.Now()
	victim.kill()
	took := identifiedSince(0, killed)
	t.Logf("shard taken over %s after SIGKILL (lease %s)", took.Round(10*time.Millisecond), lease)
	if took > lease+2*time.Second {
		t.Errorf("shard taken over %s after SIGKILL, want within the lease (%s)", took, lease)
	}
	srv.Wait(t, "the survivor to hold both shards", func() bool { return len(other.holding()) == 2 })
	thread0 := results[0].ChannelID
	srv.Click(t, srv.Alice, results[0], results[0].Buttons()[0].CustomID)
	result(thread0, 2)
	mention(0, "a heron after the kill")

	// A third replica joins, takes a shard, and freezes: after the lease
	// the other takes its shard over; on waking it closes the shard and
	// posts nothing twice.
	c := start("replica C")
	holders = spread(other, c)
	frozenShard := c.holding()[0]
	// It freezes once its IDENTIFY's turn in the bucket is over, so that
	// the takeover measures the lease, not the bucket.
	for _, id := range srv.Identifies() {
		if id.Shard == frozenShard && id.Refused == "" {
			time.Sleep(time.Until(id.At.Add(6 * time.Second)))
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	took = identifiedSince(frozenShard, frozen)
	t.Logf("shard taken over %s after SIGSTOP (lease %s)", took.Round(10*time.Millisecond), lease)
	// The rest of the lease, and the survivor's next look.
	if took < lease-lease/3-time.Second || took > lease+lease/3+2*time.Second {
		t.Errorf("shard of a frozen replica taken over %s after it froze, want after its lease (%s) and soon after", took, lease)
	}
	during := srv.Mention(srv.Alice, channels[frozenShard], "a lynx while one replica is frozen")
	result(during.ID, 1)
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, "the woken replica to give the shard up", func() bool {
		return strings.Contains(c.logs.String(), "another process took this shard over") ||
			strings.Contains(c.logs.String(), "lease ran out")
	})
	after := srv.Mention(srv.Alice, channels[frozenShard], "an owl after the thaw")
	result(after.ID, 1)
	result(during.ID, 1)
	holders = spread(other, c) // the woken replica takes its share again

	for _, id := range srv.Refused() {
		t.Errorf("the gateway refused an IDENTIFY of shard %d at %s: %s", id.Shard, id.At.Format(time.TimeOnly), id.Refused)
	}
	for _, r := range []*replicaProc{other, c} {
		if code := r.term(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", r.name, code)
		}
	}
}
