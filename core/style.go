package core

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Style is a named look a team keeps so nobody retypes it: words added to
// the prompt, flags and reference images. A request takes one with
// "--style NAME", or from its channel's defaults.
type Style struct {
	Name string `json:"name"`
	// Prompt is added to the prompt of every turn that uses the style.
	Prompt string `json:"prompt,omitempty"`
	// Flags are the style's size, quality, model, provider, format and
	// background; a request's own flags win over them.
	Flags Flags `json:"flags"`
	// Refs are reference images sent with every generation that uses the
	// style, kept in the image store like any other image.
	Refs []ImageRef `json:"refs,omitempty"`
	// By and At say who last set the style in chat, and when; zero for a
	// style from the config.
	By User      `json:"by,omitzero"`
	At time.Time `json:"at,omitzero"`
	// Config marks a style defined in Easel's config: chat cannot change
	// or delete it.
	Config bool `json:"-"`
}

// Spec returns the style as it is typed after its name: its prompt, then
// its flags.
func (s Style) Spec() string {
	return strings.TrimSpace(s.Prompt + " " + s.Flags.String())
}

// ChannelDefaults are what an admin set for the requests that start a
// session in one channel (or, on Discord, a category): a default style
// and flags. A request's own --style and flags win over them.
type ChannelDefaults struct {
	Style   string    `json:"style,omitempty"`
	Model   string    `json:"model,omitempty"`
	Aspect  string    `json:"ar,omitempty"`
	Size    string    `json:"size,omitempty"` // resolved from Aspect
	Quality string    `json:"quality,omitempty"`
	By      User      `json:"by,omitzero"`
	At      time.Time `json:"at,omitzero"`
}

// IsZero reports whether d sets nothing.
func (d ChannelDefaults) IsZero() bool {
	return d.Style == "" && d.Model == "" && d.Size == "" && d.Quality == ""
}

// String spells d as the flags that set it, "--style brand --quality high".
func (d ChannelDefaults) String() string {
	f := Flags{Style: d.Style, Model: d.Model, Aspect: d.Aspect, Size: d.Size, Quality: d.Quality}
	return f.String()
}

// Applied records what a turn took from a style and from its channel's
// defaults, as it was when the turn was recorded.
type Applied struct {
	// Style names the style the turn used; StylePrompt is the text it
	// added to the prompt, and FromChannel is set when the style came
	// from the channel's defaults rather than the request's --style.
	Style       string `json:"style,omitempty"`
	StylePrompt string `json:"style_prompt,omitempty"`
	FromChannel bool   `json:"from_channel,omitempty"`
	// Defaults are the channel's defaults that applied, as flags.
	Defaults string `json:"defaults,omitempty"`
}

// StyleStore keeps the styles and channel defaults admins set in chat, per
// platform and workspace. It stores what the engine decided; the rules
// (who may, which names) are the engine's.
type StyleStore interface {
	// Styles returns the workspace's styles, in no particular order.
	Styles(ctx context.Context, platform, workspace string) ([]Style, error)
	// PutStyle stores s under its name, replacing a style of that name.
	PutStyle(ctx context.Context, platform, workspace string, s Style) error
	// DeleteStyle removes the named style; a NotFound *Error if none.
	DeleteStyle(ctx context.Context, platform, workspace, name string) error
	// ChannelDefaults returns a channel's defaults; the zero value when
	// none are set.
	ChannelDefaults(ctx context.Context, platform, workspace, channel string) (ChannelDefaults, error)
	// PutChannelDefaults stores a channel's defaults; the zero value
	// removes them.
	PutChannelDefaults(ctx context.Context, platform, workspace, channel string, d ChannelDefaults) error
}

// MaxStyleName is the longest style name, in characters.
const MaxStyleName = 32

// Style limits.
const (
	maxStylePrompt = 1000
	maxStyleRefs   = 4
	// maxListedStyles bounds the names an unknown style's message lists.
	maxListedStyles = 20
)

// styleNameHelp says what a style name may be.
const styleNameHelp = "1 to 32 letters, digits, - or _"

