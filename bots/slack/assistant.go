package slack

import (
	"context"
	"slices"
	"sync"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/core"
)

// Slack's assistant pane ("Agents & AI Apps"): an app with the feature on
// gets a pane beside any conversation, whose threads live in the person's
// DM with the app. Opening one delivers assistant_thread_started, naming
// the channel the person views as its context; the person's messages
// there are message.im events in the thread, and start and refine a
// session in it as any DM thread does. Easel answers the start with
// suggested prompts made from the workspace's styles, and shows a loading
// status in the thread while a turn runs.

// Web API methods of the assistant pane.
const (
	methodSetStatus  = "assistant.threads.setStatus"
	methodSetPrompts = "assistant.threads.setSuggestedPrompts"
)

// assistantStatus is the pane's loading status while a turn runs in one of
// its threads; Slack shows it after the app's name: "Easel is drawing…".
const assistantStatus = "is drawing…"

// assistantEvent returns the work of assistant_thread_started (started)
// or assistant_thread_context_changed: suggesting prompts for the thread.
func (b *Bot) assistantEvent(cb *slackevents.EventsAPICallbackEvent, who teamID, at slackevents.AssistantThread, started bool) (string, inbox.Job) {
	if at.ChannelID == "" || at.ThreadTimeStamp == "" {
		return "", nil
	}
	return cb.EventID, func(ctx context.Context, _ string) bool {
		if started {
			b.assistant.on(who.team) // the feature is on there now
		}
		b.suggest(ctx, who, at, started)
		return true
	}
}

// suggest sets the suggested prompts of assistant thread at, for a thread
// just started or, when its person views another channel, one that has no
// session yet (see suggestions). Nothing is suggested to someone who may
// not use Easel in the DM.
func (b *Bot) suggest(ctx context.Context, who teamID, at slackevents.AssistantThread, started bool) {
	w, err := b.workspace(ctx, who)
	if err != nil {
		b.log.Warn("slack: an assistant thread in a workspace Easel cannot serve; ignored", "team", who.team, "err", err)
		return
	}
	msg := core.Message{Platform: Platform, Workspace: who.team, Channel: at.ChannelID, User: core.User{ID: at.UserID}, DM: true}
	if err := b.engine.Allowed(msg); err != nil {
		b.log.Debug("slack: no prompts suggested to someone who may not use Easel", "user", at.UserID, "err", err)
		return
	}
	if !started {
		found, err := b.hasSession(ctx, threadKey(at.ChannelID, at.ThreadTimeStamp))
		if err != nil || found {
			return // its prompts are behind it
		}
	}
	params := slackapi.AssistantThreadsSetSuggestedPromptsParameters{ChannelID: at.ChannelID, ThreadTS: at.ThreadTimeStamp}
	params.Title, params.Prompts, err = b.suggestions(ctx, msg, at.Context.ChannelID)
	if err != nil {
		b.log.Warn("slack: reading the styles to suggest failed", "err", err)
		return
	}
	b.assistantCall(ctx, w, who.team, methodSetPrompts, func() error {
		return w.api.SetAssistantThreadsSuggestedPromptsContext(ctx, params)
	})
}

// maxSuggestions is how many prompts Slack shows in an assistant thread.
const maxSuggestions = 4

// Examples for the suggested prompts: subjects to try a style on, and
// starters for a workspace without styles.
var (
	styleSubjects = []string{"a product shot", "a poster for the team offsite", "an illustration for a blog post", "a banner for the channel"}
	starters      = []slackapi.AssistantThreadsPrompt{
		{Title: "A poster", Message: `a poster for the team offsite, bold title "Q3 KICKOFF" --ar 16:9`},
		{Title: "A product shot", Message: "a product shot of a ceramic mug on a walnut table, soft morning light"},
		{Title: "An illustration", Message: "a watercolour illustration of a lighthouse at dusk"},
		{Title: "An icon", Message: "a flat icon of a paper plane on a white background --ar 1:1"},
	}
)

