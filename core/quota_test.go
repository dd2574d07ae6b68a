package core

import (
	"strings"
	"testing"
	"time"
)

// SetEngineClock replaces e's clock, before e handles anything, so that
// tests in package core_test can move days and months along.
func SetEngineClock(e *Engine, now func() time.Time) { e.now = now }

func TestQuotaMessages(t *testing.T) {
	now := time.Date(2026, 3, 4, 18, 49, 30, 0, time.UTC)
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{userQuotaError(3, 3, 1, now), "you have used your 3 images for today (the limit per person per day); it resets at midnight UTC, in 5h 11m"},
		{userQuotaError(6, 5, 4, now), "this request makes 4 images, but only 1 of your 6 images for today is left: ask for fewer images (--n 1), or wait: it resets at midnight UTC, in 5h 11m"},
		{userQuotaError(1, 1, 1, now.Add(5*time.Hour+10*time.Minute+15*time.Second)), "in 1m"},
		{spendQuotaError("workspace", 10, 10.2, 0.19, now), "this workspace has used its image budget of $10.00 for March 2026; it resets on 1 April at 00:00 UTC, in 27 days 5h"},
		{spendQuotaError("server", 10, 9.9, 0.19, now), "this request would cost about $0.19, but this server has only $0.10 left of its image budget of $10.00 for March 2026"},
	} {
		if tc.err.Kind != Quota || !strings.Contains(tc.err.Message, tc.want) {
			t.Errorf("got %s %q\nwant a quota error containing %q", tc.err.Kind, tc.err.Message, tc.want)
		}
	}
	if got := untilText(30 * time.Second); got != "in 1m" {
		t.Errorf("untilText(30s) = %q, want rounding up to a minute", got)
	}
	if got := UserDayKey("chat", "", time.Date(2026, 3, 4, 23, 0, 0, 0, time.FixedZone("X", -5*3600))); got != "user/chat/-/2026-03-05" {
		t.Errorf("UserDayKey uses the UTC day and writes - for no id: %q", got)
	}
	if got := WorkspaceMonthKey("chat", "G1", time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)); got != "workspace/chat/G1/2026-03" {
		t.Errorf("WorkspaceMonthKey = %q", got)
	}
}