// StyleName returns name as styles are keyed (lower case), or an Invalid
// *Error naming what a style name may be.
func StyleName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	ok := n != "" && utf8.RuneCountInString(n) <= MaxStyleName
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			ok = false
		}
	}
	if !ok {
		return "", Errorf(Invalid, "%q is not a style name: use %s", truncate(name, 40), styleNameHelp)
	}
	return n, nil
}

// ParseStyle reads a style's definition as an admin types it: words for
// the prompt, then flags (--ar, --size, --quality, --model, --provider,
// --format, --transparent, --no). Flags that belong to one request (--n,
// --seed, --region, --style) are refused, as is an empty definition.
func ParseStyle(name, spec string, lim Limits) (Style, error) {
	n, err := StyleName(name)
	if err != nil {
		return Style{}, err
	}
	prompt, rest := splitFlags(spec)
	prompt = strings.TrimSpace(prompt)
	var f Flags
	if rest != "" {
		if f, err = parseFlags(rest, lim); err != nil {
			return Style{}, err
		}
	}
	for _, bad := range []struct {
		set  bool
		flag string
	}{{f.N != 0, "--n"}, {f.Seed != nil, "--seed"}, {f.Region != "", "--region"}, {f.StrictRegion != nil, "--strict-region"}, {f.Style != "", "--style"}} {
		if bad.set {
			return Style{}, Errorf(Invalid, "a style can't set %s: it belongs to a single request", bad.flag)
		}
	}
	if prompt == "" && f == (Flags{}) {
		return Style{}, Errorf(Invalid, "the style %s is empty: give words to add to prompts and/or flags, e.g. `flat vector art, brand colours --ar 16:9 --quality high`", n)
	}
	if c := utf8.RuneCountInString(prompt); c > maxStylePrompt {
		return Style{}, Errorf(Invalid, "the style's words are %d characters long; the limit is %d", c, maxStylePrompt)
	}
	return Style{Name: n, Prompt: prompt, Flags: f}, nil
}

// ParseChannelDefaults reads a channel's defaults as an admin types them:
// any of --style, --model, --ar (or --size) and --quality.
func ParseChannelDefaults(spec string, lim Limits) (ChannelDefaults, error) {
	spec = strings.TrimSpace(spec)
	if spec != "" && !isFlagStart(spec) {
		return ChannelDefaults{}, Errorf(Invalid, "channel defaults are flags: --style, --model, --ar and --quality, e.g. `--style brand --quality high`")
	}
	f, err := parseFlags(spec, lim)
	if err != nil {
		return ChannelDefaults{}, err
	}
	d := ChannelDefaults{Style: f.Style, Model: f.Model, Aspect: f.Aspect, Size: f.Size, Quality: f.Quality}
	f.Style, f.Model, f.Aspect, f.Size, f.Quality = "", "", "", "", ""
	if f != (Flags{}) {
		return ChannelDefaults{}, Errorf(Invalid, "a channel's defaults are --style, --model, --ar and --quality only; %s belongs to a request or a style", f.String())
	}
	if d.IsZero() {
		return ChannelDefaults{}, Errorf(Invalid, "give at least one of --style, --model, --ar and --quality, or clear the defaults")
	}
	return d, nil
}

