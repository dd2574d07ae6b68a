package core

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/easel-bot/easel/core/safetext"
)

// Action is what a chat message or button asks the engine to do.
type Action string

// Actions. A plain message is ActionPrompt: it generates when the session has
// no image yet and refines otherwise.
const (
	ActionPrompt      Action = "prompt"
	ActionRegenerate  Action = "regenerate"
	ActionVariations  Action = "variations"
	ActionHighQuality Action = "high_quality"
	ActionUndo        Action = "undo"
	// ActionRegion is a choice from a result's "Edit region" menu (see
	// Engine.ChooseRegion); it makes no turn itself.
	ActionRegion Action = "region"
	// ActionPick is a press of a pick button under a grid of candidates:
	// the picked version (Message.Version) becomes head and is posted as a
	// result; Message.Grid names the grid.
	ActionPick Action = "pick"
	// ActionCancel is a press of the Cancel button on a turn's status line
	// (see Engine.Cancel); it makes no turn itself.
	ActionCancel Action = "cancel"
	// ActionDelete deletes a result (see Engine.Delete); it makes no turn.
	ActionDelete Action = "delete"
	// ActionDescribe asks for prompt suggestions for an attached image
	// (see Engine.Describe); it makes no version.
	ActionDescribe Action = "describe"
)

// Flags are the inline options at the end of a prompt, such as "--ar 16:9"
// (README.md, "Prompt flags", lists them). The zero value of
// each field means "not given": a refinement inherits it from its base.
type Flags struct {
	Aspect      string `json:"ar,omitempty"`      // "16:9"; resolved into Size
	Size        string `json:"size,omitempty"`    // "1536x1024"
	Quality     string `json:"quality,omitempty"` // low, medium, high, auto
	N           int    `json:"n,omitempty"`
	Model       string `json:"model,omitempty"`
	Provider    string `json:"provider,omitempty"`
	Transparent bool   `json:"transparent,omitempty"`
	Format      string `json:"format,omitempty"` // png, webp, jpeg
	Seed        *int64 `json:"seed,omitempty"`
	Avoid       string `json:"no,omitempty"` // --no "things to avoid"
	// Region is the part of the base image a region edit may change, as
	// ParseRegion spells it ("top-left", "10,20,50,40"); "" for the whole.
	Region string `json:"region,omitempty"`
	// StrictRegion, when set, says whether the result of a region edit is
	// composited onto the base so nothing outside the region changes; nil
	// leaves it to the engine's default.
	StrictRegion *bool `json:"strict_region,omitempty"`
	// Style names a style (see Style) whose words and flags the request
	// takes; it is resolved when the turn is recorded (see Turn.Applied).
	Style string `json:"style,omitempty"`
}

// Inherit returns f with every unset field taken from base, except N,
// Seed, Region, StrictRegion and Style, which belong to a single request.
func (f Flags) Inherit(base Flags) Flags {
	if f.Size == "" {
		f.Size, f.Aspect = base.Size, base.Aspect
	}
	if f.Quality == "" {
		f.Quality = base.Quality
	}
	if f.Model == "" {
		f.Model = base.Model
	}
	if f.Provider == "" {
		f.Provider = base.Provider
	}
	if f.Format == "" {
		f.Format = base.Format
		f.Transparent = f.Transparent || base.Transparent
	}
	if f.Avoid == "" {
		f.Avoid = base.Avoid
	}
	return f
}

// Image is image bytes in memory with their media type.
type Image struct {
	Data []byte
	MIME string // "image/png", "image/jpeg", "image/webp"
	Name string // a display name; never used as a path
}

// Ext returns the file extension, with its dot, for the image's media type.
func (im Image) Ext() string { return ExtForMIME(im.MIME) }

// ExtForMIME returns the file extension, with its dot, for an image media type.
func ExtForMIME(mime string) string {
	switch mime {
	case "image/jpeg":
		return ".jpg"
	case "image/webp":
		return ".webp"
	case "image/gif":
		return ".gif"
	default:
		return ".png"
	}
}

// MIMEForFormat returns the media type of an output format flag value.
func MIMEForFormat(format string) string {
	switch format {
	case "jpeg":
		return "image/jpeg"
	case "webp":
		return "image/webp"
	default:
		return "image/png"
	}
}

