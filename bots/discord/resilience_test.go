package discord_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

func TestGatewayDisconnectMidJob(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := start(t, func(s *setup) { s.gen.SetGate(gate) })
	srv := h.srv
	m := srv.Mention(srv.Alice, srv.Channel, "a windmill")
	thread := h.threadOf(m.ID)
	srv.Wait(t, "the job to start", func() bool { return h.gen.Calls.Load() == 1 })

	srv.Disconnect()
	reply := srv.Say(srv.Alice, thread, "add tulips") // sent while the bot is away
	srv.Redeliver(m)                                  // and a replay of what it already had
	close(gate)
	srv.Wait(t, "the bot to resume", func() bool { return srv.Resumes() == 1 && srv.Connected() })
	h.waitResults(thread, 2)
	h.waitIdle(thread)
	settle(t, h, 2)
	if n := len(h.results(thread)); n != 2 {
		t.Errorf("%d results, want each delivered once", n)
	}
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d IDENTIFYs, want the session resumed rather than restarted", n)
	}
	srv.Wait(t, "a heartbeat on each connection", func() bool { return srv.Heartbeats() >= 2 })
	if got, _ := srv.GetMessage(reply.ID); !slices.Equal(got.Reactions, []string{"✅"}) {
		t.Errorf("the reply sent during the outage was not handled: reactions %v", got.Reactions)
	}
}

func TestRateLimitsAreHonoured(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	const wait = 300 * time.Millisecond
	srv.RateLimit("POST /channels/{channel_id}/messages", wait, false)
	srv.RateLimit("PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me", wait, true)
	m := srv.Mention(srv.Alice, srv.Channel, "a hot-air balloon")
	thread := h.threadOf(m.ID)
	h.waitResults(thread, 1)
	h.waitIdle(thread)
	srv.Wait(t, "✅", func() bool {
		got, _ := srv.GetMessage(m.ID)
		return len(got.Reactions) == 1
	})

	for _, route := range []string{"POST /channels/{channel_id}/messages", "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me"} {
		calls := srv.Calls(route)
		i := slices.IndexFunc(calls, func(c discordtest.Call) bool { return c.Status == 429 })
		if i < 0 {
			t.Fatalf("%s: no 429 answered", route)
		}
		j := slices.IndexFunc(calls[i+1:], func(c discordtest.Call) bool { return c.Path == calls[i].Path })
		if j < 0 {
			t.Fatalf("%s: no retry after the 429", route)
		}
		if retry := calls[i+1+j]; retry.Status/100 != 2 || retry.At.Sub(calls[i].At) < wait {
			t.Errorf("%s retried after %s, want at least retry_after %s", route, retry.At.Sub(calls[i].At), wait)
		}
	}
	if n := len(h.results(thread)); n != 1 {
		t.Errorf("%d results, want 1", n)
	}
}

func TestRestartResumesQueuedTurns(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	dir := t.TempDir()
	s := &setup{
		srv: srv, dir: dir,
		cfg:    discord.Config{Token: srv.Token, APIURL: srv.URL(), Guilds: []string{srv.Guild}, MessageContent: true},
		engine: core.EngineConfig{DefaultProvider: "fake"},
		gen:    coretest.Gated(make(chan struct{})),
	}
	first := launch(t, s)
	m := srv.Mention(srv.Alice, srv.Channel, "a lighthouse")
	thread := first.threadOf(m.ID)
	srv.Wait(t, "the job to start", func() bool { return first.gen.Calls.Load() == 1 })
	first.stop(0) // killed mid-turn: the turn stays queued

	s.gen = &coretest.Generator{}
	second := launch(t, s)
	n, err := second.engine.Resume(context.Background(), second.bot.Thread)
	if err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want the interrupted session", n, err)
	}
	v1 := second.waitResults(thread, 1)[0]
	srv.Wait(t, "✅ on the mention in the parent channel", func() bool {
		got, _ := srv.GetMessage(m.ID)
		return slices.Equal(got.Reactions, []string{"✅"})
	})
	second.waitIdle(thread)

	// The first process's buttons work in the second.
	srv.Click(t, srv.Alice, v1, button(t, v1, "regenerate"))
	second.waitResults(thread, 2)

	if _, ok := second.bot.Thread(&core.Session{Platform: "console", Thread: "chat-1"}); ok {
		t.Error("Thread accepted a console session")
	}
}

func TestRunExplainsStartupProblems(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewServer(t)
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cases := []struct {
		name string
		cfg  discord.Config
		want string
	}{
		{"wrong token", discord.Config{Token: "not-the-token", APIURL: srv.URL()}, "DISCORD_BOT_TOKEN"},
		{"message content not enabled", discord.Config{Token: srv.Token, APIURL: srv.URL(), MessageContent: true}, "Message Content intent is not enabled"},
	}
	for _, c := range cases {
		bot, err := discord.New(c.cfg, nil, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = bot.Run(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Run = %v, want an error saying %q", c.name, err, c.want)
		}
	}
	if _, err := discord.New(discord.Config{}, nil, db, nil); err == nil || !strings.Contains(err.Error(), "DISCORD_BOT_TOKEN") {
		t.Errorf("New without a token = %v", err)
	}
	if _, err := discord.New(discord.Config{Token: "t", APIURL: "ftp://example.com/"}, nil, db, nil); err == nil {
		t.Error("New accepted an ftp api_url")
	}
}
