package core

import "time"

// Metrics observes the engine's work, for monitoring. The engine calls it
// on its own paths, so its methods must return at once and be safe for
// concurrent use. What they are given is of few values (kinds, statuses,
// provider names, reasons), never a user, session or prompt.
type Metrics interface {
	// TurnEnded is called once per turn that ends: its kind ("" for one that failed before its kind was known), its status
	// (StatusDone, StatusFailed or StatusCanceled), its provider ("" for an undo or a turn
	// that failed before it had one) and how long it ran.
	TurnEnded(kind TurnKind, status TurnStatus, provider string, d time.Duration)
	// ProviderCalled is called when a provider's Generate returns: how
	// long it took, retries included, and whether it returned an error.
	ProviderCalled(provider string, failed bool, d time.Duration)
	// FirstPartial is called when a provider streams a turn's first
	// partial image, with how long after the call started.
	FirstPartial(provider string, d time.Duration)
	// AccessRefused is called when a message is refused by the access
	// rules (see Access.Check), with the rule: one of the Refused* reasons.
	AccessRefused(reason string)
	// QuotaRefused is called when a message is refused by a quota (see
	// Quotas), with the quota: one of the Refused* reasons.
	QuotaRefused(reason string)
}

// Reasons of AccessRefused and QuotaRefused.
const (
	RefusedDM             = "dm"
	RefusedWorkspace      = "workspace"
	RefusedChannel        = "channel"
	RefusedRole           = "role"
	RefusedUser           = "user"
	RefusedUserImagesDay  = "user_images_per_day"
	RefusedWorkspaceSpend = "workspace_spend_per_month"
)

// Load is how much work an engine holds at one moment.
type Load struct {
	// Queued are the turns this process admitted or took up that have not
	// started running: behind others in their session, or waiting for a
	// provider slot.
	Queued int
	// Running are the turns this process runs now.
	Running int
}

// Load returns how much work e holds now.
func (e *Engine) Load() Load {
	running := int(e.running.Load())
	e.mu.Lock()
	held := len(e.held)
	e.mu.Unlock()
	return Load{Queued: max(held-running, 0), Running: running}
}

// noMetrics is the Metrics of an engine configured without any.
type noMetrics struct{}

func (noMetrics) TurnEnded(TurnKind, TurnStatus, string, time.Duration) {}
func (noMetrics) ProviderCalled(string, bool, time.Duration)            {}
func (noMetrics) FirstPartial(string, time.Duration)                    {}
func (noMetrics) AccessRefused(string)                                  {}
func (noMetrics) QuotaRefused(string)                                   {}
