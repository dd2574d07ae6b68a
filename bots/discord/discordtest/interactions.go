package discordtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// InteractionDeadline is how long Discord waits for an interaction's first
// response; a later callback gets 404 "Unknown interaction".
const InteractionDeadline = 3 * time.Second

// Interaction callback types (InteractionCallbackTypes).
const (
	CallbackMessage         = 4
	CallbackDeferredMessage = 5
	CallbackDeferredUpdate  = 6
	CallbackUpdate          = 7
	CallbackAutocomplete    = 8
)

// Interaction types (InteractionTypes) of commands; a button press or
// menu choice is type 3.
const (
	InteractionCommand      = 2
	InteractionAutocomplete = 4
)

// maxAutocompleteChoices is the most choices an autocomplete answer holds.
const maxAutocompleteChoices = 25

// Interaction is an interaction sent to the bot and what became of it.
type Interaction struct {
	ID, Token          string
	Type               int // 2 application command, 3 message component, 4 autocomplete
	ChannelID, GuildID string
	User               User
	CustomID           string // component interactions
	Message            string // component interactions: the message clicked
	SentAt             time.Time
	AckedAt            time.Time
	AckType            int
	Original           string   // the @original response message, if any
	Followups          []string // follow-up message ids
	// Choices are an autocomplete's answer (callback type 8), in order.
	Choices []Choice

	payload map[string]any // the INTERACTION_CREATE data, for Redeliver
}

// AckLatency returns the time from dispatch to callback, or 0 if the
// interaction was not acknowledged.
func (i Interaction) AckLatency() time.Duration {
	if i.AckedAt.IsZero() || i.SentAt.IsZero() {
		return 0
	}
	return i.AckedAt.Sub(i.SentAt)
}

func (i *Interaction) snapshot() Interaction {
	c := *i
	c.Followups = slices.Clone(i.Followups)
	c.Choices = slices.Clone(i.Choices)
	return c
}

// Command is a registered application command.
type Command struct {
	ID            string          `json:"id"`
	ApplicationID string          `json:"application_id"`
	GuildID       string          `json:"guild_id,omitempty"`
	Type          int             `json:"type"`
	Name          string          `json:"name"`
	Description   string          `json:"description"`
	Options       []CommandOption `json:"options"`
	Contexts      []int           `json:"contexts,omitempty"`
	Version       string          `json:"version"`
}

