package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxSuggestions is the most prompt suggestions a describe gives.
const MaxSuggestions = 4

// maxSuggestionChars bounds one suggestion, in characters.
const maxSuggestionChars = 1000

// Description is what a Describer says about an image.
type Description struct {
	// Suggestions are up to MaxSuggestions distinct prompts that would
	// make an image like it.
	Suggestions []string
	Model       string
	Usage       Usage
	CostUSD     float64 // estimated from the provider's price table
}

// Describer suggests prompts for an image. A Generator that implements it
// can serve /describe (see Engine.Describe).
type Describer interface {
	// Describe returns suggestions for img, with at least one. Errors are
	// *Error values of the kinds Generate returns.
	Describe(ctx context.Context, img Image) (Description, error)
}

// DescribeEstimator is implemented by Describers that can tell, before
// calling their provider, about what describing an image costs.
type DescribeEstimator interface {
	// EstimateDescribe returns the estimated cost in US dollars, 0 when it
	// is unknown. It must be cheap and must not call the provider.
	EstimateDescribe() float64
}

// Described is the result of Engine.Describe: the turn that recorded it
// and its suggestions.
type Described struct {
	SessionID   string
	TurnID      int
	Suggestions []string
	CostUSD     float64
}

// Describe asks the describing provider for prompt suggestions for the one
// image attached to msg (msg.Inputs, already checked by the adapter) and
// records them as a done describe turn of the thread's session, creating
// the session if needed. The turn makes no version; what it cost counts
// towards the usage counters and the quotas like any turn, and while it
// runs it holds one of its sender's turns in flight and, during the
// provider call, a provider slot (waiting for one if none is free). msg.Text may carry a
// --provider flag; otherwise the default provider describes. Errors are
// *Error values for the user (nothing is recorded then), or errors reading
// the store.
func (e *Engine) Describe(ctx context.Context, msg Message) (Described, error) {
	msg.Action = ActionDescribe
	if err := e.Allowed(msg); err != nil {
		return Described{}, err
	}
	if len(msg.Inputs) != 1 {
		return Described{}, Errorf(Invalid, "attach one image to describe (a PNG, JPEG or WebP)")
	}
	var flags Flags
	if _, rest := splitFlags(msg.Text); rest != "" {
		var err error
		if flags, err = parseFlags(rest, e.cfg.Limits); err != nil {
			return Described{}, err
		}
	}
	gen, name, err := e.provider(flags.Provider)
	if err != nil {
		return Described{}, err
	}
	d, ok := gen.(Describer)
	if !ok {
		return Described{}, Errorf(Invalid, "the %s provider cannot describe images; try --provider openai-responses or --provider preview", name)
	}
	turn := Turn{Kind: KindDescribe, Action: ActionDescribe, User: msg.User, Text: msg.Text, Flags: Flags{Provider: flags.Provider},
		Provider: name, Source: msg.Source, Delivery: msg.Delivery, Status: StatusQueued}

	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return Described{}, err
	}
	// What the describe holds is held under a name of its own: the id its
	// turn will get is known only when it is recorded, and a turn recorded
	// meanwhile may take the one it would have now.
	ref := JobRef{SessionID: "describe-" + NewSessionID(), TurnID: 1}
	if err := e.reserve(ctx, ref, sess, turn, msg); err != nil {
		return Described{}, err
	}
	defer e.release(ref)

	started := e.now()
	if err := e.limits.Providers.Acquire(ctx); err != nil {
		return Described{}, WrapError(Unavailable, err, "Easel is busy; try again in a minute")
	}
	desc, err := d.Describe(ctx, msg.Inputs[0])
	e.limits.Providers.Release()
	if err != nil {
		return Described{}, err
	}
	img, err := e.images.Put(ctx, msg.Inputs[0])
	if err != nil {
		return Described{}, fmt.Errorf("engine: store the image described: %w", err)
	}
	turn.Inputs, turn.Model, turn.Usage, turn.CostUSD = []ImageRef{img}, desc.Model, desc.Usage, desc.CostUSD
	turn.Suggestions, turn.Status, turn.StartedAt, turn.FinishedAt = desc.Suggestions, StatusDone, started, e.now()
	stored, err := e.recordDone(ctx, msg, turn)
	if err != nil {
		return Described{}, err
	}
	t := stored.Turns[len(stored.Turns)-1]
	return Described{SessionID: stored.ID, TurnID: t.ID, Suggestions: t.Suggestions, CostUSD: t.CostUSD}, nil
}

