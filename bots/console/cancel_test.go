package console_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/console"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// terminal is a terminal safe to read while the engine prints to it.
type terminal struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *terminal) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *terminal) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// /cancel stops the request in progress: the status line says how, the
// thread says it was canceled, no image is printed; a second /cancel has
// nothing left to cancel.
func TestChatCancel(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gen := &coretest.Generator{}
	gate := make(chan struct{})
	defer close(gate)
	gen.SetGate(gate)
	engine, err := core.NewEngine(core.EngineConfig{DefaultProvider: "fake", Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}},
		db, coretest.ImageDir(t, dir), map[string]core.Generator{"fake": gen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(context.Background())
	out := &terminal{}
	con := console.New(engine, out, console.Options{User: core.User{ID: "me"}})
	if err := con.Run(context.Background(), strings.NewReader("a red fox\n/cancel\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "🛑 canceled by me") {
		if time.Now().After(deadline) {
			t.Fatalf("no cancel note; output:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := con.Run(context.Background(), strings.NewReader("/cancel\n")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, "✅") || strings.Count(got, "🛑") != 1 || !strings.Contains(got, "nothing to cancel") {
		t.Errorf("output:\n%s", got)
	}
}
