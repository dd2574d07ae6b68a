package console_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/console"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/preview"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
)

// chat runs lines through a console on a real engine over the store in
// dir, in thread, and returns what it printed and the engine, closed.
func chat(t *testing.T, dir, thread, lines string) (string, *storage.DB, *imagedir.Dir) {
	t.Helper()
	db, err := storage.Open(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	images := coretest.ImageDir(t, dir)
	engine, err := core.NewEngine(core.EngineConfig{DefaultProvider: "preview", Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}},
		db, images, map[string]core.Generator{"preview": preview.New(preview.Config{})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	con := console.New(engine, &out, console.Options{User: core.User{ID: "me"}, Thread: thread, Wait: true})
	if err := con.Run(context.Background(), strings.NewReader(lines)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := engine.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return out.String(), db, images
}

func TestChatPicksFromAGrid(t *testing.T) {
	dir := t.TempDir()
	got, db, images := chat(t, dir, "grid", "a red fox --n 4\n/pick 3\nmake it blue\n/pick 9\n/pick\n")
	if n := strings.Count(got, "🔢 👀 preview — pick one: 1 = v1, 2 = v2, 3 = v3, 4 = v4"); n != 1 {
		t.Errorf("%d grids printed for 4 candidates, want 1; output:\n%s", n, got)
	}
	if !strings.Contains(got, "/pick 1 to /pick 4 keeps one") || strings.Contains(got, "✅ v1") || strings.Contains(got, "✅ v4") {
		t.Errorf("the candidates were printed one by one, or the grid says nothing of /pick; output:\n%s", got)
	}
	gridPath := regexp.MustCompile(`(?m)^🔢 .*\n   (\S+)\n`).FindStringSubmatch(got)
	if gridPath == nil {
		t.Fatalf("no grid path printed; output:\n%s", got)
	}
	if _, err := os.Stat(gridPath[1]); err != nil {
		t.Errorf("the grid's path: %v", err)
	}
	for _, want := range []string{"✅ v3 · ", "✅ v5 (refine of v3)", "the latest grid has 4 candidates; pick 1 to 4", "/pick: say which candidate"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	sess, err := db.SessionByThread(context.Background(), console.Platform, "grid")
	if err != nil {
		t.Fatal(err)
	}
	if sess.Version(5).Parent != 3 || len(sess.Versions) != 5 {
		t.Errorf("the reply after /pick 3 did not refine v3: versions %+v", sess.Versions)
	}
	v3 := regexp.MustCompile(`(?m)^✅ v3\b.*\n   (\S+)\n`).FindStringSubmatch(got)
	if v3 == nil {
		t.Fatalf("no path printed for v3; output:\n%s", got)
	}
	printed, err := os.ReadFile(v3[1])
	stored, err2 := images.Get(context.Background(), sess.Version(3).Image)
	if err != nil || err2 != nil || !bytes.Equal(printed, stored.Data) {
		t.Errorf("the file printed for v3 is not its stored bytes (%v, %v)", err, err2)
	}
	db.Close()

	// Another run of the same thread, as after a restart, picks from the
	// grid of the first.
	got, db, _ = chat(t, dir, "grid", "/pick 2\n")
	if !strings.Contains(got, "✅ v2") || strings.Contains(got, "🔢") {
		t.Errorf("picking after a restart printed:\n%s", got)
	}
	if sess, err := db.SessionByThread(context.Background(), console.Platform, "grid"); err != nil || sess.Head != 2 {
		t.Errorf("head after picking v2 in a second run: %v", err)
	}
}

func TestChatPickWithoutAGrid(t *testing.T) {
	got, _, _ := chat(t, t.TempDir(), "nogrid", "/pick 1\na red fox\n/pick 1\n")
	if n := strings.Count(got, "there is no grid of candidates"); n != 2 {
		t.Errorf("/pick without a grid answered %d times, want 2; output:\n%s", n, got)
	}
}
