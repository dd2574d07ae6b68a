package discord

import (
	"context"
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

// easelName is the slash command with which a server's admins manage
// styles and channel defaults, and anyone lists them.
const easelName = "easel"

// Option names of /easel.
const (
	optName       = "name"
	optDefinition = "definition"
	optStyle      = "style"
	optModel      = "model"
	optAspect     = "aspect"
	optQuality    = "quality"
	optScope      = "scope"
	scopeChannel  = "channel"
	scopeCategory = "category"
)

// referenceOptions are the attachment options of /easel style set: as
// many as a style takes reference images.
var referenceOptions = []string{"reference", "reference2", "reference3", "reference4"}

// aspects and qualities are the choices of the aspect and quality options.
var (
	aspects   = []string{"1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16", "21:9"}
	qualities = []string{"auto", "low", "medium", "high"}
)

// choices returns the choices of an option whose values are values.
func choices(values ...string) []*discordgo.ApplicationCommandOptionChoice {
	var cs []*discordgo.ApplicationCommandOptionChoice
	for _, v := range values {
		cs = append(cs, &discordgo.ApplicationCommandOptionChoice{Name: v, Value: v})
	}
	return cs
}

// styleOption returns an option that names a style, with autocomplete.
func styleOption(name, description string, required bool) *discordgo.ApplicationCommandOption {
	return &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionString, Name: name,
		Description: description, Required: required, Autocomplete: true, MaxLength: core.MaxStyleName}
}

// scopeOption returns the option that says whether channel defaults are
// the channel's or its category's.
func scopeOption() *discordgo.ApplicationCommandOption {
	return &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionString, Name: optScope,
		Description: "This channel's defaults (the default) or its category's", Choices: choices(scopeChannel, scopeCategory)}
}

// easelCommand returns /easel: the subcommand groups style (set, list,
// delete) and channel (set, show, clear). It is offered in servers only:
// styles and defaults belong to a server. global says it is registered
// for every server rather than in one.
func easelCommand(global bool) *discordgo.ApplicationCommand {
	str := discordgo.ApplicationCommandOptionString
	set := &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "set",
		Description: "Define a style, or replace one (admins)",
		Options: []*discordgo.ApplicationCommandOption{
			{Type: str, Name: optName, Required: true, MaxLength: core.MaxStyleName,
				Description: "The style's name: letters, digits, - or _"},
			{Type: str, Name: optDefinition, Required: true,
				Description: "Words added to the prompt, then flags, e.g. flat vector art --ar 16:9 --quality high"},
		}}
	for i, name := range referenceOptions {
		set.Options = append(set.Options, &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionAttachment,
			Name: name, Description: fmt.Sprintf("Reference image %d, sent with every request in this style", i+1)})
	}
	cmd := &discordgo.ApplicationCommand{
		Name:        easelName,
		Type:        discordgo.ChatApplicationCommand,
		Description: "Easel's styles and channel defaults",
		Options: []*discordgo.ApplicationCommandOption{
			{Type: discordgo.ApplicationCommandOptionSubCommandGroup, Name: "style", Description: "Named looks for prompts",
				Options: []*discordgo.ApplicationCommandOption{
					set,
					{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "list", Description: "List this server's styles"},
					{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "delete", Description: "Delete a style (admins)",
						Options: []*discordgo.ApplicationCommandOption{styleOption(optName, "The style to delete", true)}},
				}},
			{Type: discordgo.ApplicationCommandOptionSubCommandGroup, Name: "channel", Description: "Defaults for new images in a channel",
				Options: []*discordgo.ApplicationCommandOption{
					{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "set", Description: "Set this channel's or its category's defaults (admins)",
						Options: []*discordgo.ApplicationCommandOption{
							styleOption(optStyle, "A default style", false),
							{Type: str, Name: optModel, Description: "A default model, such as gpt-image-2", MaxLength: 64},
							{Type: str, Name: optAspect, Description: "A default aspect ratio", Choices: choices(aspects...)},
							{Type: str, Name: optQuality, Description: "A default rendering quality", Choices: choices(qualities...)},
							scopeOption(),
						}},
					{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "show", Description: "Show the defaults that apply here"},
					{Type: discordgo.ApplicationCommandOptionSubCommand, Name: "clear", Description: "Clear this channel's or its category's defaults (admins)",
						Options: []*discordgo.ApplicationCommandOption{scopeOption()}},
				}},
		},
	}
	if global {
		cmd.Contexts = &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild}
	}
	return cmd
}

// easelData returns the options of an /easel command, or false for any
// other interaction.
func easelData(ic *discordgo.Interaction) (discordgo.ApplicationCommandInteractionData, bool) {
	data, ok := ic.Data.(discordgo.ApplicationCommandInteractionData)
	return data, ok && ic.Type == discordgo.InteractionApplicationCommand && data.Name == easelName
}

