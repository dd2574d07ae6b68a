package slack

import (
	"context"
	"errors"
	"fmt"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/core"
)

// post is a person's message that may be a prompt: a mention, a reply in a
// thread or a direct message.
type post struct {
	who      teamID
	botUser  string // the bot's user id in the post's workspace
	channel  string
	user     string
	text     string
	ts       string
	threadTS string // "" for a top-level message
	files    []slackapi.File
	dm       bool // in a direct message with the bot
}

// thread returns the timestamp of the thread the post belongs to, or
// starts: its root, or the post itself when it is top-level.
func (p post) thread() string { return either(p.threadTS, p.ts) }

// event returns the event id and the work of an Events API delivery, or a
// nil job for the events Easel never acts on. It runs on the reader, before
// the ack, so it does no I/O.
func (b *Bot) event(ev slackevents.EventsAPIEvent) (id string, job inbox.Job, err error) {
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok {
		return "", nil, fmt.Errorf("unexpected Events API delivery %q", ev.Type)
	}
	who := teamID{team: ev.TeamID, enterprise: ev.EnterpriseID}
	me := b.botUserIn(cb)
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		if e.BotID != "" || e.Edited != nil || e.User == me {
			return "", nil, nil
		}
		p := post{who: who, botUser: me, channel: e.Channel, user: e.User, text: e.Text,
			ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, files: e.Files, dm: isDM(e.Channel, "")}
		return cb.EventID, b.promptJob(p), nil
	case *slackevents.MessageEvent:
		if !personal(e, me) {
			return "", nil, nil
		}
		p := post{who: who, botUser: me, channel: e.Channel, user: e.User, text: e.Text,
			ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, dm: e.ChannelType == "im"}
		if e.Message != nil {
			p.files = e.Message.Files
		}
		if e.ChannelType == "im" {
			return cb.EventID, b.promptJob(p), nil
		}
		return cb.EventID, b.replyJob(p), nil
	case *slackevents.AssistantThreadStartedEvent:
		id, job := b.assistantEvent(cb, who, e.AssistantThread, true)
		return id, job, nil
	case *slackevents.AssistantThreadContextChangedEvent:
		id, job := b.assistantEvent(cb, who, e.AssistantThread, false)
		return id, job, nil
	case *slackevents.AppUninstalledEvent:
		return b.uninstallEvent(cb, who)
	case *slackevents.TokensRevokedEvent:
		if len(e.Tokens.Bot) == 0 {
			return "", nil, nil // only people's tokens, which Easel has none of
		}
		return b.uninstallEvent(cb, who)
	}
	return "", nil, nil
}

// botUserIn returns the bot's user id in the workspace an event came from,
// without I/O: with OAuth, from the installation the event was delivered
// for (its authorizations); else BotToken's.
func (b *Bot) botUserIn(cb *slackevents.EventsAPICallbackEvent) string {
	if b.installs != nil {
		for _, a := range cb.Authorizations {
			if a.IsBot && a.UserID != "" {
				return a.UserID
			}
		}
	}
	if b.home == nil {
		return ""
	}
	return b.home.botUser
}

// uninstallEvent returns the work of app_uninstalled, or of tokens_revoked
// for the bot's token: forgetting the installation it was delivered for,
// the organization's for an organization-wide install. Without OAuth there
// is nothing to forget.
func (b *Bot) uninstallEvent(cb *slackevents.EventsAPICallbackEvent, who teamID) (string, inbox.Job, error) {
	if b.installs == nil {
		return "", nil, nil
	}
	key := install.TeamKey(who.team)
	for _, a := range cb.Authorizations {
		if a.IsEnterpriseInstall && a.EnterpriseID != "" {
			key = install.EnterpriseKey(a.EnterpriseID)
		}
	}
	if key == install.TeamKey("") {
		return "", nil, errors.New("an uninstall event names no workspace")
	}
	return cb.EventID, func(ctx context.Context, _ string) bool {
		b.uninstall(ctx, key)
		return true
	}, nil
}

// personal reports whether a message event is a person's new message that
// Easel, whose bot user is me, might act on: not a bot's, not an edit or
// deletion, and in a channel not one that mentions Easel (those also
// arrive as app_mention) or a top-level message (only replies in session
// threads count).
func personal(e *slackevents.MessageEvent, me string) bool {
	switch e.SubType {
	case "", "file_share", "thread_broadcast":
	default:
		return false
	}
	if e.BotID != "" || e.User == "" || e.User == me {
		return false
	}
	if e.ChannelType == "im" {
		return true
	}
	return e.ThreadTimeStamp != "" && !mentions(e.Text, me)
}

// promptJob returns the work of a post that is a prompt.
func (b *Bot) promptJob(p post) inbox.Job {
	return func(ctx context.Context, key string) bool {
		b.prompt(ctx, key, p)
		return true
	}
}

// replyJob returns the work of a reply in a channel thread (see reply).
func (b *Bot) replyJob(p post) inbox.Job {
	return func(ctx context.Context, key string) bool { return b.reply(ctx, key, p) }
}

