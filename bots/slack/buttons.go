package slack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"

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
// the version (with the session's gallery link, if any), one button per
// action, the "Edit region" menu (a static_select) and a Delete button that
// asks for confirmation first. Each button's action_id is the action's name
// and its value "SESSION:VERSION"; each menu option's value is
// "SESSION:VERSION:REGION"; so a press needs nothing in memory.
func buttonBlocks(p core.ImagePost) []slackapi.Block {
	if len(p.Candidates) > 0 {
		return pickBlocks(p)
	}
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
	text := fmt.Sprintf("*v%d* · reply in this thread to refine it", p.Version)
	if p.Link != "" {
		text += " · <" + slackutilsx.EscapeMessage(p.Link) + "|Open in gallery>"
	}
	note := slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false)
	return []slackapi.Block{
		slackapi.NewContextBlock("", note),
		slackapi.NewActionBlock(fmt.Sprintf("easel_v%d", p.Version), buttons...),
	}
}

// pickPrefix begins the action_id of a pick button under a grid of
// candidates, "pick_3" for the third cell (action_ids are unique in a
// block).
const pickPrefix = string(core.ActionPick) + "_"

// pickBlocks returns the blocks under a grid of candidates: a line saying
// it is a preview, and a pick button per cell, whose value
// "SESSION:GRID:VERSION" names the grid by its first version and the
// candidate the button picks.
func pickBlocks(p core.ImagePost) []slackapi.Block {
	buttons := make([]slackapi.BlockElement, len(p.Buttons))
	for i, btn := range p.Buttons {
		label := slackapi.NewTextBlockObject(slackapi.PlainTextType, btn.Label, false, false)
		buttons[i] = slackapi.NewButtonBlockElement(pickPrefix+btn.Label, pickValue(p.SessionID, p.Version, p.Candidates[i]), label)
	}
	text := fmt.Sprintf("*%s* · a preview: pick one to keep it and refine it", gridTitle(p))
	note := slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false)
	return []slackapi.Block{
		slackapi.NewContextBlock("", note),
		slackapi.NewActionBlock(fmt.Sprintf("easel_grid_v%d", p.Version), buttons...),
	}
}

// gridTitle names a grid by its candidates, "v3–v6".
func gridTitle(p core.ImagePost) string {
	return fmt.Sprintf("v%d–v%d", p.Candidates[0], p.Candidates[len(p.Candidates)-1])
}

func pickValue(session string, grid, version int) string {
	return buttonValue(session, grid) + ":" + strconv.Itoa(version)
}

