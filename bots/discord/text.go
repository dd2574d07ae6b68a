package discord

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/safetext"
)

// maxContent is Discord's limit on a bot message's content.
const maxContent = 2000

// clip makes s a message's content: without control and bidirectional
// characters (safetext.Chat), so a right-to-left override cannot disguise
// it, and cut to Discord's 2,000-character limit, ending with "…" when cut.
// It counts UTF-16 code units, which is never less than what Discord counts.
func clip(s string) string {
	return cut(safetext.Chat(s), maxContent)
}

// cut shortens s to at most n UTF-16 code units, ending with "…" when cut.
func cut(s string, n int) string {
	if units(s) <= n {
		return s
	}
	used := 0
	for i, r := range s {
		if used += utf16.RuneLen(r); used > n-1 {
			return s[:i] + "…"
		}
	}
	return s
}

// units returns the length of s in UTF-16 code units.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// buttonPrefix starts the custom id of every Easel button.
const buttonPrefix = "easel"

// buttonID returns the custom id of a result's button, such as
// "easel:regenerate:<session>:3": everything a press needs, so buttons work
// after a restart. Session ids are 13 characters, well within Discord's 100.
func buttonID(a core.Action, session string, version int) string {
	return buttonPrefix + ":" + string(a) + ":" + session + ":" + strconv.Itoa(version)
}

// parseButtonID reverses buttonID; ok is false for ids that are not an
// Easel button's.
func parseButtonID(id string) (a core.Action, session string, version int, ok bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != buttonPrefix || parts[2] == "" {
		return "", "", 0, false
	}
	a = core.Action(parts[1])
	if !slices.ContainsFunc(core.Buttons, func(b core.Button) bool { return b.Action == a }) {
		return "", "", 0, false
	}
	version, err := strconv.Atoi(parts[3])
	if err != nil || version < 1 || strconv.Itoa(version) != parts[3] { // "02" and "+2" are none of Easel's
		return "", "", 0, false
	}
	return a, parts[2], version, true
}

// pickID returns the custom id of a pick button under a grid of
// candidates, "easel:pick:<session>:1:3": the grid, named by its first
// version, and the candidate the button picks.
func pickID(session string, grid, version int) string {
	return buttonPrefix + ":" + string(core.ActionPick) + ":" + session + ":" + strconv.Itoa(grid) + ":" + strconv.Itoa(version)
}

// parsePickID reverses pickID; ok is false for ids that are not an Easel
// pick button's. The versions are checked by the engine, which refuses,
// with a note to the presser, a version that is no candidate of the grid.
func parsePickID(id string) (session string, grid, version int, ok bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 5 || parts[0] != buttonPrefix || parts[1] != string(core.ActionPick) || parts[2] == "" {
		return "", 0, 0, false
	}
	grid, err := strconv.Atoi(parts[3])
	version, err2 := strconv.Atoi(parts[4])
	if err != nil || err2 != nil || grid < 1 || version < 1 || strconv.Itoa(grid) != parts[3] || strconv.Itoa(version) != parts[4] {
		return "", 0, 0, false
	}
	return parts[2], grid, version, true
}

// Kinds of the buttons that are not the engine's result buttons, as their
// custom ids name them: a status message's Cancel, a result's Delete and
// the button that confirms it.
const (
	cancelKind  = string(core.ActionCancel)
	deleteKind  = string(core.ActionDelete)
	confirmKind = "delete-confirm"
)

// kindID returns the custom id of a button of kind for turn or version n
// of session, such as "easel:cancel:<session>:2".
func kindID(kind, session string, n int) string {
	return buttonPrefix + ":" + kind + ":" + session + ":" + strconv.Itoa(n)
}

// parseKindID reverses kindID for kind; ok is false for ids that are not
// an Easel button's of that kind.
func parseKindID(kind, id string) (session string, n int, ok bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != buttonPrefix || parts[1] != kind || parts[2] == "" {
		return "", 0, false
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil || n < 1 || strconv.Itoa(n) != parts[3] {
		return "", 0, false
	}
	return parts[2], n, true
}

// regionMenuID returns the custom id of a result's "Edit region" menu,
// "easel:region:<session>:3"; the chosen region comes as the menu's value.
func regionMenuID(session string, version int) string {
	return buttonPrefix + ":" + string(core.ActionRegion) + ":" + session + ":" + strconv.Itoa(version)
}

// parseRegionMenuID reverses regionMenuID; ok is false for ids that are
// not an Easel menu's.
func parseRegionMenuID(id string) (session string, version int, ok bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != buttonPrefix || parts[1] != string(core.ActionRegion) || parts[2] == "" {
		return "", 0, false
	}
	version, err := strconv.Atoi(parts[3])
	if err != nil || version < 1 || strconv.Itoa(version) != parts[3] {
		return "", 0, false
	}
	return parts[2], version, true
}

// mentions reports whether m mentions user id.
func mentions(m *discordgo.Message, id string) bool {
	return slices.ContainsFunc(m.Mentions, func(u *discordgo.User) bool { return u != nil && u.ID == id })
}

// stripMention removes the mentions of user id from text.
func stripMention(text, id string) string {
	text = strings.ReplaceAll(text, "<@"+id+">", "")
	text = strings.ReplaceAll(text, "<@!"+id+">", "")
	return strings.TrimSpace(text)
}

// blank reports whether m carries nothing Easel can read: what Discord
// delivers of a message that does not mention the bot when the Message
// Content intent is off.
func blank(m *discordgo.Message) bool {
	return strings.TrimSpace(m.Content) == "" && len(m.Attachments) == 0 && len(m.Embeds) == 0 && len(m.StickerItems) == 0
}

// threadName names a session's thread after its prompt, flags left out,
// on one line and without control or bidirectional characters.
func threadName(text string) string {
	prompt, _, _ := strings.Cut(text, " --")
	if prompt = strings.TrimSpace(safetext.Chat(prompt)); prompt == "" {
		return "🎨 Easel"
	}
	return "🎨 " + core.Truncate(prompt, 90)
}

// user returns who sent a message or interaction. Members with the
// Administrator permission or one of adminRoles may press anyone's buttons.
func user(u *discordgo.User, member *discordgo.Member, adminRoles []string) core.User {
	if u == nil && member != nil {
		u = member.User
	}
	if u == nil {
		return core.User{}
	}
	cu := core.User{ID: u.ID, Name: u.GlobalName}
	if cu.Name == "" {
		cu.Name = u.Username
	}
	if member != nil {
		if member.Nick != "" {
			cu.Name = member.Nick
		}
		cu.Admin = member.Permissions&discordgo.PermissionAdministrator != 0 ||
			slices.ContainsFunc(member.Roles, func(r string) bool { return slices.Contains(adminRoles, r) })
	}
	return cu
}
