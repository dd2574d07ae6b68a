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
	"github.com/easel-bot/easel/core/preview"
	"github.com/easel-bot/easel/storage"
)

// fillsUp is the terminal: once it shows the first image, the disk is full.
type fillsUp struct {
	mu  sync.Mutex
	b   bytes.Buffer
	fs  *coretest.FailingStore
	hit bool
}

func (w *fillsUp) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.HasPrefix(p, []byte("✅")) && !w.hit {
		w.hit = true
		w.fs.SetFailing(true)
	}
	return w.b.Write(p)
}

func (w *fillsUp) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A scripted `easel chat` on a disk that fills up after the first image:
// every line is answered, the image is printed once, the session is given
// up on with one message, and the engine then stops at once, where it used
// to repost the image forever and never let chat exit.
func TestScriptedChatOnAFullDiskEnds(t *testing.T) {
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := &fillsUp{fs: coretest.NewFailingStore(db)}
	engine, err := core.NewEngine(core.EngineConfig{DefaultProvider: "preview", StoreRetry: 200 * time.Millisecond,
		Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}}, out.fs, out.fs.Images(coretest.ImageDir(t, "")), map[string]core.Generator{"preview": preview.New(preview.Config{})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	con := console.New(engine, out, console.Options{User: core.User{ID: "me", Admin: true}, Wait: true})
	done := make(chan error, 1)
	go func() {
		done <- con.Run(context.Background(), strings.NewReader("a red fox\nmake it blue\nmake it green\n"))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("chat still waiting 20s after its input ended; output:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := engine.Close(ctx); err != nil {
		t.Fatalf("the engine did not stop: %v; output:\n%s", err, out)
	}
	got := out.String()
	for what, want := range map[string]int{"✅": 1, "can't save its work": 1, "can't save new requests": 2} {
		if n := strings.Count(got, what); n != want {
			t.Errorf("%q printed %d times, want %d; output:\n%s", what, n, want, got)
		}
	}
}
