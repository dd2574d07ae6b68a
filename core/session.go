// Package core is Easel's domain: refinement sessions, their turns and
// versions, the requests sent to image providers, and the Engine that runs
// turns in order. It depends on no platform SDK and no database; those live in
// packages named after them and meet core through the small interfaces
// declared here.
package core

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// Session is one refinement conversation, bound to one chat thread. Its
// versions form a tree: each version's Parent is the version it was made from
// (0 for a fresh generation). Head is the version the next reply refines.
type Session struct {
	ID        string    `json:"id"`
	Platform  string    `json:"platform"`            // the adapter's name for its platform
	Workspace string    `json:"workspace,omitempty"` // the platform's team or server
	Channel   string    `json:"channel,omitempty"`
	Thread    string    `json:"thread"` // platform thread key, unique per platform
	CreatedBy User      `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Head      int       `json:"head"`     // version number; 0 before the first image
	Versions  []Version `json:"versions"` // Versions[i].N == i+1
	Turns     []Turn    `json:"turns"`    // Turns[i].ID == i+1
	// Regions are the regions users chose from a result's "Edit region"
	// menu, by user id: that user's next prompt in the thread edits only
	// that region of that version, and the choice is used up.
	Regions map[string]RegionChoice `json:"regions,omitempty"`
}

// RegionChoice is a region chosen for a user's next prompt in a thread.
type RegionChoice struct {
	Version int       `json:"version"` // the version the menu was under
	Region  string    `json:"region"`  // as ParseRegion spells it
	At      time.Time `json:"at"`
	// Delivery is the inbox key of the delivery that chose it; recording
	// the choice marks that delivery handled (see EffectsOf).
	Delivery string `json:"delivery,omitempty"`
}

// User identifies the person behind a message.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Admin bool   `json:"-"`
}

// Version is one image in a session's tree.
type Version struct {
	N      int      `json:"n"`
	Parent int      `json:"parent"` // 0 for a root
	Turn   int      `json:"turn"`   // the turn that produced it
	Image  ImageRef `json:"image"`
	// ResponseID names the provider's stored conversation state that made
	// the image (see ImageDetail), which a turn refining it continues.
	ResponseID string `json:"response_id,omitempty"`
	// RevisedPrompt is the prompt the image model was given, as the
	// provider's conversation model rewrote it; empty if unknown.
	RevisedPrompt string `json:"revised_prompt,omitempty"`
	// Original is the image as the provider made it, when Image is that
	// image composited onto the version it edits (a strict region edit);
	// nil otherwise. Its provenance manifest, if any, is the provider's.
	Original *ImageRef `json:"original,omitempty"`
	// Deleted records who deleted the version, and when; nil while it is
	// not. A deleted version keeps its place in the tree and its record,
	// but can no longer be refined, regenerated or shown (see
	// Engine.Delete).
	Deleted *Deletion `json:"deleted,omitempty"`
}

// Deletion is the deletion of a version.
type Deletion struct {
	By User      `json:"by"`
	At time.Time `json:"at"`
}

// ImageRef names image bytes kept in content-addressed storage.
type ImageRef struct {
	SHA256 string `json:"sha256"` // hex
	MIME   string `json:"mime"`
	Size   int64  `json:"size"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	Name   string `json:"name,omitempty"` // original attachment name, for display only
}

// TurnKind is what a turn asked for.
type TurnKind string

// Turn kinds; README.md ("Talking to Easel") says what each does.
const (
	KindGenerate    TurnKind = "generate"
	KindRefine      TurnKind = "refine"
	KindBranch      TurnKind = "branch" // a refinement of a version other than head
	KindRegenerate  TurnKind = "regenerate"
	KindVariations  TurnKind = "variations"
	KindHighQuality TurnKind = "high_quality"
	KindUndo        TurnKind = "undo"
	// KindPick is a pick of one candidate of a grid: it makes no version,
	// moves head to the candidate (Base) and posts it as a result.
	KindPick TurnKind = "pick"
	// KindAnswer is a turn the provider answered in words instead of an
	// image (a question about the picture, a clarifying question): it makes
	// no version, and the next turn continues the conversation from it.
	KindAnswer TurnKind = "answer"
	// KindDescribe is a describe of an attached image (see
	// Engine.Describe): it makes no version and records the prompts
	// suggested for the image in Suggestions.
	KindDescribe TurnKind = "describe"
)

// TurnStatus is where a turn's job stands.
type TurnStatus string

// Turn statuses. A turn is recorded as queued before any provider call and
// ends done, failed or canceled.
const (
	StatusQueued   TurnStatus = "queued"
	StatusRunning  TurnStatus = "running"
	StatusDone     TurnStatus = "done"
	StatusFailed   TurnStatus = "failed"
	StatusCanceled TurnStatus = "canceled"
)

// Active reports whether a turn in this status still has work to do.
func (s TurnStatus) Active() bool { return s == StatusQueued || s == StatusRunning }