// truncate shortens s to n runes for a message.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Styles returns the styles a request from msg's workspace may use, those
// of the config and those set in chat, sorted by name.
func (e *Engine) Styles(ctx context.Context, msg Message) ([]Style, error) {
	out := slices.Clone(e.cfg.Styles)
	for i := range out {
		out[i].Config = true
	}
	if e.cfg.StyleStore != nil {
		stored, err := e.cfg.StyleStore.Styles(ctx, msg.Platform, msg.Workspace)
		if err != nil {
			return nil, fmt.Errorf("engine: list styles: %w", err)
		}
		for _, s := range stored {
			if !slices.ContainsFunc(out, func(c Style) bool { return c.Name == s.Name }) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b Style) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// style returns the named style of msg's workspace, or an Invalid *Error
// that lists the styles there.
func (e *Engine) style(ctx context.Context, msg Message, name string) (Style, error) {
	all, err := e.Styles(ctx, msg)
	if err != nil {
		return Style{}, err
	}
	key, err := StyleName(name)
	if err == nil {
		if i := slices.IndexFunc(all, func(s Style) bool { return s.Name == key }); i >= 0 {
			return all[i], nil
		}
	}
	if len(all) == 0 {
		return Style{}, Errorf(Invalid, "there is no style named %q: no styles are set up here yet (an admin adds them)", truncate(name, 40))
	}
	var names []string
	for _, s := range all[:min(len(all), maxListedStyles)] {
		names = append(names, s.Name)
	}
	if more := len(all) - len(names); more > 0 {
		names = append(names, fmt.Sprintf("and %d more", more))
	}
	return Style{}, Errorf(Invalid, "there is no style named %q; the styles here are %s", truncate(name, 40), strings.Join(names, ", "))
}

// mayManage returns a Forbidden *Error unless msg's sender is an admin, or
// an error if chat-set styles are not stored here.
func (e *Engine) mayManage(msg Message, what string) error {
	if !msg.User.Admin && !slices.Contains(e.cfg.Admins, msg.User.ID) {
		return Errorf(Forbidden, "only an Easel admin can change %s", what)
	}
	if e.cfg.StyleStore == nil {
		return Errorf(Conflict, "%s can't be changed in chat here; they are set in Easel's config", what)
	}
	return nil
}

// SetStyle defines or replaces a style of msg's workspace, as an admin
// asks: spec is its words and flags (see ParseStyle), refs its reference
// images (at most four). It returns the style and whether it replaced
// one. A name the config defines is taken.
func (e *Engine) SetStyle(ctx context.Context, msg Message, name, spec string, refs []Image) (Style, bool, error) {
	if err := e.mayManage(msg, "styles"); err != nil {
		return Style{}, false, err
	}
	s, err := ParseStyle(name, spec, e.cfg.Limits)
	if err != nil {
		return Style{}, false, err
	}
	if len(refs) > maxStyleRefs {
		return Style{}, false, Errorf(Invalid, "a style takes at most %d reference images; %d were attached", maxStyleRefs, len(refs))
	}
	if s.Flags.Provider != "" {
		if _, _, err := e.provider(s.Flags.Provider); err != nil {
			return Style{}, false, err
		}
	}
	all, err := e.Styles(ctx, msg)
	if err != nil {
		return Style{}, false, err
	}
	i := slices.IndexFunc(all, func(o Style) bool { return o.Name == s.Name })
	if i >= 0 && all[i].Config {
		return Style{}, false, Errorf(Conflict, "the name %s is taken by a style in Easel's config; choose another name", s.Name)
	}
	for _, in := range refs {
		ref, err := e.images.Put(ctx, in)
		if err != nil {
			return Style{}, false, fmt.Errorf("engine: store a style's reference image: %w", err)
		}
		s.Refs = append(s.Refs, ref)
	}
	s.By, s.At = msg.User, e.now()
	if err := e.cfg.StyleStore.PutStyle(ctx, msg.Platform, msg.Workspace, s); err != nil {
		return Style{}, false, fmt.Errorf("engine: store style %s: %w", s.Name, err)
	}
	return s, i >= 0, nil
}

// DeleteStyle removes a style set in chat, as an admin asks. Channel
// defaults that name it stop applying it.
func (e *Engine) DeleteStyle(ctx context.Context, msg Message, name string) error {
	if err := e.mayManage(msg, "styles"); err != nil {
		return err
	}
	s, err := e.style(ctx, msg, name)
	if err != nil {
		return err
	}
	if s.Config {
		return Errorf(Conflict, "the style %s is defined in Easel's config; remove it there", s.Name)
	}
	if err := e.cfg.StyleStore.DeleteStyle(ctx, msg.Platform, msg.Workspace, s.Name); err != nil {
		if KindOf(err) == NotFound { // deleted meanwhile
			return Errorf(NotFound, "the style %s is already deleted", s.Name)
		}
		return fmt.Errorf("engine: delete style %s: %w", s.Name, err)
	}
	return nil
}

// ChannelDefaults returns the defaults that apply to a request in msg's
// channel: the channel's own, else its category's (msg.Category), and
// where they were found ("" for none).
func (e *Engine) ChannelDefaults(ctx context.Context, msg Message) (ChannelDefaults, string, error) {
	if e.cfg.StyleStore == nil {
		return ChannelDefaults{}, "", nil
	}
	for _, where := range []string{msg.Channel, msg.Category} {
		if where == "" {
			continue
		}
		d, err := e.cfg.StyleStore.ChannelDefaults(ctx, msg.Platform, msg.Workspace, where)
		if err != nil {
			return ChannelDefaults{}, "", fmt.Errorf("engine: read channel defaults: %w", err)
		}
		if !d.IsZero() {
			return d, where, nil
		}
	}
	return ChannelDefaults{}, "", nil
}

// SetChannelDefaults sets (spec: see ParseChannelDefaults) or, with an
// empty spec, clears the defaults of where (msg.Channel, or on Discord
// msg.Category), as an admin asks. A default style must exist.
func (e *Engine) SetChannelDefaults(ctx context.Context, msg Message, where, spec string) (ChannelDefaults, error) {
	if err := e.mayManage(msg, "channel defaults"); err != nil {
		return ChannelDefaults{}, err
	}
	if where == "" {
		return ChannelDefaults{}, Errorf(Invalid, "defaults are set in a channel")
	}
	var d ChannelDefaults
	if strings.TrimSpace(spec) != "" {
		var err error
		if d, err = ParseChannelDefaults(spec, e.cfg.Limits); err != nil {
			return ChannelDefaults{}, err
		}
		if d.Style != "" {
			s, err := e.style(ctx, msg, d.Style)
			if err != nil {
				return ChannelDefaults{}, err
			}
			d.Style = s.Name
		}
		d.By, d.At = msg.User, e.now()
	}
	if err := e.cfg.StyleStore.PutChannelDefaults(ctx, msg.Platform, msg.Workspace, where, d); err != nil {
		return ChannelDefaults{}, fmt.Errorf("engine: store channel defaults: %w", err)
	}
	return d, nil
}

// applyStyle resolves turn t's --style and, when t starts a session, its
// channel's defaults into t: the flags it does not set itself, the
// style's words (Applied.StylePrompt) and reference images. Precedence,
// highest first: the request's flags, its --style, the channel's
// defaults, the channel's default style.
func (e *Engine) applyStyle(ctx context.Context, sess *Session, t *Turn, msg Message) error {
	if t.Action != ActionPrompt {
		return nil
	}
	starts := sess.Head == 0 && len(sess.ActiveTurns()) == 0
	var d ChannelDefaults
	var where string
	if starts {
		var err error
		if d, where, err = e.ChannelDefaults(ctx, msg); err != nil {
			return err
		}
	}
	name, fromChannel := t.Flags.Style, false
	if name == "" && d.Style != "" {
		name, fromChannel = d.Style, true
	}
	var style *Style
	if name != "" {
		s, err := e.style(ctx, msg, name)
		switch {
		case err == nil:
			style = &s
		case fromChannel && KindOf(err) == Invalid:
			// A default style deleted since: the defaults' flags still
			// apply, the style does not.
			e.log.Warn("a channel's default style is gone", "channel", where, "style", name)
		default:
			return err
		}
	}
	var a Applied
	if style != nil && !fromChannel {
		t.Flags = t.Flags.Inherit(style.Flags)
	}
	if !d.IsZero() {
		before := t.Flags
		t.Flags = t.Flags.Inherit(Flags{Model: d.Model, Aspect: d.Aspect, Size: d.Size, Quality: d.Quality})
		var took ChannelDefaults
		if before.Model != t.Flags.Model {
			took.Model = d.Model
		}
		if before.Size != t.Flags.Size {
			took.Aspect, took.Size = d.Aspect, d.Size
		}
		if before.Quality != t.Flags.Quality {
			took.Quality = d.Quality
		}
		if style != nil && fromChannel {
			took.Style = style.Name
		}
		a.Defaults = took.String()
	}
	if style != nil {
		if fromChannel {
			t.Flags = t.Flags.Inherit(style.Flags)
		}
		a.Style, a.StylePrompt, a.FromChannel = style.Name, style.Prompt, fromChannel
		t.Inputs = append(t.Inputs, style.Refs...)
	}
	t.Flags.Style = ""
	if a != (Applied{}) {
		t.Applied = &a
	}
	return nil
}
