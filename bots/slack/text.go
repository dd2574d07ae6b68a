package slack

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack/slackutilsx"

	"github.com/easel-bot/easel/core/safetext"
)

// threadKey is the session key of a Slack thread: its channel and the
// timestamp of its root message.
func threadKey(channel, rootTS string) string { return channel + "/" + rootTS }

// splitKey undoes threadKey.
func splitKey(key string) (channel, rootTS string, ok bool) {
	channel, rootTS, ok = strings.Cut(key, "/")
	return channel, rootTS, ok && channel != "" && rootTS != ""
}

// tsTime returns the time a Slack timestamp ("seconds.micros") names, or
// the zero time for one that is not a timestamp.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 6 {
		return time.Time{}
	}
	us, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(s, us*1000)
}

// mentions reports whether Slack-formatted text mentions user.
func mentions(text, user string) bool {
	return user != "" && (strings.Contains(text, "<@"+user+">") || strings.Contains(text, "<@"+user+"|"))
}

// promptText turns Slack-formatted message text into the prompt the engine
// sees: mentions of the bot removed, Slack's escapes undone and the text
// trimmed.
func promptText(text, bot string) string {
	if bot != "" {
		text = mentionOf(bot).ReplaceAllString(text, "")
	}
	return strings.TrimSpace(unescape(text))
}

func mentionOf(user string) *regexp.Regexp {
	return regexp.MustCompile(`<@` + regexp.QuoteMeta(user) + `(\|[^>]*)?>`)
}

// unescape undoes the three escapes Slack applies to message text.
func unescape(text string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
}

// escape makes text safe to post: control and bidirectional characters
// are removed (safetext.Chat), so a right-to-left override cannot disguise
// it, and & < > can no longer form mentions, @channel pings or links.
func escape(text string) string { return slackutilsx.EscapeMessage(safetext.Chat(text)) }