// parsePickValue undoes pickValue. The versions are checked by the
// engine, which refuses, with a note to the presser, a version that is no
// candidate of the grid.
func parsePickValue(value string) (session string, grid, version int, ok bool) {
	i := strings.LastIndex(value, ":")
	if i < 0 {
		return "", 0, 0, false
	}
	session, grid, ok = parseValue(value[:i])
	version, err := strconv.Atoi(value[i+1:])
	return session, grid, version, ok && err == nil && version > 0
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

// statusBlocks returns the Block Kit blocks of a status message: the
// status, and its Cancel buttons, each valued "SESSION:TURN". The first
// button's action_id is cancelActionID; the others' add "_2", "_3"…, as
// action_ids are unique within a block.
func statusBlocks(status string, buttons []core.CancelButton) []slackapi.Block {
	text := slackapi.NewTextBlockObject(slackapi.MarkdownType, escape(status), false, false)
	var elems []slackapi.BlockElement
	for i, b := range buttons {
		id := cancelActionID
		if i > 0 {
			id += "_" + strconv.Itoa(i+1)
		}
		label := slackapi.NewTextBlockObject(slackapi.PlainTextType, b.Label, false, false)
		cancel := slackapi.NewButtonBlockElement(id, buttonValue(b.Turn.SessionID, b.Turn.TurnID), label)
		cancel.Style = slackapi.StyleDanger
		elems = append(elems, cancel)
	}
	return []slackapi.Block{
		slackapi.NewSectionBlock(text, nil, nil),
		slackapi.NewActionBlock("easel_status", elems...),
	}
}

// isCancel reports whether actionID is a status line's Cancel button's.
func isCancel(actionID string) bool {
	rest, ok := strings.CutPrefix(actionID, cancelActionID)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(rest, "_"))
	return strings.HasPrefix(rest, "_") && err == nil && n > 1
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
	if strings.HasPrefix(a.ActionID, usePrefix) {
		b.useSuggestion(ctx, key, cb, a)
		return
	}
	action, _ := buttonAction(a.ActionID)
	session, version, _ := parseValue(a.Value)
	region, turn := "", 0
	switch {
	case a.ActionID == regionActionID:
		action = core.ActionRegion
		session, version, region, _ = parseRegionValue(a.SelectedOption.Value)
	case isCancel(a.ActionID):
		action, turn, version = core.ActionCancel, version, 0
	case a.ActionID == deleteActionID:
		action = core.ActionDelete
	}
	grid := 0
	if strings.HasPrefix(a.ActionID, pickPrefix) {
		action = core.ActionPick
		session, grid, version, _ = parsePickValue(a.Value)
	}
	who := teamID{team: cb.Team.ID, enterprise: either(cb.Enterprise.ID, cb.Team.EnterpriseID)}
	w, err := b.workspace(ctx, who)
	if err != nil {
		b.log.Warn("slack: a button press from a workspace Easel cannot serve; dropped", "team", cb.Team.ID, "err", err)
		return
	}
	channel := either(cb.Container.ChannelID, cb.Channel.ID)
	root := either(cb.Message.ThreadTimestamp, either(cb.Container.ThreadTs, cb.Container.MessageTs))
	dm := isDM(channel, cb.Channel.Name)
	access := core.Message{Platform: Platform, Workspace: cb.Team.ID, Channel: channel, User: core.User{ID: cb.User.ID},
		Action: action, DM: dm}
	if err := b.engine.Allowed(access); err != nil {
		b.tell(ctx, w, channel, cb.User.ID, root, err)
		return
	}
	msg := core.Message{
		Platform: Platform, Workspace: cb.Team.ID, Channel: channel, Thread: threadKey(channel, root),
		User: b.user(ctx, w, cb.User.ID, cb.User.Name), Action: action, Version: version, SessionID: session, DM: dm,
		Delivery: key,
		Grid:     grid,
	}
	if action == core.ActionRegion {
		// A choice makes no turn: the delivery is handled when this returns.
		if err := b.engine.ChooseRegion(ctx, b.thread(who, channel, root), msg, region); err != nil {
			b.tell(ctx, w, channel, cb.User.ID, root, err)
		}
		return
	}
	if action == core.ActionCancel {
		// Neither does a cancel; the engine says it in the thread.
		if err := b.engine.Cancel(ctx, b.thread(who, channel, root), msg, turn); err != nil {
			b.tell(ctx, w, channel, cb.User.ID, root, err)
		}
		return
	}
	if action == core.ActionDelete {
		// Nor a deletion, which takes the result's post down.
		if err := b.engine.Delete(ctx, b.thread(who, channel, root), msg); err != nil {
			b.tell(ctx, w, channel, cb.User.ID, root, err)
		}
		return
	}
	q, err := b.engine.Handle(ctx, b.thread(who, channel, root), msg)
	if err != nil {
		b.tell(ctx, w, channel, cb.User.ID, root, err)
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
		if strings.HasPrefix(a.ActionID, pickPrefix) {
			if _, _, _, ok := parsePickValue(a.Value); ok {
				return a, true
			}
			continue
		}
		if strings.HasPrefix(a.ActionID, usePrefix) {
			if _, _, _, ok := parseUseValue(a.Value); ok {
				return a, true
			}
			continue
		}
		_, isAction := buttonAction(a.ActionID)
		isAction = isAction || isCancel(a.ActionID) || a.ActionID == deleteActionID
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
