package slack

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
)

// TestRejectLogIsBounded drives a rejectLog through two runs of refusals
// with a hand-worked clock: the first refusal of a run is logged, then one
// line per interval counts the rest.
func TestRejectLogIsBounded(t *testing.T) {
	var out bytes.Buffer
	r := newRejectLog(slog.New(slog.NewTextHandler(&out, nil)))
	var ticks []func()
	r.after = func(d time.Duration, f func()) {
		if d != rejectLogEvery {
			t.Errorf("scheduled after %s, want %s", d, rejectLogEvery)
		}
		ticks = append(ticks, f)
	}
	next := func() {
		t.Helper()
		if len(ticks) != 1 {
			t.Fatalf("%d ticks scheduled, want 1", len(ticks))
		}
		f := ticks[0]
		ticks = nil
		f()
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(out.String()), "\n") }

	for range 1000 {
		r.refused("/slack/events", errors.New("missing headers"))
	}
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "err=\"missing headers\"") || !strings.Contains(l[0], "path=/slack/events") {
		t.Fatalf("after 1000 refusals the log says %q, want the first one only", l)
	}
	next()
	if l := lines(); len(l) != 2 || !strings.Contains(l[1], "count=999") {
		t.Fatalf("after an interval the log says %q, want a count of 999", l)
	}
	r.refused("/slack/commands", errors.New("invalid signature"))
	next()
	if l := lines(); len(l) != 3 || !strings.Contains(l[2], "count=1") {
		t.Fatalf("after the second interval the log says %q, want a count of 1", l)
	}
	next() // an interval without refusals ends the run, quietly
	if len(ticks) != 0 || len(lines()) != 3 {
		t.Fatalf("a quiet interval logged %q and scheduled %d ticks", lines()[3:], len(ticks))
	}
	r.refused("/slack/interactivity", errors.New("expired timestamp"))
	if l := lines(); len(l) != 4 || !strings.Contains(l[3], "expired timestamp") || len(ticks) != 1 {
		t.Fatalf("a new run logged %q", l[3:])
	}
}

// TestUnsignedFloodLogsOneLine sends 500 unsigned requests through the
// http-mode handler: one line is logged.
func TestUnsignedFloodLogsOneLine(t *testing.T) {
	var out syncBuffer
	b, err := New(Config{BotToken: "xoxb-test", SigningSecret: "test-secret", Mode: "http"}, struct{ Engine }{}, struct{ inbox.Store }{},
		slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		rec := httptest.NewRecorder()
		b.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/slack/events", strings.NewReader("{}")))
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("answered %d", rec.Code)
		}
	}
	if n := strings.Count(out.String(), "bad signature"); n != 1 {
		t.Errorf("500 unsigned requests logged %d lines, want 1:\n%s", n, out.String())
	}
}
