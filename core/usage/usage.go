// Package usage builds the usage report: the images, turns and estimated
// spend per user (today and in a month) and per workspace (in a month),
// from the counters that done turns leave, beside the configured quotas.
// `easel usage` prints it and the web gallery shows it, from this one
// source.
package usage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
)

// Counters reads the usage counters; the session stores implement it.
type Counters interface {
	// Usage returns the usage counters whose keys start with prefix.
	Usage(ctx context.Context, prefix string) ([]core.UsageRow, error)
}

// Filter is what to show; its zero value shows everything.
type Filter struct {
	Platform  string // only this platform: slack, discord or console
	User      string // only this user id
	Workspace string // only this workspace or server id ("-" for none)
}

// ShowUsers reports whether f asks for the users: unless only a workspace
// was given.
func (f Filter) ShowUsers() bool { return f.User != "" || f.Workspace == "" }

// ShowWorkspaces reports whether f asks for the workspaces: unless only a
// user was given.
func (f Filter) ShowWorkspaces() bool { return f.Workspace != "" || f.User == "" }

// Report is the usage of one month; its JSON form is `easel usage -json`.
type Report struct {
	Month      string      `json:"month"`           // YYYY-MM, UTC
	Today      string      `json:"today,omitempty"` // YYYY-MM-DD, UTC; only for the current month
	Limits     Limits      `json:"limits"`
	Users      []User      `json:"users"`
	Workspaces []Workspace `json:"workspaces"`
}

// Limits are the configured quotas; zero means unlimited.
type Limits struct {
	ImagesPerUserDay          int     `json:"images_per_user_day"`
	SpendPerWorkspaceMonthUSD float64 `json:"spend_per_workspace_month_usd"`
	AdminsExempt              bool    `json:"admins_exempt"`
}

// Count is what done turns consumed: failed and refused ones count
// nothing. CostUSD is estimated from the price table.
type Count struct {
	Turns   int64   `json:"turns"`
	Images  int64   `json:"images"`
	CostUSD float64 `json:"cost_usd"`
}

func (c *Count) add(row core.UsageRow) {
	c.Turns += row.Turns
	c.Images += row.Images
	c.CostUSD += row.CostUSD
}

// User is one user's usage.
type User struct {
	Platform string `json:"platform"`
	User     string `json:"user"`
	Admin    bool   `json:"admin,omitempty"` // listed in engine.admins
	Today    *Count `json:"today,omitempty"` // nil for a past month
	Month    Count  `json:"month"`
}

// Workspace is one Slack workspace's or Discord server's usage.
type Workspace struct {
	Platform  string `json:"platform"`
	Workspace string `json:"workspace"` // "-" for none: the console, Discord DMs
	Month     Count  `json:"month"`
}

// Build gathers the counters of the month starting at from, as f asks;
// admins are the user ids of engine.admins, and now says which day is
// today.
func Build(ctx context.Context, db Counters, limits Limits, admins []string, f Filter, from, now time.Time) (*Report, error) {
	monthKey := from.Format("2006-01")
	r := &Report{Month: monthKey, Limits: limits, Users: []User{}, Workspaces: []Workspace{}}
	if now.Format("2006-01") == monthKey {
		r.Today = now.Format(time.DateOnly)
	}
	prefix := func(kind string) string {
		if f.Platform == "" {
			return kind + "/"
		}
		return kind + "/" + f.Platform + "/"
	}
	if f.ShowUsers() {
		rows, err := db.Usage(ctx, prefix("user"))
		if err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		users := map[[2]string]*User{}
		for _, row := range rows {
			plat, id, date, ok := splitKey(row.Key, "user/")
			if !ok || !strings.HasPrefix(date, monthKey+"-") || (f.User != "" && id != f.User) {
				continue
			}
			u := users[[2]string{plat, id}]
			if u == nil {
				u = &User{Platform: plat, User: id, Admin: slices.Contains(admins, id)}
				if r.Today != "" {
					u.Today = &Count{}
				}
				users[[2]string{plat, id}] = u
			}
			u.Month.add(row)
			if date == r.Today {
				u.Today.add(row)
			}
		}
		for _, u := range users {
			r.Users = append(r.Users, *u)
		}
		slices.SortFunc(r.Users, func(a, b User) int {
			return cmp.Or(cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.User, b.User))
		})
	}
	if f.ShowWorkspaces() {
		rows, err := db.Usage(ctx, prefix("workspace"))
		if err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		for _, row := range rows {
			plat, id, month, ok := splitKey(row.Key, "workspace/")
			if !ok || month != monthKey || (f.Workspace != "" && id != f.Workspace) {
				continue
			}
			w := Workspace{Platform: plat, Workspace: id}
			w.Month.add(row)
			r.Workspaces = append(r.Workspaces, w)
		}
	}
	return r, nil
}

// splitKey splits a usage counter key, kind/<platform>/<id>/<date>, into
// its parts.
func splitKey(key, kind string) (platform, id, date string, ok bool) {
	rest, ok := strings.CutPrefix(key, kind)
	if !ok {
		return "", "", "", false
	}
	platform, rest, ok1 := strings.Cut(rest, "/")
	i := strings.LastIndexByte(rest, '/')
	if !ok1 || i < 0 {
		return "", "", "", false
	}
	return platform, rest[:i], rest[i+1:], true
}

// MonthTitle returns r's month for people, such as "March 2026".
func (r *Report) MonthTitle() string {
	m, _ := time.Parse("2006-01", r.Month)
	return m.Format("January 2006")
}

// TodayImages returns u's images today, against the daily limit if there
// is one ("2 of 50"), or "-" for a past month.
func (r *Report) TodayImages(u User) string {
	if u.Today == nil {
		return "-"
	}
	if l := r.Limits.ImagesPerUserDay; l > 0 {
		return fmt.Sprintf("%d of %d", u.Today.Images, l)
	}
	return fmt.Sprint(u.Today.Images)
}

// UserName returns u as platform/id, marked if an admin (and exempt).
func (r *Report) UserName(u User) string {
	name := u.Platform + "/" + u.User
	if u.Admin {
		name += " (admin"
		if r.Limits.AdminsExempt {
			name += ", exempt"
		}
		name += ")"
	}
	return name
}

// Budget returns w's share of the monthly spend limit, such as
// "$100.00 (4% used)", or "-" without one.
func (r *Report) Budget(w Workspace) string {
	l := r.Limits.SpendPerWorkspaceMonthUSD
	if l <= 0 {
		return "-"
	}
	return fmt.Sprintf("$%.2f (%.0f%% used)", l, 100*w.Month.CostUSD/l)
}

// String describes the limits on one line.
func (l Limits) String() string {
	var parts []string
	if l.ImagesPerUserDay > 0 {
		parts = append(parts, fmt.Sprintf("%d images per user per day", l.ImagesPerUserDay))
	}
	if l.SpendPerWorkspaceMonthUSD > 0 {
		parts = append(parts, fmt.Sprintf("$%.2f per workspace per month", l.SpendPerWorkspaceMonthUSD))
	}
	if len(parts) == 0 {
		return "none ([quota] in the config file sets them)"
	}
	if l.AdminsExempt {
		parts = append(parts, "admins exempt")
	} else {
		parts = append(parts, "admins included")
	}
	return strings.Join(parts, "; ")
}