// GenerateRequest is everything a provider needs for one turn.
type GenerateRequest struct {
	Kind TurnKind
	// Prompt is this turn's instruction: the whole request for a generation,
	// the change asked for in a refinement.
	Prompt string
	// History holds the prompts that led to Base, oldest first: the original
	// request, then each refinement. Empty for a fresh generation.
	History []string
	Flags   Flags
	Model   string // resolved model name
	N       int    // images wanted, at least 1
	// Base is the image being refined (refine, branch, high quality); nil otherwise.
	Base *Image
	// Inputs are images the user attached.
	Inputs []Image
	// Mask marks the region of Base to edit (transparent pixels); optional.
	Mask *Image
	// Version is the number the first output will get, and Parent the version
	// it descends from (0 for none); providers may draw them.
	Version, Parent int
	// PreviousResponseID names the provider's stored conversation state this
	// request continues: the response that made Base, or a later answer in
	// words about it (for a generation, an answer given before any image);
	// "" when there is none. A provider that keeps no conversation ignores
	// it; one whose stored state is gone resends Conversation instead.
	PreviousResponseID string
	// Conversation is the thread's text that led here, oldest first: the
	// prompts of the turns behind Base and the questions answered in words
	// on the way, with their answers.
	Conversation []Exchange
	// Progress, if not nil, receives partial images while the provider streams.
	Progress func(Partial)
	// Partials, when above zero, is how many partial images of the turn
	// Progress shows, from the first: a provider need not decode the rest.
	Partials int
	// Attempt, if not nil, is called before each call to the provider's
	// API, retries included, with the attempt's number counted from 1. The
	// engine records the attempt durably there; if Attempt returns an error
	// the call is not sent and Generate returns that error.
	Attempt func(n int) error
}

// FullPrompt returns the prompt sent to a model: for a refinement the
// original request and earlier refinements are restated so the picture stays
// consistent, and things to avoid are appended.
func (r GenerateRequest) FullPrompt() string {
	var b strings.Builder
	switch {
	case r.Kind == KindHighQuality:
		b.WriteString("Re-render this exact image at higher quality and resolution. Keep the composition, subjects, colours and any text identical.")
		if len(r.History) > 0 {
			b.WriteString("\nIt depicts: " + strings.Join(r.History, "; then "))
		}
	case len(r.History) > 0:
		b.WriteString("Edit the provided image. It was made from this request: " + r.History[0])
		if len(r.History) > 1 {
			b.WriteString("\nChanges already applied, in order:")
			for _, h := range r.History[1:] {
				b.WriteString("\n- " + h)
			}
		}
		b.WriteString("\nNow apply this change and keep everything else as it is: " + r.Prompt)
	default:
		b.WriteString(r.Prompt)
	}
	if note := r.RegionNote(); note != "" {
		b.WriteString("\n" + note)
	}
	if r.Flags.Avoid != "" {
		b.WriteString("\nAvoid: " + r.Flags.Avoid)
	}
	return b.String()
}

// RegionNote returns, for a region edit, the sentence that tells a model
// where the change goes; "" otherwise.
func (r GenerateRequest) RegionNote() string {
	if r.Mask == nil || r.Flags.Region == "" {
		return ""
	}
	return "Change only " + RegionLabel(r.Flags.Region) + " of the image (the area the mask leaves transparent); keep everything else exactly as it is."
}

// Exchange is one message of a thread and, when the provider answered it in
// words, that answer.
type Exchange struct {
	Prompt string
	Answer string // "" for a prompt that was answered with an image
}

// Partial is an intermediate image streamed by a provider while it renders.
type Partial struct {
	Index int // 0-based, increasing
	Image Image
}

