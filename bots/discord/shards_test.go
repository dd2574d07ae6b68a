package discord_test

import (
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// TestOneProcessRunsEveryShard: with discord.shards = 2 and no shared
// leases, one bot connects both shards, the second after its turn in the
// single max_concurrency bucket (the gateway refuses an IDENTIFY too
// soon), and handles the mentions of a guild on each.
func TestOneProcessRunsEveryShard(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	srv.WaitTimeout = 30 * time.Second
	channels := map[int]string{discordtest.ShardOf(srv.Guild, 2): srv.Channel}
	for len(channels) < 2 {
		time.Sleep(time.Millisecond)
		g, c := srv.AddGuild("Other", 0)
		channels[discordtest.ShardOf(g, 2)] = c
	}
	h := start(t, func(s *setup) {
		s.srv, s.cfg.Token, s.cfg.APIURL, s.cfg.Shards = srv, srv.Token, srv.URL(), 2
		s.cfg.Guilds = []string{srv.Guild}
	})
	if live := srv.LiveShards(2); len(live) != 2 {
		t.Fatalf("live shards %v, want 0 and 1", live)
	}
	ids := srv.Identifies()
	if len(ids) != 2 || ids[1].At.Sub(ids[0].At) < 5*time.Second {
		t.Errorf("IDENTIFYs %+v: want 2, 5 s apart", ids)
	}
	for sh := range 2 {
		m := srv.Mention(srv.Alice, channels[sh], "a fox")
		h.waitResults(h.threadOf(m.ID), 1)
	}
	if r := srv.Refused(); len(r) != 0 {
		t.Errorf("the gateway refused %+v", r)
	}
}
