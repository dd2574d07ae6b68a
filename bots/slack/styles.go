package slack

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/safetext"
)

// StyleCommand is the slash command that lists the workspace's styles and
// the channel's defaults, and with which admins change them. Slack sends
// no files with a slash command, so a style set here has no reference
// images; those come from the config.
const StyleCommand = "/imagine-style"

// Bounds of a style listing: a style's words and flags are cut to
// maxSpecShown characters, and styles past maxListChars are only counted,
// well inside what Slack shows of a message.
const (
	maxSpecShown = 300
	maxListChars = 12000
)

// styleCommand answers StyleCommand to its user alone:
//
//	list (or nothing, or help)      the styles and the channel's defaults
//	set NAME words --flags          define or replace a style (admins)
//	delete NAME                     delete a style set in chat (admins)
//	channel [--flags | clear]       show, set or clear the channel's defaults (admins set)
//
// A refusal (not an admin, a bad name or flag, a name the config holds)
// is the engine's message, told the same way; nothing is posted in the
// channel.
func (b *Bot) styleCommand(ctx context.Context, cmd slackapi.SlashCommand) {
	w, err := b.workspace(ctx, teamID{team: cmd.TeamID, enterprise: cmd.EnterpriseID})
	if err != nil {
		b.log.Warn("slack: a command from a workspace Easel cannot serve; dropped", "team", cmd.TeamID, "err", err)
		return
	}
	msg := core.Message{Platform: Platform, Workspace: cmd.TeamID, Channel: cmd.ChannelID,
		User: core.User{ID: cmd.UserID, Name: cmd.UserName}, DM: isDM(cmd.ChannelID, cmd.ChannelName)}
	text, err := b.styleAnswer(ctx, msg, unescape(cmd.Text))
	if err != nil {
		b.respond(ctx, w, cmd, err)
		return
	}
	b.answerCommand(ctx, w, cmd, text)
}

// styleAnswer does what text, typed after StyleCommand by msg's sender,
// asks and returns the answer, Slack-formatted, or an error to tell.
func (b *Bot) styleAnswer(ctx context.Context, msg core.Message, text string) (string, error) {
	if err := b.engine.Allowed(msg); err != nil {
		return "", err
	}
	sub, rest := cutWord(text)
	switch strings.ToLower(sub) {
	case "", "list":
		return b.listStyles(ctx, msg, false)
	case "help":
		return b.listStyles(ctx, msg, true)
	case "set":
		name, spec := cutWord(rest)
		if name == "" {
			return "", core.Errorf(core.Invalid, "name the style and give its words and flags: `%s set NAME words --flags`", StyleCommand)
		}
		s, replaced, err := b.engine.SetStyle(ctx, msg, name, spec, nil)
		if err != nil {
			return "", err
		}
		done := "created"
		if replaced {
			done = "replaced"
		}
		return fmt.Sprintf("✅ Style *%s* %s: %s\nUse it with `%s … --style %s`.",
			styleName(s.Name), done, code(s.Spec()), b.cfg.Command, styleName(s.Name)), nil
	case "delete":
		name, extra := cutWord(rest)
		if name == "" || extra != "" {
			return "", core.Errorf(core.Invalid, "name one style to delete: `%s delete NAME`", StyleCommand)
		}
		if err := b.engine.DeleteStyle(ctx, msg, name); err != nil {
			return "", err
		}
		n, _ := core.StyleName(name) // valid: the engine found it
		return fmt.Sprintf("🗑️ Style *%s* deleted.", styleName(n)), nil
	case "channel":
		return b.channelCommand(ctx, msg, rest)
	}
	return "", core.Errorf(core.Invalid, "%s takes list, set, delete or channel:\n%s", StyleCommand, b.styleUsage())
}

