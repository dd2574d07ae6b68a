package core

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Quotas bound what users and workspaces may spend. Zero means unlimited.
type Quotas struct {
	// ImagesPerUserDay bounds the images one user may make per UTC day.
	ImagesPerUserDay int
	// SpendPerWorkspaceMonthUSD bounds the estimated spend of one
	// workspace (see Message.Workspace) per UTC month.
	SpendPerWorkspaceMonthUSD float64
	// AdminsExempt exempts admins from both bounds.
	AdminsExempt bool
}

// enabled reports whether any bound is set.
func (q Quotas) enabled() bool { return q.ImagesPerUserDay > 0 || q.SpendPerWorkspaceMonthUSD > 0 }

// UsageTotals is what the turns counted under one usage key consumed.
type UsageTotals struct {
	Turns   int64
	Images  int64
	CostUSD float64
}

// UsageReader reads the durable usage counters, which the SessionStore updates in
// the same transaction as a turn becomes done (and only then, once per
// turn). The Engine needs its SessionStore to implement UsageReader when Quotas are
// set; *storage.DB does.
type UsageReader interface {
	// UsageTotals returns the counter stored under key (see UserDayKey and
	// WorkspaceMonthKey), or zero totals when nothing was counted there. It
	// returns an error only when the store cannot be read.
	UsageTotals(ctx context.Context, key string) (UsageTotals, error)
}

// UsageRow is one usage counter: the totals counted under Key.
type UsageRow struct {
	Key string
	UsageTotals
}

// CostEstimator is implemented by Generators that can tell, before calling
// their provider, about what a request will cost. A Generator without it
// (the preview renderer) is taken to cost nothing.
type CostEstimator interface {
	// EstimateCost returns the estimated cost of req in US dollars, 0 when
	// it is unknown. It is called before the request's images are loaded:
	// req.Base and req.Inputs stand for the input images but may carry no
	// bytes. It must be cheap and must not call the provider.
	EstimateCost(req GenerateRequest) float64
}

// UserDayKey returns the key of the usage counter of one user's images on
// platform during the UTC day of t: user/<platform>/<user id>/<YYYY-MM-DD>.
// An empty id is written "-".
func UserDayKey(platform, user string, t time.Time) string {
	return "user/" + platform + "/" + orDash(user) + "/" + t.UTC().Format(time.DateOnly)
}