// Turn is one request in a session and everything recorded about it.
type Turn struct {
	ID       int        `json:"id"`
	Kind     TurnKind   `json:"kind"`
	Action   Action     `json:"action"`
	User     User       `json:"user"`
	Text     string     `json:"text"`   // the message as typed
	Prompt   string     `json:"prompt"` // Text without its flags
	Flags    Flags      `json:"flags"`
	Inputs   []ImageRef `json:"inputs,omitempty"` // attachments
	Target   int        `json:"target,omitempty"` // version asked for (0: head at run time)
	Base     int        `json:"base,omitempty"`   // version the turn started from
	Provider string     `json:"provider,omitempty"`
	Model    string     `json:"model,omitempty"`
	Outputs  []int      `json:"outputs,omitempty"` // version numbers produced
	Usage    Usage      `json:"usage"`
	CostUSD  float64    `json:"cost_usd"`
	Attempts int        `json:"attempts,omitempty"`
	Status   TurnStatus `json:"status"`
	Error    string     `json:"error,omitempty"`     // the message shown to the user
	ErrorRef string     `json:"error_ref,omitempty"` // log reference of an internal error
	Source   string     `json:"source,omitempty"`    // platform message id, for replies and dedupe
	// Delivery is the inbox key of the delivery that asked for the turn;
	// the store marks it handled in the commit that records the turn.
	Delivery string `json:"delivery,omitempty"`
	// Starts counts the times a process began running the turn; more than
	// one means a stop or crash interrupted it.
	Starts int `json:"starts,omitempty"`
	// Posting is set when the turn has ended but its result (images, an
	// answer in words, the failure message or the undo note) is not yet all
	// posted in the thread; Posted lists the versions already posted, and 0
	// once the answer beside them is. A turn left posting by a crash is
	// posted by the next start, once.
	Posting bool  `json:"posting,omitempty"`
	Posted  []int `json:"posted,omitempty"`
	// Grid is set on a turn that made two to four images: they are posted
	// as one grid of candidates, named in Posted by the first, to pick from.
	Grid bool `json:"grid,omitempty"`

	// Cancel records who asked to cancel the turn, and when; nil if
	// nobody did. A queued turn is canceled at once; a running one ends
	// canceled when its worker notices the request (see Engine.Cancel).
	Cancel *CancelRequest `json:"cancel,omitempty"`
	// Applied records the style and channel defaults the turn took; nil
	// for none.
	Applied *Applied `json:"applied,omitempty"`
	// Suggestions are the prompts a KindDescribe turn suggested.
	Suggestions []string `json:"suggestions,omitempty"`

	// Answer is what the provider answered in words: all of a KindAnswer
	// turn's result, or a note beside the images of another.
	Answer string `json:"answer,omitempty"`
	// ResponseID names the provider's stored conversation state after a
	// KindAnswer turn (see Result.ResponseID).
	ResponseID string `json:"response_id,omitempty"`

	QueuedAt   time.Time `json:"queued_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// CancelRequest is a request to cancel a turn.
type CancelRequest struct {
	By User      `json:"by"`
	At time.Time `json:"at"`
}

// Usage is what a provider reports having consumed for a turn: the image
// model's tokens and, for a provider where a conversation model calls the
// image model, that model's tokens apart (they have their own prices).
type Usage struct {
	InputTextTokens  int64 `json:"input_text_tokens,omitempty"`
	InputImageTokens int64 `json:"input_image_tokens,omitempty"`
	OutputTokens     int64 `json:"output_tokens,omitempty"`
	// ConversationInputTokens and ConversationOutputTokens are the
	// conversation model's: the thread it read (text and images) and what
	// it wrote.
	ConversationInputTokens  int64 `json:"conversation_input_tokens,omitempty"`
	ConversationOutputTokens int64 `json:"conversation_output_tokens,omitempty"`
}

// Add returns u plus v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTextTokens:          u.InputTextTokens + v.InputTextTokens,
		InputImageTokens:         u.InputImageTokens + v.InputImageTokens,
		OutputTokens:             u.OutputTokens + v.OutputTokens,
		ConversationInputTokens:  u.ConversationInputTokens + v.ConversationInputTokens,
		ConversationOutputTokens: u.ConversationOutputTokens + v.ConversationOutputTokens,
	}
}

// NewSessionID returns a fresh, random, URL- and filename-safe session id.
func NewSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Version returns version n, or nil if there is none.
func (s *Session) Version(n int) *Version {
	if n < 1 || n > len(s.Versions) {
		return nil
	}
	return &s.Versions[n-1]
}

// Turn returns turn id, or nil if there is none.
func (s *Session) Turn(id int) *Turn {
	if id < 1 || id > len(s.Turns) {
		return nil
	}
	return &s.Turns[id-1]
}

// Lineage returns the versions from the root down to version n, inclusive.
func (s *Session) Lineage(n int) []*Version {
	var line []*Version
	for v := s.Version(n); v != nil; v = s.Version(v.Parent) {
		line = append(line, v)
		if len(line) > len(s.Versions) { // a cycle would be corruption; stop rather than spin
			break
		}
	}
	for i, j := 0, len(line)-1; i < j; i, j = i+1, j-1 {
		line[i], line[j] = line[j], line[i]
	}
	return line
}

// Children returns the version numbers whose parent is n, in order.
func (s *Session) Children(n int) []int {
	var kids []int
	for _, v := range s.Versions {
		if v.Parent == n {
			kids = append(kids, v.N)
		}
	}
	return kids
}

// addVersion appends a version made by turn t from parent and returns its number.
func (s *Session) addVersion(parent, turn int, img ImageRef) int {
	n := len(s.Versions) + 1
	s.Versions = append(s.Versions, Version{N: n, Parent: parent, Turn: turn, Image: img})
	return n
}

// Pending reports whether the turn still has work to do: it is queued or
// running, or its result is not yet posted.
func (t *Turn) Pending() bool { return t.Status.Active() || t.Posting }

// PostingTurns returns the ids of turns that ended but are not yet posted.
func (s *Session) PostingTurns() []int {
	var ids []int
	for _, t := range s.Turns {
		if t.Posting && !t.Status.Active() {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// ActiveTurns returns the ids of turns that are queued or running.
func (s *Session) ActiveTurns() []int {
	var ids []int
	for _, t := range s.Turns {
		if t.Status.Active() {
			ids = append(ids, t.ID)
		}
	}
	return ids
}
