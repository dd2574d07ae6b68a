package slack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
)

// DescribeCommand is the slash command that says how to get prompts
// suggested for an image. Slack sends no files with a slash command, so
// the describe itself is asked for by mentioning the bot with the word
// describeWord and the image attached.
const DescribeCommand = "/describe"

// describeWord starts a mention, or a DM, asking for suggestions for its
// attached image: "@Easel describe"; flags (--provider NAME) may follow.
const describeWord = "describe"

// describeHelp is the answer to DescribeCommand.
const describeHelp = "To get prompts suggested for an image, upload it in a message that mentions me and says *describe* " +
	"(`@Easel describe`), in a channel, a thread or a DM with me. I answer in its thread with up to four prompts; " +
	"press one to start a new image with it."

// isDescribe reports whether text, a post's text with the bot's mention
// removed, asks for a describe, and returns the flags after the word.
func isDescribe(text string) (flags string, ok bool) {
	word, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	return strings.TrimSpace(rest), strings.EqualFold(word, describeWord) && (rest == "" || strings.HasPrefix(strings.TrimSpace(rest), "--"))
}

// usePrefix begins the action_id of a suggestion's button, "use_2" for
// the second.
const usePrefix = "use_"

// useValue is a suggestion button's value, "SESSION:TURN:N": the describe
// turn and the suggestion's number, so a press needs nothing in memory.
func useValue(session string, turn, n int) string {
	return buttonValue(session, turn) + ":" + strconv.Itoa(n)
}

// parseUseValue undoes useValue.
func parseUseValue(value string) (session string, turn, n int, ok bool) {
	i := strings.LastIndex(value, ":")
	if i < 0 {
		return "", 0, 0, false
	}
	session, turn, ok = parseValue(value[:i])
	n, err := strconv.Atoi(value[i+1:])
	return session, turn, n, ok && err == nil && n > 0
}

// explainDescribe answers DescribeCommand, to its user alone.
func (b *Bot) explainDescribe(ctx context.Context, cmd slackapi.SlashCommand) {
	w, err := b.workspace(ctx, teamID{team: cmd.TeamID, enterprise: cmd.EnterpriseID})
	if err != nil {
		b.log.Warn("slack: a command from a workspace Easel cannot serve; dropped", "team", cmd.TeamID, "err", err)
		return
	}
	b.answerCommand(ctx, w, cmd, describeHelp)
}

// describe answers a post asking for a describe: the prompts suggested
// for its one attached image, posted in its thread with a button each.
// Problems are told to its author alone. key is the inbox key of the
// delivery that carried the post.
func (b *Bot) describe(ctx context.Context, key string, p post, flags string) {
	w, err := b.workspace(ctx, p.who)
	if err != nil {
		b.log.Warn("slack: a message from a workspace Easel cannot serve; dropped", "team", p.who.team, "err", err)
		return
	}
	msg := core.Message{Platform: Platform, Workspace: p.who.team, Channel: p.channel, Thread: threadKey(p.channel, p.thread()),
		User: core.User{ID: p.user}, Action: core.ActionDescribe, Text: flags, Source: p.ts, DM: p.dm, Delivery: key}
	if err := b.engine.Allowed(msg); err != nil {
		b.tell(ctx, w, p.channel, p.user, p.thread(), err)
		return
	}
	if len(p.files) == 0 {
		b.tell(ctx, w, p.channel, p.user, p.thread(), core.Errorf(core.Invalid, "attach the image to describe to the message that mentions me"))
		return
	}
	th := b.thread(p.who, p.channel, p.thread())
	defer th.working(ctx, p.ts)()
	inputs, err := b.attachments(ctx, w, p.files)
	if err == nil {
		msg.User, msg.Inputs = b.user(ctx, w, p.user, ""), inputs
		var d core.Described
		if d, err = b.engine.Describe(ctx, msg); err == nil {
			th.notWorking(ctx, p.ts)
			b.postSuggestions(ctx, w, p, d)
			b.inbox.Wake(msg.Thread) // replies that came first
			return
		}
	}
	th.notWorking(ctx, p.ts)
	b.tell(ctx, w, p.channel, p.user, p.thread(), err)
}