// suggestions returns the title and the prompts to suggest to msg's
// sender: one per style of the workspace, the default style of channel
// (the one the person views, "" for none) first, up to four, topped up
// with starters.
func (b *Bot) suggestions(ctx context.Context, msg core.Message, channel string) (string, []slackapi.AssistantThreadsPrompt, error) {
	styles, err := b.engine.Styles(ctx, msg)
	if err != nil {
		return "", nil, err
	}
	if channel != "" {
		in := msg
		in.Channel = channel
		d, _, err := b.engine.ChannelDefaults(ctx, in)
		if err != nil {
			return "", nil, err
		}
		if i := slices.IndexFunc(styles, func(s core.Style) bool { return s.Name == d.Style }); i > 0 {
			def := styles[i]
			styles = slices.Insert(slices.Delete(styles, i, i+1), 0, def)
		}
	}
	var prompts []slackapi.AssistantThreadsPrompt
	for i, s := range styles[:min(len(styles), maxSuggestions)] {
		prompts = append(prompts, slackapi.AssistantThreadsPrompt{
			Title: "Use the " + s.Name + " style", Message: styleSubjects[i] + " --style " + s.Name})
	}
	title := "Try one of these"
	if len(prompts) > 0 {
		title = "Start with a style"
	}
	prompts = append(prompts, starters[:maxSuggestions-len(prompts)]...)
	return title, prompts, nil
}

// assist shows status ("" clears it) as the loading status of the
// thread, if it is in a DM with the bot, where the assistant pane's
// threads are; t.mu is held. Slack clears the status itself when the bot
// posts in the thread, or two minutes after it was set. A failure is
// logged, never returned: the status line in the thread says the same.
func (t *thread) assist(ctx context.Context, status string) {
	if !t.dm || status == "" && !t.assisting {
		return
	}
	w, err := t.bot.workspace(ctx, t.who)
	if err != nil {
		return
	}
	set := t.bot.assistantCall(ctx, w, t.who.team, methodSetStatus, func() error {
		return w.api.SetAssistantThreadsStatusContext(ctx, slackapi.AssistantThreadsSetStatusParameters{
			ChannelID: t.channel, ThreadTS: t.root, Status: status})
	})
	t.assisting = set && status != ""
}

// assistantGate remembers the workspaces where Slack refused an assistant
// method because the app lacks the feature or its scope, so that it is
// not called there again, and says so once per workspace and method.
type assistantGate struct {
	mu     sync.Mutex
	off    map[string]bool // workspace and method refused
	warned map[string]bool // workspace and method whose refusal was logged
}

func newAssistantGate() *assistantGate {
	return &assistantGate{off: map[string]bool{}, warned: map[string]bool{}}
}

// maxGated bounds the gate's maps; they are cleared when full.
const maxGated = 10000

// unavailable reports whether a Slack error code says that the app may
// not use an assistant method in a workspace at all: the feature is off,
// or a scope is missing.
func unavailable(code string) bool {
	switch code {
	case "not_allowed", "missing_scope", "not_allowed_token_type", "no_permission", "access_denied", "unknown_method":
		return true
	}
	return false
}

// assistantCall runs fn, the assistant method named method, in workspace
// w (id team), unless Slack refused it there before, and reports whether
// it succeeded. A refusal for want of the feature or a scope is logged
// once per workspace and method, and the method is not called there
// again until the feature shows it is on (see on); other failures are
// logged at debug level: the pane's extras are cosmetic.
func (b *Bot) assistantCall(ctx context.Context, w *workspace, team, method string, fn func() error) bool {
	key := team + " " + method
	g := b.assistant
	g.mu.Lock()
	off := g.off[key]
	g.mu.Unlock()
	if off {
		return false
	}
	err := b.call(ctx, method, fn)
	code := errorCode(err)
	switch {
	case err == nil:
		return true
	case !unavailable(code):
		b.log.Debug("slack: assistant pane call failed", "method", method, "err", err)
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.off) >= maxGated {
		clear(g.off)
	}
	g.off[key] = true
	if g.warned[key] {
		return false
	}
	if len(g.warned) >= maxGated {
		clear(g.warned)
	}
	g.warned[key] = true
	b.log.Warn("slack: Slack refused an assistant pane method; Easel carries on without it in this workspace. "+
		"To use the pane, turn on Agents & AI Apps in the app's settings and reinstall it (the assistant:write scope)",
		"method", method, "team", team, "error", code)
	return false
}

// on forgets the refusals of team's assistant methods: an assistant
// thread started there, so the feature is on now.
func (g *assistantGate) on(team string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range []string{methodSetStatus, methodSetPrompts} {
		delete(g.off, team+" "+m)
	}
}
