package discordtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Draft is a message a user posts; see Post.
type Draft struct {
	From    User
	Channel string
	Content string
	// Mention prefixes the content with the bot's mention, as typing
	// @Easel does, and lists the bot in the message's mentions.
	Mention bool
	// ReplyTo is the id of the message this one replies to. PingReply
	// lists that message's author in the mentions, as Discord's reply
	// does unless the user turns the ping off.
	ReplyTo   string
	PingReply bool
	// Unresolved leaves referenced_message out of the dispatch, as Discord
	// does when it could not load the message replied to.
	Unresolved bool
	// Attachments are files made with Upload.
	Attachments []Attachment
	// Ago backdates the message: its id and timestamp say it was posted
	// that long ago.
	Ago time.Duration
}

// Post makes d.From post a message and dispatches its MESSAGE_CREATE (with
// its content blanked if the bot lacks the Message Content intent and is
// not mentioned). It panics if the channel does not exist.
func (s *Server) Post(d Draft) Message {
	s.mu.Lock()
	ch := s.channels[d.Channel]
	if ch == nil || ch.Type == ChannelCategory {
		s.mu.Unlock()
		panic(fmt.Sprintf("discordtest: Post to unknown channel %q", d.Channel))
	}
	id := s.newID()
	if d.Ago > 0 {
		id = s.idAt(time.Now().Add(-d.Ago))
	}
	m := &Message{ID: id, ChannelID: ch.ID, GuildID: ch.GuildID, Author: d.From, Type: TypeDefault,
		Content: d.Content, Attachments: slices.Clone(d.Attachments)}
	if d.Mention {
		m.Content = "<@" + s.Bot.ID + "> " + d.Content
		m.Mentions = append(m.Mentions, s.Bot.ID)
	}
	if d.ReplyTo != "" {
		m.Type, m.Reference, m.unresolved = TypeReply, d.ReplyTo, d.Unresolved
		if ref := s.messages[d.ReplyTo]; d.PingReply && ref != nil && !slices.Contains(m.Mentions, ref.Author.ID) {
			m.Mentions = append(m.Mentions, ref.Author.ID)
		}
	}
	s.add(m)
	if d.Ago > 0 {
		m.CreatedAt = m.CreatedAt.Add(-d.Ago)
	}
	events := s.messageEvent(m)
	snap := m.snapshot()
	s.notify()
	s.mu.Unlock()
	for _, e := range events {
		s.gw.dispatch(e)
	}
	return snap
}

// Say posts text in a channel or thread.
func (s *Server) Say(from User, channelID, text string) Message {
	return s.Post(Draft{From: from, Channel: channelID, Content: text})
}

// Mention posts "@Easel text" in a channel or thread.
func (s *Server) Mention(from User, channelID, text string, files ...Attachment) Message {
	return s.Post(Draft{From: from, Channel: channelID, Content: text, Mention: true, Attachments: files})
}

// Reply posts text as a reply to message replyTo, pinging its author as
// Discord's reply does by default.
func (s *Server) Reply(from User, channelID, replyTo, text string) Message {
	return s.Post(Draft{From: from, Channel: channelID, Content: text, ReplyTo: replyTo, PingReply: true})
}

// DM sends text to the bot in from's DM channel.
func (s *Server) DM(from User, text string, files ...Attachment) Message {
	return s.Post(Draft{From: from, Channel: s.DMChannel(from), Content: text, Attachments: files})
}

// Redeliver dispatches the MESSAGE_CREATE of an existing message again,
// under a new sequence number, as a gateway replay can.
func (s *Server) Redeliver(m Message) {
	s.mu.Lock()
	events := s.messageEvent(s.messages[m.ID])
	s.mu.Unlock()
	for _, e := range events {
		s.gw.dispatch(e)
	}
}

// MessagePayload returns the MESSAGE_CREATE data of an existing message,
// as the gateway dispatches it to a bot with the Message Content intent.
func (s *Server) MessagePayload(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messages[id]
	if m == nil {
		return nil
	}
	data, _ := json.Marshal(s.wire(m, true))
	return data
}

// Delete deletes a message as a moderator would.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.messages[id]; m != nil {
		m.Deleted = true
		s.notify()
	}
}

// Upload puts a file on the CDN, as a user's client does before posting
// it, and returns it for a Draft or a command's attachment option. Its Size
// may be changed to declare a different size than the data's.
func (s *Server) Upload(name, contentType string, data []byte) Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attach(&Channel{ID: "uploads"}, []File{{Name: name, ContentType: contentType, Data: data}})[0]
}

// Option is one option of a slash command as a user fills it in: its value
// is a string, an int or an Attachment.
type Option struct {
	Name  string
	Value any
}

