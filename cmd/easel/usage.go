package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
)

// cmdUsage prints what users and workspaces have used, from the usage
// counters that done turns leave, beside the configured quotas. It opens the
// data dir read-only, so it works while `easel run` holds it.
func cmdUsage(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "usage", "usage [flags]")
	configPath := fs.String("config", "", "TOML config `file`, for the data dir and the [quota] limits (default: the embedded defaults)")
	data := fs.String("data", "", "data `dir` (default: storage.dir, ./easel-data)")
	user := fs.String("user", "", "show only this user `id`")
	workspace := fs.String("workspace", "", "show only this Slack workspace or Discord server `id` (- for none: the console, DMs)")
	platform := fs.String("platform", "", "show only this `platform`: slack, discord or console")
	month := fs.String("month", "", "the `YYYY-MM` month to show, in UTC (default: the current month)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if strings.Contains(*platform, "/") || strings.Contains(*user, "/") || strings.Contains(*workspace, "/") {
		return usageError{"-platform, -user and -workspace are single ids, without /"}
	}
	now := time.Now().UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if *month != "" {
		m, err := time.Parse("2006-01", *month)
		if err != nil {
			return usageError{fmt.Sprintf("-month %q: write the month as YYYY-MM, such as %s", *month, now.Format("2006-01"))}
		}
		from = m
	}

	cfg, err := config.Load(*configPath, e.getenv)
	if err != nil {
		return err
	}
	applyOverrides(&cfg, *data, "")
	log := newLogger(e.stderr, cfg.Log, slog.LevelWarn)
	db, err := openReadOnly(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	f := usageFilter{platform: *platform, user: *user, workspace: *workspace}
	r, err := buildUsage(ctx, db, cfg, f, from, now)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return writeUsage(e.stdout, r, f)
}

// usageFilter is what the command line asked to see.
type usageFilter struct{ platform, user, workspace string }

// showUsers and showWorkspaces say which sections to print: both unless
// only one kind of id was asked for.
func (f usageFilter) showUsers() bool      { return f.user != "" || f.workspace == "" }
func (f usageFilter) showWorkspaces() bool { return f.workspace != "" || f.user == "" }

// usageReport is what `easel usage` prints; its JSON form is the -json
// output.
type usageReport struct {
	Month      string           `json:"month"`           // YYYY-MM, UTC
	Today      string           `json:"today,omitempty"` // YYYY-MM-DD, UTC; only for the current month
	Limits     usageLimits      `json:"limits"`
	Users      []userUsage      `json:"users"`
	Workspaces []workspaceUsage `json:"workspaces"`
}

// usageLimits are the configured quotas; zero means unlimited.
type usageLimits struct {
	ImagesPerUserDay          int     `json:"images_per_user_day"`
	SpendPerWorkspaceMonthUSD float64 `json:"spend_per_workspace_month_usd"`
	AdminsExempt              bool    `json:"admins_exempt"`
}

// usageCount is what done turns consumed: failed and refused ones count
// nothing. CostUSD is estimated from the price table.
type usageCount struct {
	Turns   int64   `json:"turns"`
	Images  int64   `json:"images"`
	CostUSD float64 `json:"cost_usd"`
}

func (c *usageCount) add(row core.UsageRow) {
	c.Turns += row.Turns
	c.Images += row.Images
	c.CostUSD += row.CostUSD
}

type userUsage struct {
	Platform string      `json:"platform"`
	User     string      `json:"user"`
	Admin    bool        `json:"admin,omitempty"` // listed in engine.admins
	Today    *usageCount `json:"today,omitempty"`
	Month    usageCount  `json:"month"`
}

type workspaceUsage struct {
	Platform  string     `json:"platform"`
	Workspace string     `json:"workspace"` // "-" for none: the console, Discord DMs
	Month     usageCount `json:"month"`
}