// invocation is a slash command as run: the subcommand group and
// subcommand named ("style set"; "" for a command without), and the
// options filled in, by name.
type invocation struct {
	path    string
	options map[string]*discordgo.ApplicationCommandInteractionDataOption
}

// invoked reads the subcommand path and the options of a command's
// data: the first subcommand or group at each level, two levels deep at
// most, as Discord nests them; entries that are null are skipped.
func invoked(data discordgo.ApplicationCommandInteractionData) invocation {
	in := invocation{options: map[string]*discordgo.ApplicationCommandInteractionDataOption{}}
	var path []string
	for opts := data.Options; opts != nil; {
		var next []*discordgo.ApplicationCommandInteractionDataOption
		descend := len(path) < 2
		for _, o := range opts {
			switch {
			case o == nil:
			case descend && (o.Type == discordgo.ApplicationCommandOptionSubCommand || o.Type == discordgo.ApplicationCommandOptionSubCommandGroup):
				path, next, descend = append(path, o.Name), o.Options, false
			default:
				in.options[o.Name] = o
			}
		}
		opts = next
	}
	in.path = strings.Join(path, " ")
	return in
}

// text returns the string value of option name, or "".
func (in invocation) text(name string) string {
	if o := in.options[name]; o != nil {
		if s, ok := o.Value.(string); ok {
			return s
		}
	}
	return ""
}

// focused returns the option an autocomplete is for, or nil.
func (in invocation) focused() *discordgo.ApplicationCommandInteractionDataOption {
	for _, o := range in.options {
		if o.Focused {
			return o
		}
	}
	return nil
}

// asker returns the core.Message that names an interaction's user and
// where they are to the engine: the channel (a thread counts as its
// parent) and its category.
func (b *Bot) asker(ctx context.Context, ic *discordgo.Interaction) core.Message {
	msg := core.Message{Platform: Platform, Workspace: ic.GuildID, Channel: ic.ChannelID,
		User: user(ic.User, ic.Member, b.cfg.AdminRoles), Roles: roles(ic.Member), RolesApply: true,
		WorkspaceTerm: workspaceTerm, DM: ic.GuildID == ""}
	if ic.GuildID == "" {
		return msg
	}
	ch, err := b.channel(ctx, ic.ChannelID)
	switch {
	case err != nil:
		b.log.Warn("looking up an interaction's channel failed; taking it for no thread", "channel", ic.ChannelID, "err", err)
	case ch.IsThread():
		msg.Channel = ch.ParentID
	}
	msg.Category = b.category(ctx, ic.GuildID, msg.Channel)
	return msg
}

// manage answers /easel, in the deferred response only its user sees:
// what was done, or the engine's reason for doing nothing. Only admins
// may change styles and defaults; the engine tells anyone else so.
func (b *Bot) manage(ctx context.Context, r *response) {
	data, _ := easelData(r.ic)
	text, err := b.easel(ctx, r.ic, invoked(data), data.Resolved)
	if err != nil {
		text = b.userMessage(err, "an /easel command failed")
	}
	if err := r.private(ctx, text); err != nil {
		b.log.Warn("answering /easel failed", "interaction", r.ic.ID, "err", err)
	}
}

// easel runs a subcommand of /easel and returns its answer.
func (b *Bot) easel(ctx context.Context, ic *discordgo.Interaction, in invocation, resolved *discordgo.ApplicationCommandInteractionDataResolved) (string, error) {
	if ic.GuildID == "" {
		return "", core.Errorf(core.Invalid, "styles and channel defaults belong to a server: use /easel in one of its channels")
	}
	msg := b.asker(ctx, ic)
	switch in.path {
	case "style set":
		return b.setStyle(ctx, msg, in, resolved)
	case "style list":
		styles, err := b.engine.Styles(ctx, msg)
		if err != nil {
			return "", err
		}
		return styleList(styles), nil
	case "style delete":
		name := in.text(optName)
		if err := b.engine.DeleteStyle(ctx, msg, name); err != nil {
			return "", err
		}
		return fmt.Sprintf("🗑️ Style %s deleted. Channel defaults that name it no longer apply it.", code(strings.ToLower(strings.TrimSpace(name)))), nil
	case "channel set":
		return b.setDefaults(ctx, msg, in)
	case "channel show":
		d, where, err := b.engine.ChannelDefaults(ctx, msg)
		if err != nil {
			return "", err
		}
		if where == "" {
			return "No defaults apply here. An admin sets them with `/easel channel set`.", nil
		}
		return fmt.Sprintf("⚙️ Defaults here, set on %s: %s\nThey apply to new images started here; a request's own options win.",
			place(msg, where), code(d.String())), nil
	case "channel clear":
		where, err := scope(msg, in)
		if err != nil {
			return "", err
		}
		if _, err := b.engine.SetChannelDefaults(ctx, msg, where, ""); err != nil {
			return "", err
		}
		return fmt.Sprintf("🧹 Defaults of %s cleared.", place(msg, where)), nil
	}
	return "", core.Errorf(core.Invalid, "/easel has no subcommand %q", core.Truncate(in.path, 40))
}

