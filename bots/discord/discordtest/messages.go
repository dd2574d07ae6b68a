package discordtest

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/gif" // registers GIF for attachment dimensions
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	_ "golang.org/x/image/webp"
)

// Message flags, as in Discord's MessageFlags.
const (
	FlagEphemeral = 1 << 6
	FlagLoading   = 1 << 7
)

// Message types, as in Discord's MessageType.
const (
	TypeDefault = 0
	TypeReply   = 19
)

// Message is a message as the fake holds it.
type Message struct {
	ID, ChannelID, GuildID string
	Author                 User
	Type                   int
	Content                string
	Mentions               []string // user ids
	Attachments            []Attachment
	Components             []Component
	Flags                  int
	Reference              string // the message this one replies to
	InteractionID          string // set on interaction responses and follow-ups
	Thread                 string // the thread started from this message
	Reactions              []string
	// Pings are who the message notified, as Discord works it out from
	// its content and allowed_mentions, over its creation and edits:
	// "@everyone" (also for @here), "role:<id>" and "user:<id>". A bot
	// that means to ping no one leaves it empty. Mentions inside code
	// count too, which is stricter than Discord.
	Pings     []string
	Edits     int
	Deleted   bool
	CreatedAt time.Time

	unresolved bool // dispatched without referenced_message
}

// Component is a message component: an action row (type 1) holding
// buttons (type 2).
type Component struct {
	Type       int         `json:"type"`
	Style      int         `json:"style,omitempty"`
	Label      string      `json:"label,omitempty"`
	CustomID   string      `json:"custom_id,omitempty"`
	URL        string      `json:"url,omitempty"`
	Disabled   bool        `json:"disabled,omitempty"`
	Emoji      any         `json:"emoji,omitempty"`
	Components []Component `json:"components,omitempty"`
	// A string select (type 3) has a placeholder, options and bounds on
	// how many may be chosen.
	Placeholder string         `json:"placeholder,omitempty"`
	Options     []SelectOption `json:"options,omitempty"`
	MinValues   *int           `json:"min_values,omitempty"`
	MaxValues   *int           `json:"max_values,omitempty"`
}

// SelectOption is an option of a string select.
type SelectOption struct {
	Label       string `json:"label"`
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
	Emoji       any    `json:"emoji,omitempty"`
	Default     bool   `json:"default,omitempty"`
}

// Attachment is a file on a message, served by the fake's CDN at URL.
type Attachment struct {
	ID, Filename, ContentType, URL string
	Size, Width, Height            int
	Data                           []byte
}

// Ephemeral reports whether only the interaction's user can see m.
func (m Message) Ephemeral() bool { return m.Flags&FlagEphemeral != 0 }

// Buttons returns the components of m's action rows (buttons and
// selects), in order.
func (m Message) Buttons() []Component {
	var out []Component
	for _, row := range m.Components {
		out = append(out, row.Components...)
	}
	return out
}

func (m *Message) snapshot() Message {
	c := *m
	c.Mentions = slices.Clone(m.Mentions)
	c.Attachments = slices.Clone(m.Attachments)
	c.Components = slices.Clone(m.Components)
	c.Reactions = slices.Clone(m.Reactions)
	c.Pings = slices.Clone(m.Pings)
	return c
}

// add stores a new message; s.mu must be held.
func (s *Server) add(m *Message) {
	m.CreatedAt = time.Now()
	s.messages[m.ID] = m
	s.order = append(s.order, m.ID)
}

// attach stores files as attachments of a message in channel c, served by
// the CDN; s.mu must be held.
func (s *Server) attach(c *Channel, files []File) []Attachment {
	var out []Attachment
	for _, f := range files {
		a := Attachment{ID: s.newID(), Filename: f.Name, ContentType: f.ContentType, Size: len(f.Data), Data: f.Data}
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(f.Data)); err == nil {
			a.Width, a.Height = cfg.Width, cfg.Height
		}
		if a.ContentType == "" || a.ContentType == "application/octet-stream" {
			a.ContentType = http.DetectContentType(f.Data)
		}
		path := "/attachments/" + c.ID + "/" + a.ID + "/" + a.Filename
		a.URL = s.srv.URL + path + "?ex=67c0ffee&is=67beadde&hm=fake"
		s.files[path] = &a
		out = append(out, a)
	}
	return out
}

