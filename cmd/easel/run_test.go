package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// TestRunSlack starts `easel run` with a Slack section pointed at the
// loopback fake, runs a slash command to a posted image, and stops it.
func TestRunSlack(t *testing.T) {
	srv := slacktest.NewServer(t)
	cfgFile := writeFile(t, fmt.Sprintf("[slack]\nenabled = true\napi_url = %q\n", srv.APIURL()))
	environ := map[string]string{"SLACK_BOT_TOKEN": srv.BotToken, "SLACK_APP_TOKEN": srv.AppToken}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan int)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &syncBuffer{b: &logs}, getenv: func(k string) string { return environ[k] }}
		done <- run(ctx, []string{"run", "-config", cfgFile, "-data", t.TempDir()}, e)
	}()
	srv.Send(t, srv.SlashCommand("UANA", "C1", "a red fox --ar 16:9"))
	// The preview renderer streams a partial image first, then the result.
	srv.WaitFor(t, "the uploaded result", func() bool {
		ups := srv.Uploads()
		return len(ups) == 2 && ups[1].Completed
	})
	up := srv.Uploads()[1]
	if up.Channel != "C1" || up.ThreadTS == "" || !strings.Contains(up.InitialComment, "a red fox") {
		t.Errorf("upload to %s thread %q with comment %q: want it in the slash command's thread with a caption", up.Channel, up.ThreadTS, up.InitialComment)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("easel run exited %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("easel run did not stop after its context ended")
	}
	if strings.Contains(logs.String(), srv.BotToken) || strings.Contains(logs.String(), srv.AppToken) {
		t.Errorf("a token appears in the logs")
	}
}

// TestRunSlackAndDiscord starts `easel run` with both platforms from one
// config and makes an image on each.
func TestRunSlackAndDiscord(t *testing.T) {
	sl := slacktest.NewServer(t)
	dc := discordtest.NewServer(t)
	cfgFile := writeFile(t, fmt.Sprintf("[slack]\nenabled = true\napi_url = %q\n\n[discord]\nenabled = true\napi_url = %q\nguilds = [%q]\n",
		sl.APIURL(), dc.URL(), dc.Guild))
	environ := map[string]string{"SLACK_BOT_TOKEN": sl.BotToken, "SLACK_APP_TOKEN": sl.AppToken, "DISCORD_BOT_TOKEN": dc.Token}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan int)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &syncBuffer{b: &logs}, getenv: func(k string) string { return environ[k] }}
		done <- run(ctx, []string{"run", "-config", cfgFile, "-data", t.TempDir()}, e)
	}()
	sl.Send(t, sl.SlashCommand("UANA", "C1", "a red fox"))
	dc.Wait(t, "/imagine registered", imagineRegistered(dc))
	dc.Mention(dc.Alice, dc.Channel, "a blue whale")
	sl.WaitFor(t, "the Slack result", func() bool {
		ups := sl.Uploads()
		return len(ups) == 2 && ups[1].Completed
	})
	dc.Wait(t, "the Discord result", func() bool {
		for _, th := range dc.Threads(dc.Channel) {
			for _, m := range dc.Messages(th.ID) {
				if len(m.Attachments) == 1 && strings.Contains(m.Content, "a blue whale") {
					return true
				}
			}
		}
		return false
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("easel run exited %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("easel run did not stop after its context ended")
	}
	if strings.Contains(logs.String(), dc.Token) {
		t.Errorf("the Discord token appears in the logs")
	}
}

func TestDiscordInviteURL(t *testing.T) {
	out, _, code := easel(t, "", nil, "discord", "invite-url", "123456789012345678")
	if code != 0 || !strings.Contains(out, "client_id=123456789012345678") || !strings.Contains(out, "applications.commands") {
		t.Errorf("invite-url: exit %d, %q", code, out)
	}
	if _, errOut, code := easel(t, "", nil, "discord", "invite-url", "my-bot"); code != 2 || !strings.Contains(errOut, "not an application id") {
		t.Errorf("invite-url with a bad id: exit %d, %q", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// imagineRegistered returns whether /imagine is registered in dc's guild,
// beside Easel's other commands.
func imagineRegistered(dc *discordtest.Server) func() bool {
	return func() bool {
		return slices.ContainsFunc(dc.Commands(dc.Guild), func(c discordtest.Command) bool { return c.Name == "imagine" })
	}
}
