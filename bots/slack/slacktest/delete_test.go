package slacktest_test

import (
	"net/url"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// files.delete refuses what Slack refuses: no file, a user's file, a file
// deleted already; and buttons are checked as Block Kit checks them.
func TestFilesDeleteAndButtons(t *testing.T) {
	s := slacktest.NewServer(t)
	user := s.AddFile("U1", "in.png", "image/png", []byte("x"))
	for _, c := range []struct{ file, want string }{{"", "invalid_arguments"}, {"F404", "file_not_found"}, {user.ID, "cant_delete_file"}} {
		if _, _, b := post(t, s, "files.delete", s.BotToken, url.Values{"file": {c.file}}); b["error"] != c.want {
			t.Errorf("files.delete %q: %v, want %s", c.file, b, c.want)
		}
	}
	for blocks, want := range map[string]string{
		`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"Go"},"value":"v"}]}]`:                                              "",
		`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"mrkdwn","text":"Go"}}]}]`:                                                              "invalid_blocks",
		`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"Go"},"style":"loud"}]}]`:                                           "invalid_blocks",
		`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"Go"},"confirm":{"title":{"type":"plain_text","text":"Sure?"}}}]}]`: "invalid_blocks",
	} {
		_, _, b := post(t, s, "chat.postMessage", s.BotToken, url.Values{"channel": {"C1"}, "text": {"t"}, "blocks": {blocks}})
		if got, _ := b["error"].(string); got != want {
			t.Errorf("blocks %s: error %q, want %q", blocks, got, want)
		}
	}
}