// Command makes from run the registered command name in a channel and
// dispatches its INTERACTION_CREATE. name is the command's, followed by
// its subcommand group and subcommand where it has them ("imagine",
// "easel style set"), and opts fill in the subcommand's options. As in
// Discord, a guild channel offers the guild's and the global commands, a
// DM only global ones, and the user can only fill in the options declared,
// with values that suit them (type, choices, min_length and max_length,
// min_value and max_value; at most 6,000 characters), and every required
// one: the test fails otherwise.
func (s *Server) Command(t testing.TB, from User, channelID, name string, opts ...Option) Interaction {
	t.Helper()
	return s.command(t, from, channelID, name, "", false, opts)
}

// CommandForged is Command with option values Discord's client would not
// send (too long, not among the choices, undeclared or missing): a
// payload a client forged. The command and subcommand must exist.
func (s *Server) CommandForged(t testing.TB, from User, channelID, name string, opts ...Option) Interaction {
	t.Helper()
	return s.command(t, from, channelID, name, "", true, opts)
}

// Autocomplete makes from type in option focused of command name (see
// Command) and dispatches the APPLICATION_COMMAND_AUTOCOMPLETE interaction
// (type 4) Discord sends while they type: the options filled in so far,
// the focused one (which must be declared with autocomplete, and be among
// opts) marked focused and holding what is typed. Its answer is the
// interaction's Choices.
func (s *Server) Autocomplete(t testing.TB, from User, channelID, name, focused string, opts ...Option) Interaction {
	t.Helper()
	return s.command(t, from, channelID, name, focused, false, opts)
}

// AutocompleteForged is Autocomplete with values Discord's client would
// not send; see CommandForged.
func (s *Server) AutocompleteForged(t testing.TB, from User, channelID, name, focused string, opts ...Option) Interaction {
	t.Helper()
	return s.command(t, from, channelID, name, focused, true, opts)
}