// setStyle defines a style from /easel style set, with the reference
// images attached, checked like any attachment.
func (b *Bot) setStyle(ctx context.Context, msg core.Message, in invocation, resolved *discordgo.ApplicationCommandInteractionDataResolved) (string, error) {
	var atts []*discordgo.MessageAttachment
	for _, name := range referenceOptions {
		o := in.options[name]
		if o == nil {
			continue
		}
		var a *discordgo.MessageAttachment
		if resolved != nil {
			a = resolved.Attachments[fmt.Sprint(o.Value)]
		}
		atts = append(atts, a)
	}
	var refs []core.Image
	if len(atts) > 0 {
		var err error
		if refs, err = b.inputs(ctx, atts); err != nil {
			return "", err
		}
	}
	s, replaced, err := b.engine.SetStyle(ctx, msg, in.text(optName), in.text(optDefinition), refs)
	if err != nil {
		return "", err
	}
	verb := "saved"
	if replaced {
		verb = "replaced"
	}
	return fmt.Sprintf("✅ Style %s %s: %s\nUse it with `/imagine style:%s`, or `--style %s` at the end of a prompt.",
		code(s.Name), verb, describeStyle(s), s.Name, s.Name), nil
}

// setDefaults sets this channel's or its category's defaults from
// /easel channel set.
func (b *Bot) setDefaults(ctx context.Context, msg core.Message, in invocation) (string, error) {
	where, err := scope(msg, in)
	if err != nil {
		return "", err
	}
	var spec []string
	for _, f := range []struct{ option, flag string }{{optStyle, "style"}, {optModel, "model"}, {optAspect, "ar"}, {optQuality, "quality"}} {
		if v := in.text(f.option); v != "" {
			spec = append(spec, flag(f.flag, v))
		}
	}
	if len(spec) == 0 {
		return "", core.Errorf(core.Invalid, "give at least one of style, model, aspect and quality; `/easel channel clear` removes the defaults")
	}
	d, err := b.engine.SetChannelDefaults(ctx, msg, where, strings.Join(spec, " "))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("✅ Defaults of %s: %s\nThey apply to new images started there (/imagine, @Easel); a request's own options win.",
		place(msg, where), code(d.String())), nil
}

// scope returns where /easel channel set or clear acts: msg's channel,
// or with scope:category its category.
func scope(msg core.Message, in invocation) (string, error) {
	if in.text(optScope) != scopeCategory {
		return msg.Channel, nil
	}
	if msg.Category == "" {
		return "", core.Errorf(core.Invalid, "this channel is in no category: use scope:channel")
	}
	return msg.Category, nil
}

// place names where defaults are set, for msg's user: this channel, or
// its category.
func place(msg core.Message, where string) string {
	if where == msg.Channel {
		return fmt.Sprintf("this channel (<#%s>)", where)
	}
	return fmt.Sprintf("this channel's category (<#%s>)", where)
}

// flag returns "--name=value" as the engine parses a flag, the value
// quoted so that it stays one flag's value whatever spaces or dashes an
// option's value holds; the quotes it might hold, which no valid value
// does, are dropped.
func flag(name, value string) string {
	return "--" + name + `="` + strings.ReplaceAll(strings.TrimSpace(value), `"`, "") + `"`
}

// code shows s as inline code, where no markdown or mention acts; a
// backtick in it, which would end the code, shows as a look-alike.
func code(s string) string {
	return "`" + strings.ReplaceAll(core.Truncate(s, 1200), "`", "ˋ") + "`"
}

// describeStyle spells a style: its words and flags, its reference
// images, and whether it comes from Easel's config.
func describeStyle(s core.Style) string {
	parts := []string{code(s.Spec())}
	switch n := len(s.Refs); n {
	case 0:
	case 1:
		parts = append(parts, "1 reference image")
	default:
		parts = append(parts, fmt.Sprintf("%d reference images", n))
	}
	if s.Config {
		parts = append(parts, "from Easel's config")
	}
	return strings.Join(parts, " · ")
}

// styleList lists styles for /easel style list, as many as a message
// holds, each spelled at most 150 characters long.
func styleList(styles []core.Style) string {
	if len(styles) == 0 {
		return "No styles here yet. An admin adds one with `/easel style set`."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "🎨 Styles here (%d); use one with `/imagine style:` or `--style NAME`:", len(styles))
	for i, s := range styles {
		s.Prompt = core.Truncate(s.Prompt, 150)
		line := "\n• " + code(s.Name) + " — " + describeStyle(s)
		if units(b.String())+units(line) > maxContent-40 {
			fmt.Fprintf(&b, "\n…and %d more", len(styles)-i)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}
