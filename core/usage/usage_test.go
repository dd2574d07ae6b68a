package usage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

// rows is a Counters of fixed rows.
type rows []core.UsageRow

func (r rows) Usage(_ context.Context, prefix string) ([]core.UsageRow, error) {
	var out []core.UsageRow
	for _, row := range r {
		if strings.HasPrefix(row.Key, prefix) {
			out = append(out, row)
		}
	}
	return out, nil
}

func TestBuild(t *testing.T) {
	db := rows{
		{Key: "user/slack/U1/2026-03-04", UsageTotals: core.UsageTotals{Turns: 1, Images: 2, CostUSD: 0.5}},
		{Key: "user/slack/U1/2026-03-01", UsageTotals: core.UsageTotals{Turns: 1, Images: 1, CostUSD: 0.25}},
		{Key: "user/slack/U1/2026-02-28", UsageTotals: core.UsageTotals{Turns: 9, Images: 9}},
		{Key: "user/discord/U/with/slash/2026-03-02", UsageTotals: core.UsageTotals{Turns: 1, Images: 1}},
		{Key: "user/malformed", UsageTotals: core.UsageTotals{Turns: 1}},
		{Key: "workspace/slack/T1/2026-03", UsageTotals: core.UsageTotals{Turns: 2, Images: 3, CostUSD: 0.75}},
		{Key: "workspace/slack/T1/2026-02", UsageTotals: core.UsageTotals{Turns: 9}},
	}
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	limits := Limits{ImagesPerUserDay: 10, SpendPerWorkspaceMonthUSD: 100, AdminsExempt: true}
	r, err := Build(context.Background(), db, limits, []string{"U1"}, Filter{}, march, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Month != "2026-03" || r.Today != "2026-03-04" || len(r.Users) != 2 || len(r.Workspaces) != 1 {
		t.Fatalf("report %+v", r)
	}
	u := r.Users[1] // slack sorts after discord
	if u.User != "U1" || !u.Admin || u.Month.Images != 3 || u.Today.Images != 2 || r.TodayImages(u) != "2 of 10" || r.UserName(u) != "slack/U1 (admin, exempt)" {
		t.Errorf("U1: %+v, today %q, name %q", u, r.TodayImages(u), r.UserName(u))
	}
	if d := r.Users[0]; d.User != "U/with/slash" || d.Platform != "discord" {
		t.Errorf("a user id with slashes: %+v", d)
	}
	if w := r.Workspaces[0]; w.Month.CostUSD != 0.75 || r.Budget(w) != "$100.00 (1% used)" {
		t.Errorf("workspace %+v, budget %q", w, r.Budget(w))
	}
	if got := limits.String(); got != "10 images per user per day; $100.00 per workspace per month; admins exempt" {
		t.Errorf("limits %q", got)
	}

	feb, err := Build(context.Background(), db, Limits{}, nil, Filter{Workspace: "T1"}, march.AddDate(0, -1, 0), now)
	if err != nil {
		t.Fatal(err)
	}
	if feb.Today != "" || len(feb.Users) != 0 || len(feb.Workspaces) != 1 || feb.Workspaces[0].Month.Turns != 9 || feb.MonthTitle() != "February 2026" {
		t.Errorf("February, one workspace: %+v", feb)
	}
	if feb.Budget(feb.Workspaces[0]) != "-" || (Limits{}).String() != "none ([quota] in the config file sets them)" {
		t.Error("no limits should show as none")
	}
}