// buildUsage gathers the counters of the month starting at from, as f asks.
func buildUsage(ctx context.Context, db sessionStore, cfg config.Config, f usageFilter, from, now time.Time) (*usageReport, error) {
	monthKey := from.Format("2006-01")
	r := &usageReport{
		Month: monthKey,
		Limits: usageLimits{
			ImagesPerUserDay:          cfg.Quota.ImagesPerUserDay,
			SpendPerWorkspaceMonthUSD: cfg.Quota.SpendPerWorkspaceMonthUSD,
			AdminsExempt:              cfg.Quota.AdminsExempt,
		},
		Users:      []userUsage{},
		Workspaces: []workspaceUsage{},
	}
	if now.Format("2006-01") == monthKey {
		r.Today = now.Format(time.DateOnly)
	}
	prefix := func(kind string) string {
		if f.platform == "" {
			return kind + "/"
		}
		return kind + "/" + f.platform + "/"
	}
	if f.showUsers() {
		rows, err := db.Usage(ctx, prefix("user"))
		if err != nil {
			return nil, err
		}
		users := map[[2]string]*userUsage{}
		for _, row := range rows {
			plat, id, date, ok := splitUsageKey(row.Key, "user/")
			if !ok || !strings.HasPrefix(date, monthKey+"-") || (f.user != "" && id != f.user) {
				continue
			}
			u := users[[2]string{plat, id}]
			if u == nil {
				u = &userUsage{Platform: plat, User: id, Admin: slices.Contains(cfg.Engine.Admins, id)}
				if r.Today != "" {
					u.Today = &usageCount{}
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
		slices.SortFunc(r.Users, func(a, b userUsage) int {
			return cmp.Or(cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.User, b.User))
		})
	}
	if f.showWorkspaces() {
		rows, err := db.Usage(ctx, prefix("workspace"))
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			plat, id, month, ok := splitUsageKey(row.Key, "workspace/")
			if !ok || month != monthKey || (f.workspace != "" && id != f.workspace) {
				continue
			}
			w := workspaceUsage{Platform: plat, Workspace: id}
			w.Month.add(row)
			r.Workspaces = append(r.Workspaces, w)
		}
	}
	return r, nil
}

// splitUsageKey splits a usage counter key, kind/<platform>/<id>/<date>,
// into its parts.
func splitUsageKey(key, kind string) (platform, id, date string, ok bool) {
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

// writeUsage prints r as tables.
func writeUsage(w io.Writer, r *usageReport, f usageFilter) error {
	m, _ := time.Parse("2006-01", r.Month)
	fmt.Fprintf(w, "Usage in %s (UTC)", m.Format("January 2006"))
	if r.Today != "" {
		fmt.Fprintf(w, "; today is %s", r.Today)
	}
	fmt.Fprintf(w, ". Only finished images count; costs are estimates from the price table.\n")
	fmt.Fprintf(w, "Limits: %s\n", describeLimits(r.Limits))

	if f.showUsers() {
		fmt.Fprintln(w)
		if len(r.Users) == 0 {
			fmt.Fprintln(w, "No user made an image in this month.")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tIMAGES TODAY\tIMAGES\tTURNS\tEST. COST")
			for _, u := range r.Users {
				today := "-"
				if u.Today != nil {
					today = fmt.Sprint(u.Today.Images)
					if l := r.Limits.ImagesPerUserDay; l > 0 {
						today = fmt.Sprintf("%d of %d", u.Today.Images, l)
					}
				}
				name := u.Platform + "/" + u.User
				if u.Admin {
					name += " (admin"
					if r.Limits.AdminsExempt {
						name += ", exempt"
					}
					name += ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", name, today, u.Month.Images, u.Month.Turns, core.FormatCost(u.Month.CostUSD))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if f.showWorkspaces() {
		fmt.Fprintln(w)
		if len(r.Workspaces) == 0 {
			fmt.Fprintln(w, "No workspace made an image in this month.")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKSPACE\tIMAGES\tTURNS\tEST. COST\tBUDGET")
		for _, ws := range r.Workspaces {
			budget := "-"
			if l := r.Limits.SpendPerWorkspaceMonthUSD; l > 0 {
				budget = fmt.Sprintf("$%.2f (%.0f%% used)", l, 100*ws.Month.CostUSD/l)
			}
			fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%s\t%s\n", ws.Platform, ws.Workspace, ws.Month.Images, ws.Month.Turns, core.FormatCost(ws.Month.CostUSD), budget)
		}
		return tw.Flush()
	}
	return nil
}

func describeLimits(l usageLimits) string {
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
