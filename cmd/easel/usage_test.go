package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/usage"
	"github.com/easel-bot/easel/storage"
)

// record stores, in db, a session of platform/workspace with one done turn
// per entry of images, by user, each costing cost per image, finished at at.
func record(t *testing.T, db *storage.DB, id, platform, workspace, user string, at time.Time, cost float64, images ...int) {
	t.Helper()
	ctx := context.Background()
	s := &core.Session{ID: id, Platform: platform, Workspace: workspace, Thread: id, CreatedBy: core.User{ID: user}, CreatedAt: at}
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, n := range images {
		_, err := db.UpdateSession(ctx, id, func(s *core.Session) error {
			t := core.Turn{ID: len(s.Turns) + 1, Action: core.ActionPrompt, Kind: core.KindGenerate, User: core.User{ID: user},
				Prompt: "a fox", Status: core.StatusDone, QueuedAt: at, FinishedAt: at, CostUSD: cost * float64(n)}
			for range n {
				s.Versions = append(s.Versions, core.Version{N: len(s.Versions) + 1, Turn: t.ID})
				t.Outputs = append(t.Outputs, len(s.Versions))
			}
			s.Turns = append(s.Turns, t)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A failed turn, which counts nothing.
	_, err := db.UpdateSession(ctx, id, func(s *core.Session) error {
		s.Turns = append(s.Turns, core.Turn{ID: len(s.Turns) + 1, Action: core.ActionPrompt, User: core.User{ID: user},
			Status: core.StatusFailed, QueuedAt: at, FinishedAt: at, Error: "provider down"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUsageCommand runs `easel usage` against a data dir that another
// process holds open, as `easel run` would.
func TestUsageCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", t.TempDir())
	now := time.Now().UTC()
	lastMonth := time.Date(now.Year(), now.Month(), 1, 12, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	db, err := storage.Open(context.Background(), dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()                                                    // held during every command below
	record(t, db, "s1", "slack", "T1", "U1", now, 0.04, 1, 2)           // U1: 3 images today, $0.12
	record(t, db, "s2", "discord", "G1", "U2", now, 0.25, 2)            // U2 (an admin): 2 images, $0.50
	record(t, db, "s3", "slack", "T1", "U3", lastMonth, 1, 4)           // last month only
	record(t, db, "s4", "slack", "T1", "U1", now.AddDate(0, 0, -40), 9) // long ago: not this month either
	cfgFile := filepath.Join(t.TempDir(), "easel.toml")
	cfgText := "[engine]\nadmins = [\"U2\"]\n\n[quota]\nimages_per_user_day = 3\nspend_per_workspace_month_usd = 10.0\nadmins_exempt = true\n"
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	out, errOut, code := easel(t, "", nil, "usage", "-config", cfgFile, "-data", dir)
	if code != 0 {
		t.Fatalf("easel usage exited %d while the data dir was held: %s", code, errOut)
	}
	t.Logf("easel usage on a held data dir: %v\n%s", time.Since(began), out)
	for _, want := range []string{
		"Usage in " + now.Format("January 2006") + " (UTC); today is " + now.Format(time.DateOnly),
		"Limits: 3 images per user per day; $10.00 per workspace per month; admins exempt",
		"discord/U2 (admin, exempt)  2 of 3",
		"slack/U1                    3 of 3        3       2      $0.120",
		"slack/T1    3       2      $0.120     $10.00 (1% used)",
		"discord/G1  2       1      $0.500     $10.00 (5% used)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "U3") {
		t.Errorf("last month's user shows in this month's report:\n%s", out)
	}
	if entries, _ := os.ReadDir(os.Getenv("TMPDIR")); len(entries) != 0 {
		t.Errorf("snapshot files left behind: %v", entries)
	}

	// JSON, filtered to one user.
	out, errOut, code = easel(t, "", nil, "usage", "-config", cfgFile, "-data", dir, "-user", "U1", "-json")
	if code != 0 {
		t.Fatalf("easel usage -json exited %d: %s", code, errOut)
	}
	var r usage.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(r.Users) != 1 || len(r.Workspaces) != 0 || r.Limits.ImagesPerUserDay != 3 || r.Today != now.Format(time.DateOnly) {
		t.Fatalf("-user U1 -json: %+v", r)
	}
	if u := r.Users[0]; u.User != "U1" || u.Platform != "slack" || u.Today == nil || u.Today.Images != 3 || u.Month.Images != 3 || u.Month.Turns != 2 {
		t.Errorf("U1: %+v today %+v", u, u.Today)
	}

	// One workspace of one platform.
	out, _, code = easel(t, "", nil, "usage", "-config", cfgFile, "-data", dir, "-platform", "discord", "-workspace", "G1")
	if code != 0 || !strings.Contains(out, "discord/G1") || strings.Contains(out, "slack/") || strings.Contains(out, "USER") {
		t.Errorf("-platform discord -workspace G1 (exit %d):\n%s", code, out)
	}

	// Last month: no "today", U3's four images, $4.00 of the budget.
	out, _, code = easel(t, "", nil, "usage", "-config", cfgFile, "-data", dir, "-month", lastMonth.Format("2006-01"))
	if code != 0 || !strings.Contains(out, "slack/U3  -             4       1      $4.000") || strings.Contains(out, "today is") ||
		!strings.Contains(out, "$10.00 (40% used)") || strings.Contains(out, "U2") {
		t.Errorf("-month %s (exit %d):\n%s", lastMonth.Format("2006-01"), code, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-month", "2026-13"}, 2, "write the month as YYYY-MM"},
		{[]string{"-month", "March"}, 2, "write the month as YYYY-MM"},
		{[]string{"-user", "a/b"}, 2, "without /"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-data", filepath.Join(t.TempDir(), "nothing")}, 1, "nothing does not exist"},
		{[]string{"-data", t.TempDir()}, 1, "nothing has been recorded there yet"},
	} {
		_, errOut, code := easel(t, "", nil, append([]string{"usage"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("easel usage %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
	if _, errOut, code := easel(t, "", nil, "usage", "-help"); code != 0 || !strings.Contains(errOut, "-month YYYY-MM") {
		t.Errorf("easel usage -help: exit %d\n%s", code, errOut)
	}
}

// TestUsageAfterChat: images made with `easel chat` show up in `easel
// usage`, also while a chat holds the data dir.
func TestUsageAfterChat(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := easel(t, "a red fox\nmake it blue --n 2\n", nil, "chat", "--data", dir); code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut)
	}
	ready, release := make(chan struct{}), make(chan struct{})
	done := make(chan int)
	go func() {
		var out bytes.Buffer
		done <- run(context.Background(), []string{"chat", "--data", dir}, &env{stdin: &blockingReader{ready: ready, release: release}, stdout: &out, stderr: &out, getenv: func(string) string { return "" }})
	}()
	<-ready
	out, errOut, code := easel(t, "", nil, "usage", "-data", dir, "-platform", "console", "-json")
	close(release)
	if c := <-done; c != 0 {
		t.Errorf("the holding chat exited %d", c)
	}
	if code != 0 {
		t.Fatalf("easel usage beside a running chat exited %d: %s", code, errOut)
	}
	var r usage.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(r.Users) != 1 || r.Users[0].Month.Images != 3 || r.Users[0].Month.Turns != 2 || r.Users[0].Today.Images != 3 {
		t.Errorf("console usage after two prompts making 1 and 2 images: %s", out)
	}
	if len(r.Workspaces) != 1 || r.Workspaces[0].Workspace != "-" || r.Workspaces[0].Month.Images != 3 {
		t.Errorf("console workspace: %s", out)
	}
}