// CommandOption is one option of a command: a subcommand group (type 2)
// holding subcommands, a subcommand (type 1) holding value options, or a
// value option (types 3 to 11).
type CommandOption struct {
	Type         int             `json:"type"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Required     bool            `json:"required,omitempty"`
	Choices      []Choice        `json:"choices,omitempty"`
	MinValue     *float64        `json:"min_value,omitempty"`
	MaxValue     *float64        `json:"max_value,omitempty"`
	MinLength    *int            `json:"min_length,omitempty"`
	MaxLength    *int            `json:"max_length,omitempty"`
	Autocomplete bool            `json:"autocomplete,omitempty"`
	Options      []CommandOption `json:"options,omitempty"`
}

// Choice is one allowed value of an option.
type Choice struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// interactionRoutes registers interaction callbacks, the webhook routes of
// interaction tokens and command registration.
func (s *Server) interactionRoutes(mux *http.ServeMux) {
	s.handle(mux, "POST /interactions/{interaction_id}/{interaction_token}/callback", false, s.callback)
	for _, msg := range []string{"@original", "{message_id}"} {
		route := "/webhooks/{webhook_id}/{webhook_token}/messages/" + msg
		s.handle(mux, "GET "+route, false, s.webhookGet)
		s.handle(mux, "PATCH "+route, false, s.webhookEdit)
		s.handle(mux, "DELETE "+route, false, s.webhookDelete)
	}
	s.handle(mux, "POST /webhooks/{webhook_id}/{webhook_token}", false, s.followup)
	for _, scope := range []string{"", "/guilds/{guild_id}"} {
		route := "/applications/{application_id}" + scope + "/commands"
		s.handle(mux, "GET "+route, true, s.listCommands)
		s.handle(mux, "POST "+route, true, s.createCommand)
		s.handle(mux, "PUT "+route, true, s.overwriteCommands)
	}
}

// callback is POST /interactions/{interaction_id}/{interaction_token}/callback.
func (s *Server) callback(c *Call) result {
	i := s.interactions[c.Params["interaction_id"]]
	switch {
	case i == nil || i.Token != c.Params["interaction_token"] || s.expired:
		return fail(errorf(http.StatusNotFound, 10062, "Unknown interaction"))
	case i.AckType != 0:
		return fail(errorf(http.StatusBadRequest, 40060, "Interaction has already been acknowledged."))
	case c.At.Sub(i.SentAt) > InteractionDeadline:
		return fail(errorf(http.StatusNotFound, 10062, "Unknown interaction"))
	}
	typ, _ := c.Body["type"].(float64)
	data, _ := c.Body["data"].(map[string]any)
	if i.Type == InteractionAutocomplete || int(typ) == CallbackAutocomplete {
		return s.autocompleted(c, i, int(typ), data)
	}
	p, err := decodePayload(data)
	if err != nil {
		return fail(err)
	}
	ch := s.channels[i.ChannelID]
	var events []event
	switch int(typ) {
	case CallbackMessage, CallbackDeferredMessage:
		if err := checkMessage(p, c.Files, int(typ) == CallbackMessage, s.uploadLimit(ch), FlagEphemeral|1<<2); err != nil {
			return fail(err)
		}
		m := &Message{ID: s.newID(), ChannelID: ch.ID, GuildID: ch.GuildID, Author: s.Bot, InteractionID: i.ID, Flags: p.Flags & FlagEphemeral}
		s.apply(m, p, c.Files)
		m.Edits = 0
		if int(typ) == CallbackDeferredMessage {
			m.Flags |= FlagLoading
		}
		s.add(m)
		i.Original = m.ID
		events = s.messageEvent(m)
	case CallbackDeferredUpdate, CallbackUpdate:
		if i.Type != 3 {
			return fail(invalidForm("type", "Interaction callback type 6 and 7 are for message components only"))
		}
		i.Original = i.Message
		if int(typ) == CallbackUpdate {
			if err := checkMessage(p, c.Files, false, s.uploadLimit(ch), 1<<2); err != nil {
				return fail(err)
			}
			s.apply(s.messages[i.Message], p, c.Files)
		}
	default:
		return fail(invalidForm("type", "the fake supports callback types 4, 5, 6 and 7"))
	}
	i.AckType, i.AckedAt = int(typ), c.At
	return ok(http.StatusNoContent, nil, events...)
}

// autocompleted answers an autocomplete interaction: only with callback
// type 8, whose data holds at most 25 choices, each with a name of 1 to
// 100 characters and a value that suits the focused option; and type 8
// answers nothing else.
func (s *Server) autocompleted(c *Call, i *Interaction, typ int, data map[string]any) result {
	switch {
	case i.Type != InteractionAutocomplete:
		return fail(invalidForm("type", "Interaction callback type 8 is for autocomplete interactions only"))
	case typ != CallbackAutocomplete:
		return fail(invalidForm("type", "an autocomplete interaction is answered with callback type 8"))
	}
	var d struct {
		Choices []*Choice `json:"choices"`
	}
	raw, _ := json.Marshal(data)
	if err := json.Unmarshal(raw, &d); err != nil {
		return fail(invalidForm("data.choices", err.Error()))
	}
	if len(d.Choices) > maxAutocompleteChoices {
		return fail(invalidForm("data.choices", "Must be 25 or fewer in length."))
	}
	focusedType := s.focusedType(i)
	choices := []Choice{}
	for _, ch := range d.Choices {
		if ch == nil {
			continue
		}
		if n := utf8.RuneCountInString(ch.Name); n < 1 || n > maxChoiceName {
			return fail(invalidForm("data.choices.name", "Must be between 1 and 100 in length."))
		}
		if err := checkChoiceValue(focusedType, ch.Value, "data.choices.value"); err != nil {
			return fail(err)
		}
		choices = append(choices, *ch)
	}
	i.Choices, i.AckType, i.AckedAt = choices, typ, c.At
	return ok(http.StatusNoContent, nil)
}

// focusedType returns the type of the option focused in an autocomplete
// interaction: the type of the value it was sent with.
func (s *Server) focusedType(i *Interaction) int {
	data, _ := i.payload["data"].(map[string]any)
	options, _ := data["options"].([]any)
	for len(options) > 0 {
		var next []any
		for _, o := range options {
			o, _ := o.(map[string]any)
			if focused, _ := o["focused"].(bool); focused {
				typ, _ := o["type"].(int)
				return typ
			}
			if sub, ok := o["options"].([]any); ok {
				next = append(next, sub...)
			}
		}
		options = next
	}
	return optionString
}

// token returns the interaction of a webhook call's token, or the error
// Discord gives for an unknown or expired one.
func (s *Server) token(c *Call) (*Interaction, *apiError) {
	i := s.tokens[c.Params["webhook_token"]]
	switch {
	case i == nil || c.Params["webhook_id"] != s.Bot.ID || s.expired:
		return nil, errorf(http.StatusUnauthorized, 50027, "Invalid Webhook Token")
	case i.AckType == 0 || i.Type == InteractionAutocomplete:
		return nil, errorf(http.StatusNotFound, 10015, "Unknown Webhook")
	}
	return i, nil
}

// webhookMessage returns the message a webhook route names: @original or a
// follow-up.
func (s *Server) webhookMessage(c *Call) (*Interaction, *Message, *apiError) {
	i, err := s.token(c)
	if err != nil {
		return nil, nil, err
	}
	id, isOriginal := c.Params["message_id"], c.Params["message_id"] == ""
	if isOriginal {
		id = i.Original
	} else if !slices.Contains(i.Followups, id) {
		return nil, nil, errorf(http.StatusNotFound, 10008, "Unknown Message")
	}
	m := s.messages[id]
	if m == nil || m.Deleted {
		return nil, nil, errorf(http.StatusNotFound, 10008, "Unknown Message")
	}
	return i, m, nil
}

func (s *Server) webhookGet(c *Call) result {
	_, m, err := s.webhookMessage(c)
	if err != nil {
		return fail(err)
	}
	return ok(http.StatusOK, s.wire(m, true))
}

func (s *Server) webhookEdit(c *Call) result {
	_, m, err := s.webhookMessage(c)
	if err != nil {
		return fail(err)
	}
	p, err := decodePayload(c.Body)
	if err == nil {
		err = checkMessage(p, c.Files, false, s.uploadLimit(s.channels[m.ChannelID]), 1<<2)
	}
	if err != nil {
		return fail(err)
	}
	s.apply(m, p, c.Files)
	return ok(http.StatusOK, s.wire(m, true))
}

func (s *Server) webhookDelete(c *Call) result {
	_, m, err := s.webhookMessage(c)
	if err != nil {
		return fail(err)
	}
	m.Deleted = true
	return ok(http.StatusNoContent, nil)
}

// followup is POST /webhooks/{webhook_id}/{webhook_token}: a follow-up
// message, which may be ephemeral.
func (s *Server) followup(c *Call) result {
	i, err := s.token(c)
	if err != nil {
		return fail(err)
	}
	ch := s.channels[i.ChannelID]
	p, err := decodePayload(c.Body)
	if err == nil {
		err = checkMessage(p, c.Files, true, s.uploadLimit(ch), FlagEphemeral|1<<2|1<<12)
	}
	if err != nil {
		return fail(err)
	}
	m := &Message{ID: s.newID(), ChannelID: ch.ID, GuildID: ch.GuildID, Author: s.Bot, InteractionID: i.ID, Flags: p.Flags}
	s.apply(m, p, c.Files)
	m.Edits = 0
	s.add(m)
	i.Followups = append(i.Followups, m.ID)
	var body any
	if c.Query.Get("wait") == "true" {
		body = s.wire(m, true)
	}
	return ok(http.StatusOK, body, s.messageEvent(m)...)
}

func (s *Server) listCommands(c *Call) result {
	if c.Params["application_id"] != s.Bot.ID {
		return fail(errorf(http.StatusForbidden, 50001, "Missing Access"))
	}
	out := []Command{}
	for _, cmd := range s.commands {
		if cmd.GuildID == c.Params["guild_id"] {
			out = append(out, cmd)
		}
	}
	return ok(http.StatusOK, out)
}

// createCommand is POST …/commands: it creates a command, or updates the one
// with the same name in the same scope.
func (s *Server) createCommand(c *Call) result {
	cmd, err := s.decodeCommand(c, c.Body)
	if err != nil {
		return fail(err)
	}
	return ok(http.StatusCreated, s.upsert(cmd))
}

// overwriteCommands is PUT …/commands: the scope's commands become the list sent.
func (s *Server) overwriteCommands(c *Call) result {
	scope := c.Params["guild_id"]
	var cmds []Command
	for _, body := range c.List {
		cmd, err := s.decodeCommand(c, body)
		if err != nil {
			return fail(err)
		}
		cmds = append(cmds, cmd)
	}
	s.commands = slices.DeleteFunc(s.commands, func(x Command) bool { return x.GuildID == scope })
	out := []Command{}
	for _, cmd := range cmds {
		out = append(out, s.upsert(cmd))
	}
	return ok(http.StatusOK, out)
}

func (s *Server) decodeCommand(c *Call, body map[string]any) (Command, *apiError) {
	if c.Params["application_id"] != s.Bot.ID {
		return Command{}, errorf(http.StatusForbidden, 50001, "Missing Access")
	}
	if g := c.Params["guild_id"]; g != "" && s.guilds[g] == nil {
		return Command{}, errorf(http.StatusForbidden, 50001, "Missing Access")
	}
	var cmd Command
	raw, _ := json.Marshal(body)
	if err := json.Unmarshal(raw, &cmd); err != nil {
		return Command{}, invalidForm("body", err.Error())
	}
	if err := checkCommand(cmd); err != nil {
		return Command{}, err
	}
	cmd.ApplicationID, cmd.GuildID = s.Bot.ID, c.Params["guild_id"]
	if cmd.Type == 0 {
		cmd.Type = 1
	}
	return cmd, nil
}

// upsert stores cmd, keeping the id of an existing command of the same name
// and scope, and returns it as stored; s.mu must be held.
func (s *Server) upsert(cmd Command) Command {
	cmd.Version = s.newID()
	for i, old := range s.commands {
		if old.Name == cmd.Name && old.GuildID == cmd.GuildID {
			cmd.ID = old.ID
			s.commands[i] = cmd
			return cmd
		}
	}
	cmd.ID = s.newID()
	s.commands = append(s.commands, cmd)
	return cmd
}
