package slack

import (
	"context"
	"errors"
	"net/url"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
)

// command handles the slash command: a root message "@user: prompt" in the
// channel, and the session in its thread. Slack allows no slash commands in
// threads, so every command starts a new session. key is the inbox key of
// the command's delivery.
func (b *Bot) command(ctx context.Context, key string, cmd slackapi.SlashCommand) {
	switch cmd.Command {
	case DescribeCommand:
		b.explainDescribe(ctx, cmd)
		return
	case StyleCommand:
		b.styleCommand(ctx, cmd)
		return
	}
	if cmd.Command != b.cfg.Command {
		b.log.Warn("slack: unknown slash command; is the manifest's command the configured one?", "command", cmd.Command)
		return
	}
	who := teamID{team: cmd.TeamID, enterprise: cmd.EnterpriseID}
	w, err := b.workspace(ctx, who)
	if err != nil {
		b.log.Warn("slack: a command from a workspace Easel cannot serve; dropped", "team", cmd.TeamID, "err", err)
		return
	}
	// Everything that can refuse the command (access, flags, limits,
	// requests in flight, quotas) is checked before anything is posted, so
	// that a refused command leaves nothing in the channel.
	text := unescape(cmd.Text)
	check := core.Message{Platform: Platform, Workspace: cmd.TeamID, Channel: cmd.ChannelID,
		User: core.User{ID: cmd.UserID, Name: cmd.UserName}, Action: core.ActionPrompt, Text: text,
		DM: isDM(cmd.ChannelID, cmd.ChannelName), NewSession: true}
	if err := b.engine.Check(ctx, check); err != nil {
		b.respond(ctx, w, cmd, err)
		return
	}
	user := b.user(ctx, w, cmd.UserID, cmd.UserName)
	var root string
	err = b.call(ctx, "chat.postMessage", func() (err error) {
		_, root, err = w.api.PostMessageContext(ctx, cmd.ChannelID, slackapi.MsgOptionText("<@"+cmd.UserID+">: "+escape(text), false))
		return err
	})
	if err != nil {
		b.respond(ctx, w, cmd, postError(err))
		return
	}
	th := b.thread(who, cmd.ChannelID, root)
	th.begun()
	defer th.working(ctx, root)()
	msg := core.Message{
		Platform: Platform, Workspace: cmd.TeamID, Channel: cmd.ChannelID, Thread: threadKey(cmd.ChannelID, root),
		User: user, Action: core.ActionPrompt, Text: text, Source: root, DM: check.DM,
		Delivery: key,
	}
	q, err := b.engine.Handle(ctx, th, msg)
	if err == nil {
		b.queued(q, msg)
		b.inbox.Wake(msg.Thread) // replies that came first
		return
	}
	// Nothing was queued (a limit was reached since the check): take the
	// root message back and say why.
	derr := b.call(ctx, "chat.delete", func() error {
		_, _, err := w.api.DeleteMessageContext(ctx, cmd.ChannelID, root)
		return err
	})
	if derr != nil {
		b.log.Warn("slack: could not delete the root of a rejected command", "err", derr)
	}
	b.respond(ctx, w, cmd, err)
}

// respond tells the person who typed cmd about err, privately (see
// answerCommand). w is the workspace of cmd.
func (b *Bot) respond(ctx context.Context, w *workspace, cmd slackapi.SlashCommand, err error) {
	if errors.Is(err, core.ErrDeliveryTaken) {
		b.log.Info("slack: another Easel process handles this command", "trigger", cmd.TriggerID)
		return // whoever holds it answers
	}
	b.answerCommand(ctx, w, cmd, escape(mark(err)+b.userMessage(err)))
}

// answerCommand shows text, Slack-formatted and escaped already, to the
// person who typed cmd alone: through the command's response URL, which
// works even where the bot is not a member, or else as an ephemeral
// message. w is the workspace of cmd. A failure is logged.
func (b *Bot) answerCommand(ctx context.Context, w *workspace, cmd slackapi.SlashCommand, text string) {
	method, channel := "response_url", ""
	opt := slackapi.MsgOptionResponseURL(cmd.ResponseURL, slackapi.ResponseTypeEphemeral)
	if u, err := url.Parse(cmd.ResponseURL); cmd.ResponseURL == "" || err != nil || !b.trusted(u) {
		method, channel, opt = "chat.postEphemeral", cmd.ChannelID, slackapi.MsgOptionPostEphemeral(cmd.UserID)
	}
	err := b.call(ctx, method, func() error {
		_, _, err := w.api.PostMessageContext(ctx, channel, opt, slackapi.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		b.log.Warn("slack: answering a command failed", "command", cmd.Command, "err", err)
	}
}

// postError explains why the root message of a command could not be posted.
func postError(err error) error {
	switch errorCode(err) {
	case "not_in_channel":
		return core.WrapError(core.Invalid, err, "I'm not in this channel yet: add me with /invite, then try again")
	case "channel_not_found", "is_archived":
		return core.WrapError(core.Invalid, err, "I can't post in this conversation: use the command in a channel I'm in, or in a direct message with me")
	}
	return err
}

// tell shows err to user alone, in channel of workspace w (in the thread
// rooted at root, if any), as an ephemeral message.
func (b *Bot) tell(ctx context.Context, w *workspace, channel, user, root string, err error) {
	if errors.Is(err, core.ErrDeliveryTaken) {
		b.log.Info("slack: another Easel process handles this delivery", "channel", channel)
		return // whoever holds it answers
	}
	text := mark(err) + b.userMessage(err)
	opts := []slackapi.MsgOption{slackapi.MsgOptionText(escape(text), false)}
	if root != "" {
		opts = append(opts, slackapi.MsgOptionTS(root))
	}
	err = b.call(ctx, "chat.postEphemeral", func() error {
		_, err := w.api.PostEphemeralContext(ctx, channel, user, opts...)
		return err
	})
	if err != nil {
		b.log.Warn("slack: ephemeral message failed", "err", err)
	}
}

// say tells the whole thread about err.
func (b *Bot) say(ctx context.Context, th *thread, err error) {
	if err := th.Reply(ctx, "❌ "+b.userMessage(err)); err != nil {
		b.log.Warn("slack: thread reply failed", "err", err)
	}
}

// queued logs an accepted request; the prompt itself is not logged.
func (b *Bot) queued(q core.Queued, msg core.Message) {
	b.log.Info("slack: request queued", "session", q.SessionID, "turn", q.TurnID, "position", q.Position,
		"action", msg.Action, "channel", msg.Channel, "user", msg.User.ID, "inputs", len(msg.Inputs))
}

// userMessage returns what a person may read about err; internal errors
// are logged under the reference it names.
func (b *Bot) userMessage(err error) string {
	ref := core.NewRef()
	if core.KindOf(err) == core.Internal {
		b.log.Error("slack: request failed", "ref", ref, "err", err)
	}
	return core.UserMessage(err, ref)
}

// mark returns the sign put before a note about err: 🔒 for a request its
// sender may not make, ❌ for any other problem.
func mark(err error) string {
	if core.KindOf(err) == core.Forbidden {
		return "🔒 "
	}
	return "❌ "
}

// isDM reports whether a conversation is a direct message with the bot:
// Slack's DM channel ids start with "D", and slash commands name them
// "directmessage".
func isDM(channel, name string) bool {
	return strings.HasPrefix(channel, "D") || name == "directmessage"
}