// recordDone appends the finished turn t to msg's session, creating the
// session if the thread has none, and returns the session as stored.
func (e *Engine) recordDone(ctx context.Context, msg Message, t Turn) (*Session, error) {
	unlock := e.lockThread(msg.Platform + "\x00" + msg.Thread)
	defer unlock()
	sess, err := e.sessionFor(ctx, msg)
	if err != nil {
		return nil, err
	}
	t.QueuedAt = t.StartedAt
	if sess.ID == "" {
		t.ID = 1
		sess = &Session{ID: NewSessionID(), Platform: msg.Platform, Workspace: msg.Workspace, Channel: msg.Channel,
			Thread: msg.Thread, CreatedBy: msg.User, CreatedAt: t.FinishedAt, Turns: []Turn{t}}
		if err := e.store.CreateSession(ctx, sess); err != nil {
			return nil, fmt.Errorf("engine: create session: %w", err)
		}
		return sess, nil
	}
	stored, err := e.store.UpdateSession(ctx, sess.ID, func(s *Session) error {
		t.ID = len(s.Turns) + 1
		s.Turns = append(s.Turns, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("engine: record describe: %w", err)
	}
	return stored, nil
}

// Suggestion returns suggestion n (from 1) of describe turn turnID of
// session sessionID, for presser to start a new session with: only who
// asked for the describe, or an admin, may use it.
func (e *Engine) Suggestion(ctx context.Context, sessionID string, turnID, n int, presser User) (string, error) {
	sess, err := e.store.Session(ctx, sessionID)
	if err != nil {
		return "", err
	}
	t := sess.Turn(turnID)
	if t == nil || t.Kind != KindDescribe {
		return "", Errorf(NotFound, "these suggestions are gone")
	}
	if n < 1 || n > len(t.Suggestions) {
		return "", Errorf(NotFound, "there is no suggestion %d; there are %d", n, len(t.Suggestions))
	}
	admin := presser.Admin || slices.Contains(e.cfg.Admins, presser.ID)
	if !admin && presser.ID != t.User.ID {
		return "", Errorf(Forbidden, "only %s (who asked for these suggestions) or an admin can use them", displayName(t.User))
	}
	return t.Suggestions[n-1], nil
}

// errNoSuggestions is ParseSuggestions' error for an answer it finds no
// prompt in.
var errNoSuggestions = errors.New("the answer holds no prompt suggestions")

// numbered matches a list item's marker: "1.", "2)", "- ", "* ".
var numbered = regexp.MustCompile(`^\s*(?:\d+[.):]|[-*•])\s+`)

// ParseSuggestions reads a model's answer listing prompt suggestions: the
// JSON object {"prompts": [...]} asked for, or else a numbered or bulleted
// list, one per line. It trims them, drops empty and repeated ones (ignoring
// case), cuts each to a bounded length and keeps at most MaxSuggestions.
func ParseSuggestions(answer string) ([]string, error) {
	var obj struct {
		Prompts []string `json:"prompts"`
	}
	raw := strings.TrimSpace(answer)
	raw = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(raw, "```json"), "```"), "```")
	items := []string(nil)
	if err := json.Unmarshal([]byte(strings.TrimSpace(raw)), &obj); err == nil {
		items = obj.Prompts
	} else {
		for _, line := range strings.Split(answer, "\n") {
			if loc := numbered.FindStringIndex(line); loc != nil {
				items = append(items, line[loc[1]:])
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range items {
		s = strings.Join(strings.Fields(strings.Trim(strings.TrimSpace(s), `"`)), " ")
		if utf8.RuneCountInString(s) > maxSuggestionChars {
			s = string([]rune(s)[:maxSuggestionChars])
		}
		if s == "" || seen[strings.ToLower(s)] {
			continue
		}
		seen[strings.ToLower(s)] = true
		out = append(out, s)
		if len(out) == MaxSuggestions {
			break
		}
	}
	if len(out) == 0 {
		return nil, errNoSuggestions
	}
	return out, nil
}

// describeEstimate returns about what describing an image with the named
// provider costs, 0 when it cannot tell.
func (e *Engine) describeEstimate(provider string) float64 {
	gen, _, err := e.provider(provider)
	if err != nil {
		return 0
	}
	if de, ok := gen.(DescribeEstimator); ok {
		return max(de.EstimateDescribe(), 0)
	}
	return 0
}
