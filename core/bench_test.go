package core_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

func BenchmarkParsePrompt(b *testing.B) {
	lim := core.Limits{MaxN: 4, MaxPromptChars: 32000}
	text := `a poster for our offsite, bold title text "Q3 KICKOFF", teal and orange --ar 16:9 --quality high --n 2 --no "watermarks, logos"`
	for b.Loop() {
		if _, _, err := core.ParsePrompt(text, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// instantGen returns the same small image at once, so a benchmark measures
// Easel's own work per turn: recording, ordering, storing and posting.
type instantGen struct{ img []byte }

func (g instantGen) Generate(_ context.Context, req core.GenerateRequest) (core.Result, error) {
	return core.Result{Images: []core.Image{{Data: g.img, MIME: "image/png"}}, Model: "instant", Attempts: 1}, nil
}

// BenchmarkEngineTurn is the engine's overhead for one refinement turn, from
// Handle to the posted image, with a provider that answers at once and the
// real bbolt store (fsync included).
func BenchmarkEngineTurn(b *testing.B) {
	db, err := storage.Open(context.Background(), b.TempDir(), storage.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	e, err := core.NewEngine(core.EngineConfig{DefaultProvider: "instant", Limits: core.Limits{MaxN: 4, MaxPromptChars: 32000}},
		db, coretest.ImageDir(b, ""), map[string]core.Generator{"instant": instantGen{testPNG(1)}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	th := coretest.NewThread()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.Handle(context.Background(), th, msg(fmt.Sprint(i%50), fmt.Sprintf("change %d", i))); err != nil {
			b.Fatal(err)
		}
		th.WaitTurns(b, i)
	}
}
