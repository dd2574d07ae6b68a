package discord

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/safetext"
)

// Autocomplete limits: Discord shows at most 25 choices, with names of at
// most 100 characters, and drops an answer after 3 seconds; the styles are
// looked up within autocompleteBudget, so that an answer, empty if need
// be, goes out in time.
const (
	maxChoices         = 25
	maxChoiceName      = 100
	autocompleteBudget = 2 * time.Second
)

// autocomplete answers an autocomplete interaction (Discord sends one as a
// user types in an option declared with autocomplete) with the styles
// whose names match what is typed; see styleChoices. It is answered at
// once and not recorded in the inbox: it asks for nothing to be done, and
// an answer after Discord's 3 seconds is of no use.
func (b *Bot) autocomplete(ctx context.Context, ic *discordgo.Interaction) {
	lctx, cancel := context.WithTimeout(ctx, autocompleteBudget)
	found := b.styleChoices(lctx, ic)
	cancel()
	err := b.dg.InteractionRespond(ic, &discordgo.InteractionResponse{
		Type: discordgo.InteractionApplicationCommandAutocompleteResult,
		Data: &discordgo.InteractionResponseData{Choices: found},
	}, discordgo.WithContext(ctx))
	var rest *discordgo.RESTError
	switch {
	case errors.As(err, &rest) && rest.Message != nil && rest.Message.Code == discordgo.ErrCodeInteractionHasAlreadyBeenAcknowledged:
		b.log.Debug("autocomplete answered before", "interaction", ic.ID)
	case err != nil:
		b.log.Warn("answering an autocomplete failed", "interaction", ic.ID, "err", err)
	}
}

// styleChoices returns the styles to offer for the option an autocomplete
// is for, if it names a style: those of the interaction's server (and the
// config's) that the user may use there, matched against what is typed
// (see matchStyles); for /easel style delete, only those set in chat,
// which are the ones it can delete. It returns none for other options, to
// users who may not use Easel there, and when the styles cannot be read
// in time.
func (b *Bot) styleChoices(ctx context.Context, ic *discordgo.Interaction) []*discordgo.ApplicationCommandOptionChoice {
	data, ok := ic.Data.(discordgo.ApplicationCommandInteractionData)
	if !ok {
		return nil
	}
	in := invoked(data)
	focused := in.focused()
	if focused == nil {
		return nil
	}
	chatOnly := false
	switch data.Name + " " + in.path + ":" + focused.Name {
	case commandName + " :" + optStyle, easelName + " channel set:" + optStyle:
	case easelName + " style delete:" + optName:
		chatOnly = true
	default:
		return nil
	}
	typed, _ := focused.Value.(string)
	msg := b.asker(ctx, ic)
	msg.Action = core.ActionPrompt
	if b.engine.Allowed(msg) != nil {
		return nil
	}
	styles, err := b.engine.Styles(ctx, msg)
	if err != nil {
		b.log.Warn("reading the styles to offer failed", "interaction", ic.ID, "err", err)
		return nil
	}
	d, _, err := b.engine.ChannelDefaults(ctx, msg)
	if err != nil {
		b.log.Warn("reading a channel's defaults failed; offering styles without its default first", "interaction", ic.ID, "err", err)
	}
	return matchStyles(styles, typed, d.Style, chatOnly)
}

// matchStyles returns up to 25 choices among styles for what is typed
// (any case): the channel's default style first, then the names that
// start with it, then those that hold it elsewhere, each group in name
// order. chatOnly leaves out the styles of the config.
func matchStyles(styles []core.Style, typed, def string, chatOnly bool) []*discordgo.ApplicationCommandOptionChoice {
	q := strings.ToLower(strings.TrimSpace(typed))
	var first, prefix, inner []core.Style
	for _, s := range styles {
		switch {
		case chatOnly && s.Config, !strings.Contains(s.Name, q):
		case s.Name == def:
			first = append(first, s)
		case strings.HasPrefix(s.Name, q):
			prefix = append(prefix, s)
		default:
			inner = append(inner, s)
		}
	}
	var out []*discordgo.ApplicationCommandOptionChoice
	for _, s := range append(append(first, prefix...), inner...) {
		if len(out) == maxChoices {
			break
		}
		out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: choiceName(s, s.Name == def), Value: s.Name})
	}
	return out
}

// choiceName shows a style in the autocomplete list: its name, whether it
// is the channel's default, and its words and flags, on one line, at most
// 100 characters long, without control or bidirectional characters.
func choiceName(s core.Style, isDefault bool) string {
	name := s.Name
	if isDefault {
		name += " (default here)"
	}
	if spec := s.Spec(); spec != "" {
		name += " — " + spec
	}
	return cut(strings.Join(strings.Fields(safetext.Chat(name)), " "), maxChoiceName)
}