// command dispatches an application command (focused "") or an
// autocomplete interaction.
func (s *Server) command(t testing.TB, from User, channelID, name, focused string, forged bool, opts []Option) Interaction {
	t.Helper()
	s.mu.Lock()
	fatal := func(format string, args ...any) {
		s.mu.Unlock()
		t.Helper()
		t.Fatalf("discordtest: "+format, args...)
	}
	ch := s.channels[channelID]
	if ch == nil || ch.Type == ChannelCategory {
		fatal("command in unknown channel %q", channelID)
		return Interaction{}
	}
	guildID := ch.GuildID
	path := strings.Fields(name)
	idx := slices.IndexFunc(s.commands, func(c Command) bool {
		return len(path) > 0 && c.Name == path[0] && (c.GuildID == "" || c.GuildID == guildID)
	})
	if idx < 0 {
		fatal("no command %q is registered for channel %s", name, channelID)
		return Interaction{}
	}
	cmd := s.commands[idx]
	declared, chain := cmd.Options, []CommandOption(nil)
	for _, p := range path[1:] {
		i := slices.IndexFunc(declared, func(o CommandOption) bool {
			return o.Name == p && (o.Type == optionSubcommand || o.Type == optionSubcommandGroup)
		})
		if i < 0 {
			fatal("command %q has no subcommand %q", cmd.Name, p)
			return Interaction{}
		}
		chain, declared = append(chain, declared[i]), declared[i].Options
	}
	if slices.ContainsFunc(declared, func(o CommandOption) bool { return o.Type == optionSubcommand || o.Type == optionSubcommandGroup }) {
		fatal("%q names no subcommand: Discord runs subcommands only", name)
		return Interaction{}
	}
	options, resolved := []any{}, map[string]any{}
	for _, o := range opts {
		var decl *CommandOption
		if i := slices.IndexFunc(declared, func(d CommandOption) bool { return d.Name == o.Name }); i >= 0 {
			decl = &declared[i]
		}
		typ, problem := optionValue(decl, o.Value, o.Name == focused)
		if problem != "" && (!forged || typ == 0) {
			fatal("option %s of %q: %s", o.Name, name, problem)
			return Interaction{}
		}
		w := map[string]any{"name": o.Name, "type": typ, "value": o.Value}
		if a, ok := o.Value.(Attachment); ok {
			w["value"] = a.ID
			resolved[a.ID] = wireAttachment(a)
		}
		if o.Name == focused {
			w["focused"] = true
		}
		options = append(options, w)
	}
	typ := 2
	if focused != "" {
		typ = 4
		i := slices.IndexFunc(declared, func(d CommandOption) bool { return d.Name == focused })
		switch {
		case !forged && (i < 0 || !declared[i].Autocomplete):
			fatal("option %s of %q is not declared with autocomplete", focused, name)
			return Interaction{}
		case !slices.ContainsFunc(opts, func(o Option) bool { return o.Name == focused }):
			fatal("the focused option %s is not among the options", focused)
			return Interaction{}
		}
	} else if !forged {
		for _, d := range declared {
			if d.Required && !slices.ContainsFunc(opts, func(o Option) bool { return o.Name == d.Name }) {
				fatal("%q needs option %s", name, d.Name)
				return Interaction{}
			}
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		options = []any{map[string]any{"name": chain[i].Name, "type": chain[i].Type, "options": options}}
	}
	data := map[string]any{"id": cmd.ID, "name": cmd.Name, "type": 1, "options": options}
	if guildID != "" {
		data["guild_id"] = guildID
	}
	if len(resolved) > 0 {
		data["resolved"] = map[string]any{"attachments": resolved}
	}
	i := &Interaction{ID: s.newID(), Token: token(), Type: typ, ChannelID: ch.ID, GuildID: guildID, User: from}
	return s.interact(i, ch, data, nil)
}

// optionValue returns the wire type of an option given value, and what
// Discord's client would not send about it: an undeclared option, a value
// of the wrong type, not among the choices or out of bounds. typing
// marks the focused option of an autocomplete, which may be shorter than
// min_length. With no declaration the type follows the value; 0 for a
// value no option takes.
func optionValue(decl *CommandOption, value any, typing bool) (typ int, problem string) {
	switch value.(type) {
	case string:
		typ = optionString
	case int:
		typ = optionInteger
	case Attachment:
		typ = optionAttachment
	default:
		return 0, fmt.Sprintf("a value of unsupported type %T", value)
	}
	if decl == nil {
		return typ, "not declared"
	}
	if decl.Type != typ {
		return decl.Type, fmt.Sprintf("a %T for an option of type %d", value, decl.Type)
	}
	if len(decl.Choices) > 0 && !slices.ContainsFunc(decl.Choices, func(c Choice) bool { return fmt.Sprint(c.Value) == fmt.Sprint(value) }) {
		return typ, fmt.Sprintf("%v is none of its choices", value)
	}
	switch v := value.(type) {
	case string:
		n := utf8.RuneCountInString(v)
		switch {
		case n > maxOptionLength:
			return typ, fmt.Sprintf("%d characters, over Discord's %d", n, maxOptionLength)
		case decl.MaxLength != nil && n > *decl.MaxLength:
			return typ, fmt.Sprintf("%d characters, over its max_length %d", n, *decl.MaxLength)
		case decl.MinLength != nil && n < *decl.MinLength && !typing:
			return typ, fmt.Sprintf("%d characters, under its min_length %d", n, *decl.MinLength)
		}
	case int:
		if decl.MinValue != nil && float64(v) < *decl.MinValue || decl.MaxValue != nil && float64(v) > *decl.MaxValue {
			return typ, fmt.Sprintf("%d is out of its range", v)
		}
	}
	return typ, ""
}

// Click makes from press the button customID of message m and dispatches
// its INTERACTION_CREATE. The test fails if m has no such button.
func (s *Server) Click(t testing.TB, from User, m Message, customID string) Interaction {
	t.Helper()
	return s.click(t, from, m, customID, false)
}

// ClickForged is Click for a button m does not have: a payload a client
// forged, which Discord would never send.
func (s *Server) ClickForged(t testing.TB, from User, m Message, customID string) Interaction {
	t.Helper()
	return s.click(t, from, m, customID, true)
}

func (s *Server) click(t testing.TB, from User, m Message, customID string, forged bool) Interaction {
	t.Helper()
	s.mu.Lock()
	cur := s.messages[m.ID]
	if cur == nil || !forged && !slices.ContainsFunc(cur.snapshot().Buttons(), func(b Component) bool { return b.CustomID == customID }) {
		s.mu.Unlock()
		t.Fatalf("discordtest: message %s has no button %q", m.ID, customID)
	}
	ch := s.channels[cur.ChannelID]
	data := map[string]any{"custom_id": customID, "component_type": 2}
	i := &Interaction{ID: s.newID(), Token: token(), Type: 3, ChannelID: ch.ID, GuildID: ch.GuildID, User: from,
		CustomID: customID, Message: cur.ID}
	return s.interact(i, ch, data, s.wire(cur, false))
}

// Choose makes from choose values in the string select customID of
// message m and dispatches its INTERACTION_CREATE (a MESSAGE_COMPONENT
// interaction of component type 3 with the values, as Discord sends it).
// The test fails if m has no such select or it offers no such value.
func (s *Server) Choose(t testing.TB, from User, m Message, customID string, values ...string) Interaction {
	t.Helper()
	return s.choose(t, from, m, customID, false, values)
}

// ChooseForged is Choose for values the select does not offer: a payload
// a client forged, which Discord would never send.
func (s *Server) ChooseForged(t testing.TB, from User, m Message, customID string, values ...string) Interaction {
	t.Helper()
	return s.choose(t, from, m, customID, true, values)
}

func (s *Server) choose(t testing.TB, from User, m Message, customID string, forged bool, values []string) Interaction {
	t.Helper()
	s.mu.Lock()
	cur := s.messages[m.ID]
	var menu *Component
	if cur != nil {
		for _, c := range cur.snapshot().Buttons() {
			if c.Type == 3 && c.CustomID == customID {
				menu = &c
			}
		}
	}
	if menu == nil {
		s.mu.Unlock()
		t.Fatalf("discordtest: message %s has no select %q", m.ID, customID)
	}
	for _, v := range values {
		if !forged && !slices.ContainsFunc(menu.Options, func(o SelectOption) bool { return o.Value == v }) {
			s.mu.Unlock()
			t.Fatalf("discordtest: select %q offers no %q", customID, v)
		}
	}
	ch := s.channels[cur.ChannelID]
	data := map[string]any{"custom_id": customID, "component_type": 3, "values": values}
	i := &Interaction{ID: s.newID(), Token: token(), Type: 3, ChannelID: ch.ID, GuildID: ch.GuildID, User: from,
		CustomID: customID, Message: cur.ID}
	return s.interact(i, ch, data, s.wire(cur, false))
}

// interact stores i and dispatches its INTERACTION_CREATE; s.mu must be
// held and is released.
func (s *Server) interact(i *Interaction, ch *Channel, data, message map[string]any) Interaction {
	w := map[string]any{
		"id": i.ID, "application_id": s.Bot.ID, "type": i.Type, "token": i.Token, "version": 1,
		"channel_id": ch.ID, "channel": s.wireChannel(ch), "data": data, "locale": "en-US",
		"app_permissions": strconv.FormatInt(botPermissions, 10), "entitlements": []any{},
		"authorizing_integration_owners": map[string]any{"0": i.GuildID}, "context": 0,
	}
	if i.GuildID != "" {
		w["guild_id"], w["guild_locale"], w["member"] = i.GuildID, "en-US", wireMember(i.User)
	} else {
		w["user"], w["context"] = wireUser(i.User), 1
		w["authorizing_integration_owners"] = map[string]any{"1": i.User.ID}
	}
	if message != nil {
		w["message"] = message
	}
	i.payload = w
	s.interactions[i.ID] = i
	s.tokens[i.Token] = i
	snap := i.snapshot()
	s.mu.Unlock()
	s.gw.dispatch(s.interactionEvent(i))
	return snap
}

// interactionEvent returns the INTERACTION_CREATE dispatch of i, which
// stamps its SentAt when first written.
func (s *Server) interactionEvent(i *Interaction) event {
	return event{t: "INTERACTION_CREATE", d: i.payload, sent: func(at time.Time) {
		s.mu.Lock()
		if i.SentAt.IsZero() {
			i.SentAt = at
		}
		s.notify()
		s.mu.Unlock()
	}}
}

// InteractionPayload returns the INTERACTION_CREATE data of an
// interaction sent by Command or Click.
func (s *Server) InteractionPayload(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.interactions[id]
	if i == nil {
		return nil
	}
	data, _ := json.Marshal(i.payload)
	return data
}

// RedeliverInteraction dispatches an interaction's INTERACTION_CREATE
// again, as a gateway replay can.
func (s *Server) RedeliverInteraction(i Interaction) {
	s.mu.Lock()
	cur := s.interactions[i.ID]
	s.mu.Unlock()
	if cur != nil {
		s.gw.dispatch(s.interactionEvent(cur))
	}
}

// Permissions in member objects: what an ordinary member holds (view,
// send, threads, history, reactions, files), and everything for admins.
const (
	memberPermissions = 1<<6 | 1<<10 | 1<<11 | 1<<15 | 1<<16 | 1<<35 | 1<<38
	adminPermissions  = 1<<50 - 1
	botPermissions    = memberPermissions
)

func wireMember(u User) map[string]any {
	perms := int64(memberPermissions)
	if u.Admin {
		perms = adminPermissions
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return map[string]any{"user": wireUser(u), "roles": roles, "nick": nil, "deaf": false, "mute": false,
		"joined_at": "2024-01-01T00:00:00Z", "flags": 0, "pending": false, "permissions": strconv.FormatInt(perms, 10)}
}

func token() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "aW50ZXJhY3Rpb24" + hex.EncodeToString(b[:])
}
