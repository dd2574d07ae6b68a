package gallery

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

// BenchmarkSessionPage serves the page of a session of 50 versions: a
// long line of refinements with a branch every fifth version, each with a
// prompt of about 200 characters, a rewritten prompt, flags and, every
// tenth, a question answered in words. It reports the page's size as
// html-bytes, and what goes over the wire as wire-bytes: the same without
// compression (plain), or gzipped for a browser that takes it (gzip).
func BenchmarkSessionPage(b *testing.B) {
	f := newFixture(b)
	x := bigSession(50)
	f.store.sessions[x.ID] = x
	target := strings.TrimPrefix(f.sessionLink(b, x.ID), f.srv.URL)
	for _, enc := range []string{"plain", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			var last *httptest.ResponseRecorder
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, target, nil)
				if enc == "gzip" {
					r.Header.Set("Accept-Encoding", "gzip, deflate, br")
				}
				last = httptest.NewRecorder()
				f.h.ServeHTTP(last, r)
				if last.Code != http.StatusOK {
					b.Fatalf("status %d", last.Code)
				}
			}
			wire, html := last.Body.Len(), last.Body.Len()
			if last.Header().Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(last.Body)
				if err != nil {
					b.Fatal(err)
				}
				page, err := io.ReadAll(zr)
				if err != nil {
					b.Fatal(err)
				}
				html = len(page)
			}
			b.ReportMetric(float64(html), "html-bytes")
			b.ReportMetric(float64(wire), "wire-bytes")
		})
	}
}

// bigSession returns a session of n versions, and a question answered
// about every tenth.
func bigSession(n int) *core.Session {
	at := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	user := core.User{ID: "U024BE7LH", Name: "Dana Scully"}
	x := &core.Session{ID: "benchsession50", Platform: "slack", Workspace: "T0G9PQBBK", Channel: "C0ARTROOM", Thread: "C0ARTROOM/1.1",
		CreatedBy: user, CreatedAt: at, UpdatedAt: at.Add(time.Duration(n) * time.Minute), Head: n}
	prompt := "a lighthouse on a basalt cliff at dusk, storm clouds rolling in from the west, warm light in the lantern room, " +
		"gulls over the surf, painted in the style of a 19th-century marine oil painting, step %d"
	for i := 1; i <= n; i++ {
		parent, kind := i-1, core.KindRefine
		switch {
		case i == 1:
			kind = core.KindGenerate
		case i%5 == 0:
			parent, kind = i-3, core.KindBranch
		}
		hash := fmt.Sprintf("%064x", i)
		t := core.Turn{ID: len(x.Turns) + 1, Kind: kind, User: user, Text: fmt.Sprintf(prompt, i) + " --quality high", Prompt: fmt.Sprintf(prompt, i),
			Flags: core.Flags{Quality: "high", Size: "1536x1024"}, Base: parent, Provider: "openai-responses", Model: "gpt-image-2",
			Outputs: []int{i}, CostUSD: 0.167, Status: core.StatusDone, Usage: core.Usage{InputTextTokens: 120, OutputTokens: 6240},
			QueuedAt: at.Add(time.Duration(i) * time.Minute), StartedAt: at.Add(time.Duration(i) * time.Minute), FinishedAt: at.Add(time.Duration(i)*time.Minute + 41*time.Second)}
		x.Turns = append(x.Turns, t)
		x.Versions = append(x.Versions, core.Version{N: i, Parent: parent, Turn: t.ID,
			Image:         core.ImageRef{SHA256: hash, MIME: "image/png", Size: 2_400_000, Width: 1536, Height: 1024},
			RevisedPrompt: "A dramatic marine oil painting of a lighthouse on a dark basalt cliff at dusk, " + fmt.Sprint(i)})
		if i%10 == 0 {
			x.Turns = append(x.Turns, core.Turn{ID: len(x.Turns) + 1, Kind: core.KindAnswer, User: user, Prompt: "which way is the wind blowing?",
				Answer: "From the west: the clouds and the surf both move east.", Base: i, Provider: "openai-responses", Model: "gpt-5.5",
				CostUSD: 0.002, Status: core.StatusDone, QueuedAt: at.Add(time.Duration(i) * time.Minute)})
		}
	}
	return x
}
