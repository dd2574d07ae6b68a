package slack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
)

// buttonBlocks returns the Block Kit blocks under an image: a line naming
// the version and one button per action. Each button's action_id is the
// action's name and its value "SESSION:VERSION", so a press needs nothing
// in memory.
func buttonBlocks(p core.ImagePost) []slackapi.Block {
	value := buttonValue(p.SessionID, p.Version)
	buttons := make([]slackapi.BlockElement, len(p.Buttons))
	for i, btn := range p.Buttons {
		label := slackapi.NewTextBlockObject(slackapi.PlainTextType, btn.Label, false, false)
		buttons[i] = slackapi.NewButtonBlockElement(string(btn.Action), value, label)
	}
	note := slackapi.NewTextBlockObject(slackapi.MarkdownType,
		fmt.Sprintf("*v%d* · reply in this thread to refine it", p.Version), false, false)
	return []slackapi.Block{
		slackapi.NewContextBlock("", note),
		slackapi.NewActionBlock(fmt.Sprintf("easel_v%d", p.Version), buttons...),
	}
}

func buttonValue(session string, version int) string {
	return session + ":" + strconv.Itoa(version)
}

// parseValue undoes buttonValue.
func parseValue(value string) (session string, version int, ok bool) {
	session, v, found := strings.Cut(value, ":")
	version, err := strconv.Atoi(v)
	return session, version, found && session != "" && err == nil && version > 0
}

// buttonAction returns the action a button's action_id names.
func buttonAction(actionID string) (core.Action, bool) {
	for _, btn := range core.Buttons {
		if string(btn.Action) == actionID {
			return btn.Action, true
		}
	}
	return "", false
}

// interaction handles a button press: the action applies to the version the
// button is under, in the thread of the message it is on. A presser who may
// not use Easel there is told so alone, before anything else happens. key
// is the inbox key of the press's delivery.
func (b *Bot) interaction(ctx context.Context, key string, cb slackapi.InteractionCallback) {
	a, ok := pressed(cb)
	if !ok {
		return
	}
	action, _ := buttonAction(a.ActionID)
	session, version, _ := parseValue(a.Value)
	channel := either(cb.Container.ChannelID, cb.Channel.ID)
	root := either(cb.Message.ThreadTimestamp, either(cb.Container.ThreadTs, cb.Container.MessageTs))
	dm := isDM(channel, cb.Channel.Name)
	access := core.Message{Platform: Platform, Workspace: cb.Team.ID, Channel: channel, User: core.User{ID: cb.User.ID},
		Action: action, DM: dm}
	if err := b.engine.Allowed(access); err != nil {
		b.tell(ctx, channel, cb.User.ID, root, err)
		return
	}
	msg := core.Message{
		Platform: Platform, Workspace: cb.Team.ID, Channel: channel, Thread: threadKey(channel, root),
		User: b.user(ctx, cb.User.ID, cb.User.Name), Action: action, Version: version, SessionID: session, DM: dm,
		Delivery: key,
	}
	q, err := b.engine.Handle(ctx, b.thread(channel, root), msg)
	if err != nil {
		b.tell(ctx, channel, cb.User.ID, root, err)
		return
	}
	b.queued(q, msg)
}

// pressed returns the first of Easel's buttons among the actions of a
// block_actions payload.
func pressed(cb slackapi.InteractionCallback) (*slackapi.BlockAction, bool) {
	if cb.Type != slackapi.InteractionTypeBlockActions {
		return nil, false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		_, isAction := buttonAction(a.ActionID)
		_, _, isValue := parseValue(a.Value)
		if isAction && isValue {
			return a, true
		}
	}
	return nil, false
}
