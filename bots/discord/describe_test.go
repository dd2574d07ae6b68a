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
	"github.com/easel-bot/easel/core/imagecheck"
)

// describeRegistered waits for /describe to be registered in the guild.
func (h *harness) describeRegistered() discordtest.Command {
	h.t.Helper()
	var cmd discordtest.Command
	h.srv.Wait(h.t, "/describe to be registered", func() bool {
		i := slices.IndexFunc(h.srv.Commands(h.srv.Guild), func(c discordtest.Command) bool { return c.Name == "describe" })
		if i >= 0 {
			cmd = h.srv.Commands(h.srv.Guild)[i]
		}
		return i >= 0
	})
	return cmd
}

// described runs /describe with an image as user in channel and returns
// the response message once it lists the suggestions.
func (h *harness) described(from discordtest.User, channel string, img discordtest.Attachment) discordtest.Message {
	h.t.Helper()
	ic := h.srv.Command(h.t, from, channel, "describe", discordtest.Option{Name: "image", Value: img})
	var m discordtest.Message
	h.srv.Wait(h.t, "the suggestions", func() bool {
		m, _ = h.srv.GetMessage(h.srv.GetInteraction(ic.ID).Original)
		return len(m.Buttons()) > 0
	})
	return m
}

// TestDescribeInAChannel: /describe lists the suggestions with a numbered
// button each; only who asked (or an admin) may press one, and pressing 2
// starts a new session in a new thread with the second suggestion; the
// describe counts as a turn in the usage.
func TestDescribeInAChannel(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	cmd := h.describeRegistered()
	if len(cmd.Options) != 1 || cmd.Options[0].Name != "image" || !cmd.Options[0].Required {
		t.Errorf("registered /describe with options %+v", cmd.Options)
	}
	m := h.described(srv.Alice, srv.Channel, srv.Upload("cat.png", "image/png", testPNG(3)))
	for i, s := range coretest.Suggestions {
		if !strings.Contains(m.Content, s) {
			t.Errorf("suggestion %d %q missing from %q", i+1, s, m.Content)
		}
	}
	if len(m.Buttons()) != len(coretest.Suggestions) || m.Buttons()[1].Label != "2" {
		t.Fatalf("buttons %+v", m.Buttons())
	}
	second := m.Buttons()[1].CustomID

	bob := srv.Click(t, srv.Bob, m, second)
	if note := h.ephemeralNote(bob); !strings.Contains(note, "only alice") {
		t.Errorf("Bob's press: note %q", note)
	}

	srv.Click(t, srv.Alice, m, second)
	var starter discordtest.Message
	srv.Wait(t, "a starter message for the suggestion", func() bool {
		for _, x := range srv.Messages(srv.Channel) {
			if x.Author.ID == srv.Bot.ID && strings.Contains(x.Content, coretest.Suggestions[1]) && x.ID != m.ID {
				starter = x
				return true
			}
		}
		return false
	})
	thread := h.threadOf(starter.ID)
	h.waitResults(thread, 1)
	if req := h.gen.Requests()[0]; req.Prompt != coretest.Suggestions[1] || req.Kind != core.KindGenerate {
		t.Errorf("request %s %q, want a generation of suggestion 2", req.Kind, req.Prompt)
	}
	u, err := h.db.UsageTotals(context.Background(), core.WorkspaceMonthKey(discord.Platform, srv.Guild, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if u.Turns != 2 || u.Images != 1 || u.CostUSD < 0.0149 || u.CostUSD > 0.0151 {
		t.Errorf("usage %+v, want the describe and the generation: 2 turns, 1 image, $0.015", u)
	}
}

// TestDescribeInAThreadStartsANewSession: a press in a session thread
// starts a fresh session there.
func TestDescribeInAThreadStartsANewSession(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	h.describeRegistered()
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a red fox").ID)
	h.waitResults(thread, 1)
	h.waitIdle(thread)
	m := h.described(srv.Alice, thread, srv.Upload("cat.png", "image/png", testPNG(3)))
	srv.Click(t, srv.Alice, m, m.Buttons()[0].CustomID)
	h.srv.Wait(t, "the second result", func() bool { return len(h.results(thread)) >= 3 }) // the first result, the suggestions, the new result
	if reqs := h.gen.Requests(); len(reqs) != 2 || reqs[1].Prompt != coretest.Suggestions[0] || reqs[1].Base != nil {
		t.Errorf("requests %d; want a fresh generation of suggestion 1", len(reqs))
	}
}

// TestDescribeRefusals: an attachment that is no image, one too large and a
// provider error each get an ephemeral note and leave no response.
func TestDescribeRefusals(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.cfg.Attachments = imagecheck.Limits{MaxBytes: 4 << 10} })
	srv := h.srv
	h.describeRegistered()
	for _, tc := range []struct {
		name string
		img  discordtest.Attachment
		fail error
		says string
	}{
		{"not an image", srv.Upload("notes.txt", "text/plain", []byte("just words")), nil, "notes.txt is not an image Easel can use"},
		{"too large", srv.Upload("big.png", "image/png", noisePNG(64, 64)), nil, "big.png is"},
		{"provider error", srv.Upload("cat.png", "image/png", testPNG(3)), core.Errorf(core.RateLimited, "OpenAI is rate-limiting requests right now; try again in a minute."), "rate-limiting"},
	} {
		if tc.fail != nil {
			h.gen.Fail(tc.fail)
		}
		ic := srv.Command(t, srv.Alice, srv.Channel, "describe", discordtest.Option{Name: "image", Value: tc.img})
		if note := h.ephemeralNote(ic); !strings.Contains(note, tc.says) {
			t.Errorf("%s: note %q, want %q", tc.name, note, tc.says)
		}
		if m, ok := srv.GetMessage(srv.GetInteraction(ic.ID).Original); ok && !m.Deleted && !m.Ephemeral() {
			t.Errorf("%s: a response %q was left", tc.name, m.Content)
		}
	}
}
