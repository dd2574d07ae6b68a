package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/usage"
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

	cfg, _, db, err := openReport(ctx, e, *configPath, *data)
	if err != nil {
		return err
	}
	defer db.Close()

	f := usage.Filter{Platform: *platform, User: *user, Workspace: *workspace}
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

// buildUsage returns the usage report of the month starting at from, with
// cfg's quotas and admins.
func buildUsage(ctx context.Context, db usage.Counters, cfg config.Config, f usage.Filter, from, now time.Time) (*usage.Report, error) {
	return usage.Build(ctx, db, usageLimits(cfg), cfg.Engine.Admins, f, from, now)
}

// writeUsage prints r as tables.
func writeUsage(w io.Writer, r *usage.Report, f usage.Filter) error {
	fmt.Fprintf(w, "Usage in %s (UTC)", r.MonthTitle())
	if r.Today != "" {
		fmt.Fprintf(w, "; today is %s", r.Today)
	}
	fmt.Fprintf(w, ". Only finished images count; costs are estimates from the price table.\n")
	fmt.Fprintf(w, "Limits: %v\n", r.Limits)

	if f.ShowUsers() {
		fmt.Fprintln(w)
		if len(r.Users) == 0 {
			fmt.Fprintln(w, "No user made an image in this month.")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tIMAGES TODAY\tIMAGES\tTURNS\tEST. COST")
			for _, u := range r.Users {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.UserName(u), r.TodayImages(u), u.Month.Images, u.Month.Turns, core.FormatCost(u.Month.CostUSD))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if f.ShowWorkspaces() {
		fmt.Fprintln(w)
		if len(r.Workspaces) == 0 {
			fmt.Fprintln(w, "No workspace made an image in this month.")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKSPACE\tIMAGES\tTURNS\tEST. COST\tBUDGET")
		for _, ws := range r.Workspaces {
			fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%s\t%s\n", ws.Platform, ws.Workspace, ws.Month.Images, ws.Month.Turns, core.FormatCost(ws.Month.CostUSD), r.Budget(ws))
		}
		return tw.Flush()
	}
	return nil
}
