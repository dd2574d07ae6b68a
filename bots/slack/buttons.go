package slack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
)

// Action ids of the controls that are not the engine's result buttons:
// the "Edit region" menu, a result's Delete button, and the Cancel button
// of a status message.
const (
	regionActionID = "edit_region"
	deleteActionID = "delete"
	cancelActionID = "cancel_turn"
)

// buttonBlocks returns the Block Kit blocks under an image: a line naming
// the version, one button per action, the "Edit region" menu (a
// static_select) and a Delete button that asks for confirmation first.
// Each button's action_id is the action's name and its value
// "SESSION:VERSION"; each menu option's value is "SESSION:VERSION:REGION";
// so a press needs nothing in memory.
func buttonBlocks(p core.ImagePost) []slackapi.Block {
	value := buttonValue(p.SessionID, p.Version)
	buttons := make([]slackapi.BlockElement, len(p.Buttons), len(p.Buttons)+2)
	for i, btn := range p.Buttons {
		label := slackapi.NewTextBlockObject(slackapi.PlainTextType, btn.Label, false, false)
		buttons[i] = slackapi.NewButtonBlockElement(string(btn.Action), value, label)
	}
	if len(p.Buttons) > 0 {
		var opts []*slackapi.OptionBlockObject
		for _, o := range core.RegionOptions() {
			text := slackapi.NewTextBlockObject(slackapi.PlainTextType, o.Label, false, false)
			opts = append(opts, slackapi.NewOptionBlockObject(value+":"+o.Value, text, nil))
		}
		placeholder := slackapi.NewTextBlockObject(slackapi.PlainTextType, "✂️ Edit region", false, false)
		buttons = append(buttons, slackapi.NewOptionsSelectBlockElement(slackapi.OptTypeStatic, placeholder, regionActionID, opts...),
			deleteButton(value, p.Version))
	}
	note := slackapi.NewTextBlockObject(slackapi.MarkdownType,
		fmt.Sprintf("*v%d* · reply in this thread to refine it", p.Version), false, false)
	return []slackapi.Block{
		slackapi.NewContextBlock("", note),
		slackapi.NewActionBlock(fmt.Sprintf("easel_v%d", p.Version), buttons...),
	}
}

// deleteButton returns a result's Delete button, whose press Slack lets
// through only once the presser confirms it in a dialog.
func deleteButton(value string, version int) *slackapi.ButtonBlockElement {
	plain := func(s string) *slackapi.TextBlockObject {
		return slackapi.NewTextBlockObject(slackapi.PlainTextType, s, false, false)
	}
	btn := slackapi.NewButtonBlockElement(deleteActionID, value, plain("Delete"))
	btn.Style = slackapi.StyleDanger
	btn.Confirm = slackapi.NewConfirmationBlockObject(plain(fmt.Sprintf("Delete v%d?", version)),
		plain(fmt.Sprintf("v%d leaves this thread and can no longer be refined, regenerated or exported.", version)),
		plain("Delete"), plain("Keep it"))
	btn.Confirm.Style = slackapi.StyleDanger
	return btn
}

// statusBlocks returns the Block Kit blocks of a status message about turn
// ref: the status, and a Cancel button whose value is "SESSION:TURN".
func statusBlocks(status string, ref core.JobRef) []slackapi.Block {
	text := slackapi.NewTextBlockObject(slackapi.MarkdownType, escape(status), false, false)
	label := slackapi.NewTextBlockObject(slackapi.PlainTextType, "Cancel", false, false)
	cancel := slackapi.NewButtonBlockElement(cancelActionID, buttonValue(ref.SessionID, ref.TurnID), label)
	cancel.Style = slackapi.StyleDanger
	return []slackapi.Block{
		slackapi.NewSectionBlock(text, nil, nil),
		slackapi.NewActionBlock("easel_status", cancel),
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
	region, turn := "", 0
	switch a.ActionID {
	case regionActionID:
		action = core.ActionRegion
		session, version, region, _ = parseRegionValue(a.SelectedOption.Value)
	case cancelActionID:
		action, turn, version = core.ActionCancel, version, 0
	case deleteActionID:
		action = core.ActionDelete
	}
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
	if action == core.ActionRegion {
		// A choice makes no turn: the delivery is handled when this returns.
		if err := b.engine.ChooseRegion(ctx, b.thread(channel, root), msg, region); err != nil {
			b.tell(ctx, channel, cb.User.ID, root, err)
		}
		return
	}
	if action == core.ActionCancel {
		// Neither does a cancel; the engine says it in the thread.
		if err := b.engine.Cancel(ctx, b.thread(channel, root), msg, turn); err != nil {
			b.tell(ctx, channel, cb.User.ID, root, err)
		}
		return
	}
	if action == core.ActionDelete {
		// Nor a deletion, which takes the result's post down.
		if err := b.engine.Delete(ctx, b.thread(channel, root), msg); err != nil {
			b.tell(ctx, channel, cb.User.ID, root, err)
		}
		return
	}
	q, err := b.engine.Handle(ctx, b.thread(channel, root), msg)
	if err != nil {
		b.tell(ctx, channel, cb.User.ID, root, err)
		return
	}
	b.queued(q, msg)
}

// pressed returns the first of Easel's buttons (a result's, its Delete, or
// a status message's Cancel) among the actions of a block_actions payload.
func pressed(cb slackapi.InteractionCallback) (*slackapi.BlockAction, bool) {
	if cb.Type != slackapi.InteractionTypeBlockActions {
		return nil, false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		if a.ActionID == regionActionID && a.Type == slackapi.ActionType(slackapi.OptTypeStatic) {
			if _, _, _, ok := parseRegionValue(a.SelectedOption.Value); ok {
				return a, true
			}
			continue
		}
		_, isAction := buttonAction(a.ActionID)
		isAction = isAction || a.ActionID == cancelActionID || a.ActionID == deleteActionID
		_, _, isValue := parseValue(a.Value)
		if isAction && isValue {
			return a, true
		}
	}
	return nil, false
}

// parseRegionValue reads an "Edit region" option's value,
// "SESSION:VERSION:REGION". The region is checked by the engine, which
// refuses, with a note to the chooser, one that is no choice of the menu.
func parseRegionValue(value string) (session string, version int, region string, ok bool) {
	rest, region, found := strings.Cut(value, ":")
	if i := strings.LastIndex(value, ":"); found && i > 0 {
		rest, region = value[:i], value[i+1:]
	}
	session, version, ok = parseValue(rest)
	return session, version, region, ok && found && region != ""
}