// listStyles returns the styles msg's sender may use and the defaults of
// msg's channel, with the commands when help is set.
func (b *Bot) listStyles(ctx context.Context, msg core.Message, help bool) (string, error) {
	styles, err := b.engine.Styles(ctx, msg)
	if err != nil {
		return "", err
	}
	d, _, err := b.engine.ChannelDefaults(ctx, msg)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	if len(styles) == 0 {
		fmt.Fprintf(&out, "No styles here yet. An admin adds one with `%s set NAME words --flags`.", StyleCommand)
	} else {
		fmt.Fprintf(&out, "*Styles here* · use one with `%s … --style NAME`", b.cfg.Command)
		for i, s := range styles {
			origin := "from config"
			if !s.Config {
				origin = setBy(s.By, s.At)
			}
			line := fmt.Sprintf("\n• *%s*: %s · %s", styleName(s.Name), code(core.Truncate(s.Spec(), maxSpecShown)), origin)
			if out.Len()+len(line) > maxListChars {
				fmt.Fprintf(&out, "\n…and %d more", len(styles)-i)
				break
			}
			out.WriteString(line)
		}
	}
	if !d.IsZero() {
		fmt.Fprintf(&out, "\n*This channel's defaults* for new images: %s · %s", code(d.String()), setBy(d.By, d.At))
	}
	if help {
		out.WriteString("\n\n" + b.styleUsage())
	} else {
		fmt.Fprintf(&out, "\nCommands: `%s help`", StyleCommand)
	}
	return out.String(), nil
}

// channelCommand shows, sets (spec: flags) or, with "clear", clears the
// defaults of msg's channel.
func (b *Bot) channelCommand(ctx context.Context, msg core.Message, spec string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(spec)) {
	case "":
		d, _, err := b.engine.ChannelDefaults(ctx, msg)
		if err != nil {
			return "", err
		}
		if d.IsZero() {
			return fmt.Sprintf("This channel has no defaults: new images here take only their own flags. An admin sets them with `%s channel --style NAME --quality high`.", StyleCommand), nil
		}
		return fmt.Sprintf("*This channel's defaults* for new images: %s · %s\nA request's own flags and `--style` win over them.", code(d.String()), setBy(d.By, d.At)), nil
	case "clear":
		if _, err := b.engine.SetChannelDefaults(ctx, msg, msg.Channel, ""); err != nil {
			return "", err
		}
		return "✅ This channel's defaults are cleared: new images here take only their own flags.", nil
	}
	d, err := b.engine.SetChannelDefaults(ctx, msg, msg.Channel, spec)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("✅ New images in this channel now start with %s; a request's own flags and `--style` win over them.", code(d.String())), nil
}

// styleUsage lists what StyleCommand takes.
func (b *Bot) styleUsage() string {
	return strings.Join([]string{
		fmt.Sprintf("`%s list`: the styles here and this channel's defaults", StyleCommand),
		fmt.Sprintf("`%s set NAME words --flags`: add or replace a style, e.g. `%s set brand flat vector art, navy and gold --ar 16:9` (admins)", StyleCommand, StyleCommand),
		fmt.Sprintf("`%s delete NAME`: delete a style (admins)", StyleCommand),
		fmt.Sprintf("`%s channel`: this channel's defaults; `channel --style NAME --quality high` sets them, `channel clear` clears them (admins)", StyleCommand),
		fmt.Sprintf("Use a style with `%s a fox --style NAME`.", b.cfg.Command),
	}, "\n")
}

// cutWord splits s, trimmed, at its first white space: its first word and
// the rest, trimmed.
func cutWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// styleName shows a style's name: on one line, escaped.
func styleName(name string) string { return escape(safetext.Name(name)) }

// code shows text as Slack inline code: on one line, escaped, its
// backticks (which would end the code) replaced by a look-alike, so that
// what someone typed shows as typed and formats nothing.
func code(text string) string {
	return "`" + strings.ReplaceAll(escape(safetext.Name(text)), "`", "ˋ") + "`"
}

// slackUserID matches the user ids Slack gives people.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{1,20}$`)

// setBy says who set a style or defaults in chat and when: a mention,
// which notifies nobody in an ephemeral message, and the date in the
// reader's own time zone.
func setBy(u core.User, at time.Time) string {
	who := "someone"
	switch {
	case slackUserID.MatchString(u.ID):
		who = "<@" + u.ID + ">"
	case u.Name != "":
		who = escape(safetext.Name(u.Name))
	}
	if at.IsZero() {
		return "set by " + who
	}
	return fmt.Sprintf("set by %s on <!date^%d^{date_short}|%s>", who, at.Unix(), at.UTC().Format(time.DateOnly))
}