// WorkspaceMonthKey returns the key of the usage counter of one workspace
// (see Message.Workspace) during the UTC month of t:
// workspace/<platform>/<workspace id>/<YYYY-MM>. An empty id (the console, a
// DM) is written "-".
func WorkspaceMonthKey(platform, workspace string, t time.Time) string {
	return "workspace/" + platform + "/" + orDash(workspace) + "/" + t.UTC().Format("2006-01")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// claim returns what turn t of sess will consume if it ends done: its images
// and their estimated cost. Undo and a pick consume nothing.
func (e *Engine) claim(sess *Session, t Turn) (images int64, cost float64) {
	if t.Action == ActionUndo || t.Action == ActionPick {
		return 0, 0
	}
	if t.Action == ActionDescribe {
		return 0, e.describeEstimate(t.Provider)
	}
	j := &job{sess: sess, turn: t}
	if err := e.plan(j); err != nil {
		// The turn will fail, or its target is a version that earlier
		// queued turns will make: estimate from the turn alone.
		n := max(t.Flags.N, 1)
		switch t.Action {
		case ActionVariations:
			n = either(t.Flags.N, e.cfg.Variations)
		case ActionRegenerate, ActionHighQuality:
			n = 1
		}
		gen, _, err := e.provider(t.Flags.Provider)
		if err != nil {
			return int64(n), 0
		}
		kind := KindGenerate
		if t.Action == ActionHighQuality {
			kind = KindHighQuality
		}
		j.gen = gen
		j.req = GenerateRequest{Kind: kind, Prompt: t.Prompt, Flags: t.Flags, Model: t.Flags.Model, N: n}
	}
	if v := sess.Version(j.base); v != nil {
		j.req.Base = &Image{MIME: v.Image.MIME, Name: v.Image.Name}
	}
	for _, ref := range t.Inputs {
		j.req.Inputs = append(j.req.Inputs, Image{MIME: ref.MIME, Name: ref.Name})
	}
	if ce, ok := j.gen.(CostEstimator); ok {
		cost = max(ce.EstimateCost(j.req), 0)
	}
	return int64(max(j.req.N, 1)), cost
}

// reserveQuota checks turn t, about to be recorded in sess for msg, against
// the quotas and, if hold is set, holds what it will consume, as one atomic
// step (see QuotaHolds). It returns nil (and holds nothing) when no quota is
// set or hold is false, and a Quota *Error saying the limit and when it
// resets when t does not fit.
func (e *Engine) reserveQuota(ctx context.Context, ref JobRef, sess *Session, t Turn, msg Message, hold bool) (*QuotaHold, error) {
	q := e.cfg.Quotas
	if !q.enabled() {
		return nil, nil
	}
	usage, ok := e.store.(UsageReader)
	if !ok {
		return nil, fmt.Errorf("engine: quotas are set but the store cannot report usage")
	}
	platform, workspace := msg.Platform, msg.Workspace
	if sess.ID != "" {
		platform, workspace = sess.Platform, sess.Workspace
	}
	for _, in := range msg.Inputs { // stored after the check; the estimate needs only their number
		t.Inputs = append(t.Inputs, ImageRef{MIME: in.MIME, Name: in.Name})
	}
	h := QuotaHold{User: platform + "\x00" + t.User.ID, Workspace: platform + "\x00" + workspace}
	h.Images, h.CostUSD = e.claim(sess, t)
	exempt := q.AdminsExempt && msg.User.Admin
	var refused string // the quota check last refused t for
	check := func(heldImages int64, heldSpend float64) error {
		refused = ""
		if exempt || (h.Images == 0 && h.CostUSD == 0) {
			return nil
		}
		now := e.now().UTC()
		if limit := int64(q.ImagesPerUserDay); limit > 0 && h.Images > 0 {
			used, err := usage.UsageTotals(ctx, UserDayKey(platform, t.User.ID, now))
			if err != nil {
				return fmt.Errorf("engine: read usage: %w", err)
			}
			if taken := used.Images + heldImages; taken+h.Images > limit {
				refused = RefusedUserImagesDay
				return userQuotaError(limit, taken, h.Images, now)
			}
		}
		if limit := q.SpendPerWorkspaceMonthUSD; limit > 0 {
			used, err := usage.UsageTotals(ctx, WorkspaceMonthKey(platform, workspace, now))
			if err != nil {
				return fmt.Errorf("engine: read usage: %w", err)
			}
			// Compare in millionths of a dollar so that sums of float
			// prices that should meet the budget exactly do.
			taken := used.CostUSD + heldSpend
			if micro(taken) >= micro(limit) || micro(taken+h.CostUSD) > micro(limit) {
				refused = RefusedWorkspaceSpend
				return spendQuotaError(msg.workspaceTerm(), limit, taken, h.CostUSD, now)
			}
		}
		return nil
	}
	if !hold {
		images, spend, err := e.limits.Holds.Held(ctx, h.User, h.Workspace)
		if err != nil {
			return nil, fmt.Errorf("engine: read quota holds: %w", err)
		}
		return nil, e.quotaRefused(check(images, spend), refused)
	}
	if err := e.limits.Holds.Hold(ctx, ref, h, check); err != nil {
		return nil, e.quotaRefused(err, refused)
	}
	return &h, nil
}

// quotaRefused counts err as a refusal by the quota named reason, if it is
// one (see Metrics.QuotaRefused), and returns it.
func (e *Engine) quotaRefused(err error, reason string) error {
	if KindOf(err) == Quota && reason != "" {
		e.metrics.QuotaRefused(reason)
	}
	return err
}

func micro(usd float64) int64 { return int64(math.Round(usd * 1e6)) }

// resumeQuota holds again what turn ref (id of sess), admitted earlier,
// will consume, and returns the hold (nil without quotas). It is admitted
// already, so it is not checked.
func (e *Engine) resumeQuota(ctx context.Context, ref JobRef, sess *Session, id int) (*QuotaHold, error) {
	if !e.cfg.Quotas.enabled() {
		return nil, nil
	}
	t := sess.Turn(id)
	h := QuotaHold{User: sess.Platform + "\x00" + t.User.ID, Workspace: sess.Platform + "\x00" + sess.Workspace}
	h.Images, h.CostUSD = e.claim(sess, *t)
	if err := e.limits.Holds.Add(ctx, ref, h); err != nil {
		return nil, err
	}
	return &h, nil
}

// userQuotaError says that a request for images does not fit in a user's
// daily quota, of which taken are made or being made.
func userQuotaError(limit, taken, images int64, now time.Time) *Error {
	reset := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	when := fmt.Sprintf("it resets at midnight UTC, %s", untilText(reset.Sub(now)))
	if left := limit - taken; left > 0 {
		return Errorf(Quota, "this request makes %s, but only %d of your %s for today %s left: ask for fewer images (--n %d), or wait: %s",
			plural(images, "image"), left, plural(limit, "image"), isAre(left), left, when)
	}
	return Errorf(Quota, "you have used your %s for today (the limit per person per day); %s", plural(limit, "image"), when)
}

// spendQuotaError says that a request does not fit in a workspace's
// monthly budget, of which taken is spent or being spent; term is what the
// platform calls a workspace.
func spendQuotaError(term string, limit, taken, cost float64, now time.Time) *Error {
	y, m, _ := now.Date()
	reset := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	place := "this " + term
	when := fmt.Sprintf("it resets on %s at 00:00 UTC, %s", reset.Format("2 January"), untilText(reset.Sub(now)))
	if micro(taken) >= micro(limit) {
		return Errorf(Quota, "%s has used its image budget of %s for %s; %s",
			place, formatUSD(limit), now.Format("January 2006"), when)
	}
	return Errorf(Quota, "this request would cost about %s, but %s has only %s left of its image budget of %s for %s: ask for fewer images or a lower --quality, or wait: %s",
		formatUSD(cost), place, formatUSD(limit-taken), formatUSD(limit), now.Format("January 2006"), when)
}

// untilText says how long d is from now, to the minute, rounding up.
func untilText(d time.Duration) string {
	mins := int64(math.Ceil(d.Minutes()))
	switch days, hours := mins/(24*60), mins/60%24; {
	case mins < 1:
		return "in less than a minute"
	case mins < 60:
		return fmt.Sprintf("in %dm", mins)
	case days == 0:
		return fmt.Sprintf("in %dh %02dm", hours, mins%60)
	default:
		return fmt.Sprintf("in %s %dh", plural(days, "day"), hours)
	}
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func isAre(n int64) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func formatUSD(usd float64) string { return fmt.Sprintf("$%.2f", usd) }
