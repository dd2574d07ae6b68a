package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/console"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

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
	out := &syncBuffer{}
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

// /delete vN deletes a version: the thread says so, a reply refines its
// parent, and deleting it again, or refining it, says why not.
func TestChatDelete(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	engine, err := core.NewEngine(core.EngineConfig{DefaultProvider: "fake", Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}},
		db, coretest.ImageDir(t, dir), map[string]core.Generator{"fake": &coretest.Generator{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(context.Background())
	out := &syncBuffer{}
	con := console.New(engine, out, console.Options{User: core.User{ID: "me"}, Wait: true})
	input := "a red fox\nmake it blue\n/delete v2\n/delete v2\n@v2 add a hat\n/delete\nmake it green\n"
	if err := con.Run(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"🗑️ v2 deleted by me; replies now refine v1", "v2 was deleted already",
		"v2 was deleted; it can no longer be refined", "/delete: name one version", "✅ v3"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	sess, err := engine.Session(context.Background(), console.Platform, con.Thread())
	if err != nil || sess.Version(3) == nil || sess.Version(3).Parent != 1 {
		t.Errorf("after the delete a reply made %+v, %v", sess.Versions, err)
	}
}