// Result is what a provider returns for a request.
type Result struct {
	// Images are the outputs, exactly as the provider returned them: they are
	// stored and uploaded unchanged so embedded provenance (C2PA) survives.
	Images   []Image
	Model    string // the model that produced them
	Usage    Usage
	CostUSD  float64 // estimated from the provider's price table
	Attempts int     // provider calls made, retries included

	// Details says more about each image, by index; it may be shorter than
	// Images, or nil.
	Details []ImageDetail
	// Text is what the model answered in words, beside the images or
	// instead of them (a question about the picture answered, a clarifying
	// question). A Result with Text and no images is an answer: the engine
	// records a KindAnswer turn, with no version, and posts the text.
	Text string
	// ResponseID names the provider's stored conversation state after an
	// answer in words only, for the next turn to continue from; "" for none.
	ResponseID string
}

// ImageDetail is what a provider says about one image it returned.
type ImageDetail struct {
	// ResponseID names the provider's stored conversation state that made
	// the image, for a turn refining it to continue from; "" for none.
	ResponseID string
	// RevisedPrompt is the prompt the image model was given, after the
	// conversation model rewrote the request; "" if unknown.
	RevisedPrompt string
}

// Generator makes images. It is implemented by one package per provider.
type Generator interface {
	// Generate returns the images for req, or (from a provider that holds a
	// conversation) an answer in words: a Result with Text and no images.
	// Errors are *Error values whose
	// kind says what happened: Refused for moderation, Quota for billing,
	// RateLimited, Unavailable for outages and timeouts, Invalid for a request
	// the provider cannot serve. Generate calls req.Progress, if set, from the
	// calling goroutine.
	Generate(ctx context.Context, req GenerateRequest) (Result, error)
}

// RequestChecker is implemented by Generators that can reject a request
// before it is queued, so invalid flags cost nothing and are reported at once.
type RequestChecker interface {
	// CheckRequest returns an Invalid *Error naming the offending flag or
	// model, or nil.
	CheckRequest(req GenerateRequest) error
}

// Thread is the chat thread a session lives in, as a platform adapter
// presents it to the engine. Methods may be called from several goroutines.
type Thread interface {
	// Reply posts a text message in the thread.
	Reply(ctx context.Context, text string) error
	// PostImage posts a finished image with its caption and buttons.
	PostImage(ctx context.Context, post ImagePost) error
	// SetStatus shows, updates or (with "") removes the thread's status line.
	SetStatus(ctx context.Context, status string) error
}

// CancelOffer is implemented by Threads whose status line can carry
// Cancel buttons for the turns it is about.
type CancelOffer interface {
	// SetTurnStatus shows status as SetStatus does, with one button per
	// entry of buttons, in order, each canceling its turn (see
	// Engine.Cancel).
	SetTurnStatus(ctx context.Context, status string, buttons []CancelButton) error
}

// CancelButton is one Cancel button of a status line.
type CancelButton struct {
	Turn JobRef
	// Label is "Cancel" on a line with one button; with several, each
	// names its request: Cancel “a red fox”, Cancel regenerate.
	Label string
}

// maxCancelButtons bounds the Cancel buttons of one status line: one row
// of buttons on every platform.
const maxCancelButtons = 5

// cancelButtons returns the Cancel buttons of a status line about turn
// current of sess and the turns queued behind it in the session: the
// current one's first, then the others in the order they will run, those
// already asked to cancel left out.
func cancelButtons(sess *Session, current JobRef) []CancelButton {
	buttons := []CancelButton{{Turn: current}}
	for _, id := range sess.ActiveTurns() {
		if t := sess.Turn(id); id == current.TurnID || t.Cancel != nil || t.Status != StatusQueued {
			continue
		}
		if len(buttons) == maxCancelButtons {
			break
		}
		buttons = append(buttons, CancelButton{Turn: JobRef{SessionID: sess.ID, TurnID: id}})
	}
	for i, b := range buttons {
		buttons[i].Label = "Cancel"
		if t := sess.Turn(b.Turn.TurnID); len(buttons) > 1 && t != nil {
			buttons[i].Label = cancelLabel(t)
		}
	}
	return buttons
}

// cancelLabel names turn t on its Cancel button: its prompt, shortened, or
// its action.
func cancelLabel(t *Turn) string {
	if t.Prompt != "" {
		return "Cancel “" + safetext.Chat(Truncate(t.Prompt, 24)) + "”"
	}
	return "Cancel " + strings.ReplaceAll(string(t.Action), "_", " ")
}