// wire returns m as Discord's message object; s.mu must be held. A reply
// carries the message it refers to, as in MESSAGE_CREATE.
func (s *Server) wire(m *Message, withReferenced bool) map[string]any {
	mentions := []any{}
	for _, id := range m.Mentions {
		mentions = append(mentions, wireUser(s.users[id]))
	}
	atts := []any{}
	for _, a := range m.Attachments {
		atts = append(atts, wireAttachment(a))
	}
	roles := []any{}
	for _, p := range m.Pings {
		if id, ok := strings.CutPrefix(p, "role:"); ok {
			roles = append(roles, id)
		}
	}
	components := m.Components
	if components == nil {
		components = []Component{}
	}
	w := map[string]any{
		"id": m.ID, "channel_id": m.ChannelID, "type": m.Type, "content": m.Content,
		"author": wireUser(m.Author), "timestamp": m.CreatedAt.UTC().Format(time.RFC3339Nano),
		"edited_timestamp": nil, "tts": false, "mention_everyone": slices.Contains(m.Pings, "@everyone"), "mentions": mentions,
		"mention_roles": roles, "attachments": atts, "embeds": []any{}, "components": components,
		"pinned": false, "flags": m.Flags,
	}
	if m.GuildID != "" {
		w["guild_id"] = m.GuildID
	}
	if m.InteractionID != "" {
		w["webhook_id"] = s.Bot.ID
		w["application_id"] = s.Bot.ID
	}
	if m.Thread != "" {
		if t := s.channels[m.Thread]; t != nil {
			w["thread"] = s.wireChannel(t)
		}
	}
	if m.Reference != "" {
		w["message_reference"] = map[string]any{"type": 0, "message_id": m.Reference, "channel_id": m.ChannelID, "guild_id": m.GuildID}
		if ref := s.messages[m.Reference]; withReferenced && !m.unresolved && ref != nil && !ref.Deleted {
			w["referenced_message"] = s.wire(ref, false)
		} else if withReferenced {
			w["referenced_message"] = nil
		}
	}
	return w
}

func wireUser(u User) map[string]any {
	return map[string]any{"id": u.ID, "username": u.Username, "global_name": u.Username,
		"discriminator": "0", "avatar": nil, "bot": u.Bot}
}

func wireAttachment(a Attachment) map[string]any {
	w := map[string]any{"id": a.ID, "filename": a.Filename, "size": a.Size, "url": a.URL,
		"proxy_url": a.URL, "content_type": a.ContentType}
	if a.Width > 0 {
		w["width"], w["height"] = a.Width, a.Height
	}
	return w
}

// wireChannel returns c as Discord's channel object; s.mu must be held.
func (s *Server) wireChannel(c *Channel) map[string]any {
	w := map[string]any{"id": c.ID, "type": c.Type, "name": c.Name, "flags": 0, "last_message_id": nil}
	if last := s.lastMessage(c.ID); last != "" {
		w["last_message_id"] = last
	}
	if c.GuildID != "" {
		w["guild_id"] = c.GuildID
	}
	switch c.Type {
	case ChannelText, ChannelCategory:
		w["parent_id"] = nil
		if c.ParentID != "" {
			w["parent_id"] = c.ParentID
		}
	case ChannelPublicThread:
		w["parent_id"], w["owner_id"] = c.ParentID, c.OwnerID
		w["thread_metadata"] = map[string]any{"archived": false, "auto_archive_duration": 1440,
			"archive_timestamp": time.Now().UTC().Format(time.RFC3339), "locked": false}
		w["message_count"], w["member_count"] = 0, 1
	case ChannelDM:
		w["recipients"] = []any{wireUser(s.users[c.Recipient])}
	}
	return w
}

// messageEvent returns the MESSAGE_CREATE dispatch of m; s.mu must be held.
// Ephemeral messages are not dispatched.
func (s *Server) messageEvent(m *Message) []event {
	if m.Ephemeral() {
		return nil
	}
	intent := intentGuildMessages
	if m.GuildID == "" {
		intent = intentDirectMessages
	}
	private := m.GuildID != "" && m.Author.ID != s.Bot.ID && !slices.Contains(m.Mentions, s.Bot.ID)
	return []event{{t: "MESSAGE_CREATE", d: s.wire(m, true), intent: intent, content: private}}
}

// messagePayload is the JSON of a message create or edit request
// (MessageCreateRequest, MessageEditRequestPartial and the webhook and
// interaction callback variants).
type messagePayload struct {
	Content          *string          `json:"content"`
	Components       *[]Component     `json:"components"`
	Attachments      *[]attachmentRef `json:"attachments"`
	Embeds           []any            `json:"embeds"`
	StickerIDs       []string         `json:"sticker_ids"`
	Flags            int              `json:"flags"`
	TTS              bool             `json:"tts"`
	AllowedMentions  *allowedMentions `json:"allowed_mentions"`
	MessageReference *struct {
		MessageID       string `json:"message_id"`
		ChannelID       string `json:"channel_id"`
		FailIfNotExists *bool  `json:"fail_if_not_exists"`
	} `json:"message_reference"`
}