// orphanWait is how long after a thread's root was posted a reply in the
// thread may wait for the thread's session. Slack promises no order
// between events and retries one it could not deliver after about a
// minute and again after five, so the mention that starts a session can
// arrive after replies to it; and the turn of a slash command is recorded
// a moment after its root message is posted, or, after a crash, when the
// next start replays the command.
const orphanWait = 15 * time.Minute

// reply handles a reply in a channel thread: a refinement when the thread
// is a session. A reply in a thread that has no session yet, whose root was
// posted less than orphanWait ago, waits for one: its delivery is parked,
// unhandled, and taken up again as soon as a turn is recorded in the thread
// (see prompt and command), or when the root is orphanWait old, when a
// thread that still has no session is not Easel's business and the reply
// is dropped. A restart meanwhile replays it and it waits again. Waiting
// needs no call to Slack, and does not depend on what the root is: a
// mention of Easel still on its way, or Easel's own root message whose
// turn is being recorded. reply reports false when it parked the delivery.
func (b *Bot) reply(ctx context.Context, key string, p post) bool {
	thread := threadKey(p.channel, p.threadTS)
	found, err := b.hasSession(ctx, thread)
	switch {
	case err != nil:
		b.log.Error("slack: find session", "channel", p.channel, "err", err)
		return true
	case found:
		b.prompt(ctx, key, p)
		return true
	}
	now := time.Now()
	until := tsTime(p.threadTS).Add(orphanWait)
	if !now.Before(until) {
		return true // an older thread without a session: not a session thread
	}
	if latest := now.Add(orphanWait); until.After(latest) { // a root from the future: a clock off
		until = latest
	}
	unpark, ok := b.inbox.Park(thread, until, b.later(key, b.replyJob(p)))
	if !ok {
		b.log.Warn("slack: too many replies wait for their thread's session; ignoring one", "channel", p.channel, "thread", p.threadTS)
		return true
	}
	// The session may have been recorded since the lookup, its wake gone.
	if found, err := b.hasSession(ctx, thread); err == nil && found && unpark() {
		b.prompt(ctx, key, p)
		return true
	}
	b.log.Debug("slack: a reply waits for its thread's session", "channel", p.channel, "thread", p.threadTS, "key", key)
	return false
}

// hasSession reports whether a thread has a session.
func (b *Bot) hasSession(ctx context.Context, thread string) (bool, error) {
	_, err := b.engine.Session(ctx, Platform, thread)
	switch {
	case err == nil:
		return true, nil
	case core.KindOf(err) == core.NotFound:
		return false, nil
	}
	return false, err
}

// prompt hands a person's message to the engine as a prompt in its
// thread's session, creating the session if the thread has none: ⏳ on the
// message while it is accepted, its attachments downloaded as inputs.
// Problems with the prompt, limits reached and a sender who may not use
// Easel there are told to its author alone; problems with an attachment are
// told in the thread.
// key is the inbox key of the delivery that carried the post.
func (b *Bot) prompt(ctx context.Context, key string, p post) {
	// Everything that can refuse the prompt (access, flags, limits,
	// requests in flight, quotas) is checked before any reaction, download
	// or Slack lookup.
	text := promptText(p.text, p.botUser)
	if flags, ok := isDescribe(text); ok {
		b.describe(ctx, key, p, flags)
		return
	}
	check := core.Message{Platform: Platform, Workspace: p.who.team, Channel: p.channel, Thread: threadKey(p.channel, p.thread()),
		User: core.User{ID: p.user}, Action: core.ActionPrompt, Text: text, DM: p.dm}
	w, err := b.workspace(ctx, p.who)
	if err != nil {
		b.log.Warn("slack: a message from a workspace Easel cannot serve; dropped", "team", p.who.team, "err", err)
		return
	}
	if err := b.engine.Check(ctx, check); err != nil {
		b.tell(ctx, w, p.channel, p.user, p.thread(), err)
		return
	}
	th := b.thread(p.who, p.channel, p.thread())
	defer th.working(ctx, p.ts)()
	inputs, err := b.attachments(ctx, w, p.files)
	if err != nil {
		th.notWorking(ctx, p.ts)
		b.say(ctx, th, err)
		return
	}
	msg := core.Message{
		Platform: Platform, Workspace: p.who.team, Channel: p.channel, Thread: threadKey(p.channel, p.thread()),
		User: b.user(ctx, w, p.user, ""), Action: core.ActionPrompt, Text: text, Inputs: inputs, Source: p.ts, DM: p.dm,
		Delivery: key,
	}
	q, err := b.engine.Handle(ctx, th, msg)
	if errors.Is(err, core.ErrDeliveryTaken) {
		b.log.Info("slack: another Easel process handles this delivery", "key", key)
		return
	}
	if err != nil {
		th.notWorking(ctx, p.ts)
		b.tell(ctx, w, p.channel, p.user, p.thread(), err)
		return
	}
	b.queued(q, msg)
	b.inbox.Wake(msg.Thread) // replies that came first
}