// Remover is implemented by Threads that can take a posted result down.
type Remover interface {
	// RemoveImage removes the post of version n of session id (the image
	// and its buttons) from the thread; a post that is gone already is no
	// error.
	RemoveImage(ctx context.Context, id string, n int) error
}

// Previewer is implemented by Threads that can show a partial image while a
// turn renders.
type Previewer interface {
	// Preview shows img as the current partial result of the running turn.
	Preview(ctx context.Context, img Image) error
}

// PreviewLimiter is implemented by Previewers that show only the first
// few partial images of a turn, so that the provider need not decode the
// others.
type PreviewLimiter interface {
	// Previews returns how many partial images of a turn are shown.
	Previews() int
}

// Resender is implemented by Threads that can tell whether a text was
// already posted, so a reply interrupted by a crash is posted once.
type Resender interface {
	// Posted reports whether the bot posted exactly text in the thread
	// since the given time.
	Posted(ctx context.Context, text string, since time.Time) (bool, error)
}

// UploadLimiter is implemented by Threads that take images of at most
// some size: a grid of candidates posted there is made to fit.
type UploadLimiter interface {
	// UploadLimit returns the most bytes an image posted in the thread may have.
	UploadLimit() int64
}

// Finisher is implemented by Threads that mark the triggering message when a
// turn ends (a ✅ or ❌ reaction, say).
type Finisher interface {
	// Finish marks the end of a turn; source is the platform id of the
	// message that asked for it, empty for a button press.
	Finish(ctx context.Context, source string, ok bool) error
}

// ImagePost is one finished image as shown in a thread.
type ImagePost struct {
	SessionID string
	Version   int
	Image     Image
	Path      string // where the bytes are stored locally
	Caption   string
	Buttons   []Button
	// Link opens the session in the web gallery ("Open in gallery"); ""
	// when there is none.
	Link string
	User User // who asked for it
	// Retry is set when an earlier process may have posted this image
	// already (it stopped between posting and recording the post): the
	// Thread must look for it among its messages since Since and post only
	// what is missing.
	Retry bool
	Since time.Time
	// Guard, if set, is called right before each step of the post that
	// shows something in the thread, after the first (a post in several
	// steps, such as an upload and then its buttons): an error stops the
	// post there. It fails when the engine no longer holds the session (it
	// was paused and another process took the session over), so that a
	// post cut in two by a pause is not finished by both.
	Guard func(context.Context) error
	// Candidates, set on a grid, are the versions its cells show, in
	// order: Image is then a preview composed of them all (see Grid),
	// Version the first of them, which names the grid, and Buttons[i]
	// picks Candidates[i] (see PickButtons). Empty on a single result.
	Candidates []int
}

// Button is an action offered under an image. Its value names the session and
// version, so it works after a restart.
type Button struct {
	Action Action
	Label  string
}

// PickButtons are the buttons under a grid of candidates, one per cell,
// labelled with the cell's number: the i-th picks candidates[i].
func PickButtons(candidates []int) []Button {
	buttons := make([]Button, len(candidates))
	for i := range candidates {
		buttons[i] = Button{ActionPick, strconv.Itoa(i + 1)}
	}
	return buttons
}

// Buttons are the actions offered under every result.
var Buttons = []Button{
	{ActionRegenerate, "Regenerate"},
	{ActionVariations, "Variations"},
	{ActionUndo, "Undo"},
	{ActionHighQuality, "High quality"},
}

// beforeSendKey is the context key of the check BeforeSend runs.
type beforeSendKey struct{}

// withBeforeSend returns ctx carrying check, for BeforeSend.
func withBeforeSend(ctx context.Context, check func(context.Context) error) context.Context {
	return context.WithValue(ctx, beforeSendKey{}, check)
}

// BeforeSend runs the check the engine put in the context it gives a
// Generator, if any. A Generator calling an API calls it with each
// request's context right before the request leaves, after it is built:
// the engine checks there that the turn still holds its provider slot
// (the process may have been paused since the attempt began), waiting for
// another if not. An error means the request must not be sent.
func BeforeSend(ctx context.Context) error {
	if check, ok := ctx.Value(beforeSendKey{}).(func(context.Context) error); ok {
		return check(ctx)
	}
	return nil
}