// attachmentRef names an attachment to keep (by snowflake) or a new file
// (by its files[n] index) in a message edit.
type attachmentRef struct {
	ID       json.RawMessage `json:"id"`
	Filename string          `json:"filename"`
}

// key returns the id as a string whether it was sent as a string or number.
func (r attachmentRef) key() string {
	var s string
	if json.Unmarshal(r.ID, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(r.ID, &n) == nil {
		return n.String()
	}
	return ""
}

type allowedMentions struct {
	Parse       []string `json:"parse"`
	Users       []string `json:"users"`
	Roles       []string `json:"roles"`
	RepliedUser bool     `json:"replied_user"`
}

// check refuses what Discord refuses: a type both parsed and listed.
func (a *allowedMentions) check() *apiError {
	if a == nil {
		return nil
	}
	for _, p := range a.Parse {
		if !slices.Contains([]string{"users", "roles", "everyone"}, p) {
			return invalidForm("allowed_mentions.parse", "Value must be one of ('roles', 'users', 'everyone').")
		}
	}
	if slices.Contains(a.Parse, "users") && len(a.Users) > 0 || slices.Contains(a.Parse, "roles") && len(a.Roles) > 0 {
		return invalidForm("allowed_mentions", "parse and users or roles are mutually exclusive")
	}
	return nil
}

// Mentions as they are written in a message's content.
var (
	userMention  = regexp.MustCompile(`<@!?(\d+)>`)
	roleMention  = regexp.MustCompile(`<@&(\d+)>`)
	everyoneText = regexp.MustCompile(`@(everyone|here)\b`)
)

// pings returns who content notifies under a: with no allowed_mentions
// everything written is parsed; with them, only the types in parse and
// the ids listed. replied is the author of the message replied to, who is
// pinged unless allowed_mentions leaves replied_user off.
func pings(content string, a *allowedMentions, replied string) []string {
	allow := func(kind, id string, listed []string) bool {
		return a == nil || slices.Contains(a.Parse, kind) || id != "" && slices.Contains(listed, id)
	}
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if everyoneText.MatchString(content) && allow("everyone", "", nil) {
		add("@everyone")
	}
	for _, m := range roleMention.FindAllStringSubmatch(content, -1) {
		if allow("roles", m[1], rolesOf(a)) {
			add("role:" + m[1])
		}
	}
	for _, m := range userMention.FindAllStringSubmatch(content, -1) {
		if allow("users", m[1], usersOf(a)) {
			add("user:" + m[1])
		}
	}
	if replied != "" && (a == nil || a.RepliedUser) {
		add("user:" + replied)
	}
	return out
}

func rolesOf(a *allowedMentions) []string {
	if a == nil {
		return nil
	}
	return a.Roles
}

func usersOf(a *allowedMentions) []string {
	if a == nil {
		return nil
	}
	return a.Users
}

// decodePayload converts a parsed JSON body into a messagePayload.
func decodePayload(body map[string]any) (messagePayload, *apiError) {
	var p messagePayload
	raw, err := json.Marshal(body)
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	if err != nil {
		return p, errorf(http.StatusBadRequest, 50035, "Invalid Form Body: %v", err)
	}
	return p, nil
}

// apply sets the fields of an edit payload on m, keeping the attachments it
// lists and adding the new files; s.mu must be held.
func (s *Server) apply(m *Message, p messagePayload, files []File) {
	if p.Content != nil {
		m.Content = *p.Content
		replied := ""
		if ref := s.messages[m.Reference]; m.Reference != "" && ref != nil {
			replied = ref.Author.ID
		}
		for _, who := range pings(m.Content, p.AllowedMentions, replied) {
			if !slices.Contains(m.Pings, who) {
				m.Pings = append(m.Pings, who)
			}
		}
	}
	if p.Components != nil {
		m.Components = *p.Components
	}
	if p.Attachments == nil {
		m.Attachments = append(m.Attachments, s.attach(s.channels[m.ChannelID], files)...)
	} else {
		var keep []Attachment
		var added []File
		for _, ref := range *p.Attachments {
			id := ref.key()
			if i := slices.IndexFunc(m.Attachments, func(a Attachment) bool { return a.ID == id }); i >= 0 {
				keep = append(keep, m.Attachments[i])
			} else if j := slices.IndexFunc(files, func(f File) bool { return f.Field == "files["+id+"]" }); j >= 0 {
				added = append(added, files[j])
			}
		}
		m.Attachments = append(keep, s.attach(s.channels[m.ChannelID], added)...)
	}
	m.Flags &^= FlagLoading
	m.Edits++
}