// postSuggestions posts d's suggestions in the thread of p, numbered, with
// a button each.
func (b *Bot) postSuggestions(ctx context.Context, w *workspace, p post, d core.Described) {
	var text strings.Builder
	fmt.Fprintf(&text, "💡 Prompts for <@%s>'s image:", p.user)
	buttons := make([]slackapi.BlockElement, len(d.Suggestions))
	for i, s := range d.Suggestions {
		n := strconv.Itoa(i + 1)
		fmt.Fprintf(&text, "\n%s. %s", n, escape(core.Truncate(s, 500)))
		label := slackapi.NewTextBlockObject(slackapi.PlainTextType, n, false, false)
		buttons[i] = slackapi.NewButtonBlockElement(usePrefix+n, useValue(d.SessionID, d.TurnID, i+1), label)
	}
	note := slackapi.NewTextBlockObject(slackapi.MarkdownType, "Press a number to start a new image with that prompt", false, false)
	blocks := []slackapi.Block{
		slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, text.String(), false, false), nil, nil),
		slackapi.NewContextBlock("", note),
		slackapi.NewActionBlock(fmt.Sprintf("easel_describe_%d", d.TurnID), buttons...),
	}
	err := b.call(ctx, "chat.postMessage", func() error {
		_, _, err := w.api.PostMessageContext(ctx, p.channel, slackapi.MsgOptionTS(p.thread()),
			slackapi.MsgOptionText(text.String(), false), slackapi.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		b.log.Error("slack: posting prompt suggestions failed", "channel", p.channel, "err", err)
	}
}

// useSuggestion starts a new session with the suggestion a button names,
// as the slash command does: a root message "@user: prompt" in the
// channel, and the session in its thread. Only who asked for the describe,
// or an admin, may; others are told so alone. key is the inbox key of the
// press's delivery.
func (b *Bot) useSuggestion(ctx context.Context, key string, cb slackapi.InteractionCallback, a *slackapi.BlockAction) {
	who := teamID{team: cb.Team.ID, enterprise: either(cb.Enterprise.ID, cb.Team.EnterpriseID)}
	w, err := b.workspace(ctx, who)
	if err != nil {
		b.log.Warn("slack: a button press from a workspace Easel cannot serve; dropped", "team", cb.Team.ID, "err", err)
		return
	}
	channel := either(cb.Container.ChannelID, cb.Channel.ID)
	root := either(cb.Message.ThreadTimestamp, either(cb.Container.ThreadTs, cb.Container.MessageTs))
	msg := core.Message{Platform: Platform, Workspace: cb.Team.ID, Channel: channel, User: b.user(ctx, w, cb.User.ID, cb.User.Name),
		Action: core.ActionPrompt, DM: isDM(channel, cb.Channel.Name), NewSession: true, Delivery: key}
	if err := b.engine.Allowed(msg); err != nil {
		b.tell(ctx, w, channel, cb.User.ID, root, err)
		return
	}
	session, turn, n, _ := parseUseValue(a.Value)
	if msg.Text, err = b.engine.Suggestion(ctx, session, turn, n, msg.User); err == nil {
		err = b.engine.Check(ctx, msg)
	}
	if err != nil {
		b.tell(ctx, w, channel, cb.User.ID, root, err)
		return
	}
	var start string
	err = b.call(ctx, "chat.postMessage", func() (err error) {
		_, start, err = w.api.PostMessageContext(ctx, channel, slackapi.MsgOptionText("<@"+cb.User.ID+">: "+escape(msg.Text), false))
		return err
	})
	if err != nil {
		b.tell(ctx, w, channel, cb.User.ID, root, postError(err))
		return
	}
	th := b.thread(who, channel, start)
	defer th.working(ctx, start)()
	msg.Thread, msg.Source, msg.NewSession = threadKey(channel, start), start, false
	q, err := b.engine.Handle(ctx, th, msg)
	if err == nil {
		b.queued(q, msg)
		return
	}
	derr := b.call(ctx, "chat.delete", func() error {
		_, _, err := w.api.DeleteMessageContext(ctx, channel, start)
		return err
	})
	if derr != nil {
		b.log.Warn("slack: could not delete the root of a refused suggestion", "err", derr)
	}
	b.tell(ctx, w, channel, cb.User.ID, root, err)
}
