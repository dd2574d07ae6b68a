package console_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/console"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/imagecheck"
	"github.com/easel-bot/easel/core/openai/openaitest"
	"github.com/easel-bot/easel/core/openai/responses"
	"github.com/easel-bot/easel/core/preview"
	"github.com/easel-bot/easel/storage"
)

// syncBuffer is a terminal written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// describeChat runs a scripted console over a real store and engine with the given
// default provider, and returns its output and the store.
func describeChat(t *testing.T, provider string, gen core.Generator, script string) (string, *storage.DB) {
	t.Helper()
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	engine, err := core.NewEngine(core.EngineConfig{DefaultProvider: provider, Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000}},
		db, coretest.ImageDir(t, ""), map[string]core.Generator{provider: gen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	var out syncBuffer
	con := console.New(engine, &out, console.Options{User: core.User{ID: "me"}, Wait: true,
		Attachments: imagecheck.Limits{MaxBytes: 64 << 10}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := con.Run(ctx, strings.NewReader(script)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "the prompt is empty") {
		t.Errorf("a command was also sent as a prompt:\n%s", out.String())
	}
	return out.String(), db
}

// writeImage writes a w×h PNG in deep red with a teal quarter and returns
// its path.
func writeImage(t *testing.T, dir string, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{140, 20, 30, 255}
			if x >= w*3/4 {
				c = color.RGBA{0, 128, 128, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "photo.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDescribeThenUse: /describe lists the preview describer's four
// suggestions, /use 2 starts a new session with the second, and the
// describe counts as a turn with no image in the usage counters.
func TestDescribeThenUse(t *testing.T) {
	dir := t.TempDir()
	path := writeImage(t, dir, 256, 128)
	out, db := describeChat(t, "preview", preview.New(preview.Config{}), "/describe "+path+"\n/use 2\n")
	second := "an abstract landscape composition in deep red and teal"
	for _, want := range []string{"💡 prompts for photo.png:", "1. a 256×128 image in mostly deep red and teal", "2. " + second,
		"/use 1 to /use 4", "✅ "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "session ") < 2 {
		t.Errorf("/use did not start a new session:\n%s", out)
	}
	sessions, err := db.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var used bool
	for _, s := range sessions {
		if len(s.Turns) == 1 && s.Turns[0].Prompt == second && s.Head == 1 {
			used = true
		}
	}
	if len(sessions) != 2 || !used {
		t.Errorf("%d sessions; want the describe's and one started with %q", len(sessions), second)
	}
	u, err := db.UsageTotals(context.Background(), core.WorkspaceMonthKey(console.Platform, "", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if u.Turns != 2 || u.Images != 1 {
		t.Errorf("usage %+v, want 2 turns (the describe and the prompt) and 1 image", u)
	}
}

// TestDescribeBadInput: a missing file, a file that is no image, one over
// the size limit, and /use without suggestions or out of range each get a
// clear error and record nothing.
func TestDescribeBadInput(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("just some words"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, make([]byte, 65<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{"/describe", "/describe " + filepath.Join(dir, "nope.png"), "/describe " + notes, "/describe " + big,
		"/use 1", "/describe " + writeImage(t, dir, 64, 64), "/use 9", "/use x"}, "\n") + "\n"
	out, db := describeChat(t, "preview", preview.New(preview.Config{}), script)
	for _, want := range []string{
		"❌ /describe: give the path of an image file",
		"❌ /describe: there is no file " + filepath.Join(dir, "nope.png"),
		"❌ /describe: notes.txt is not an image Easel can use",
		"❌ /describe: big.png is 65 KB; attached images can be at most 64 KB",
		"❌ /use: there are no suggestions yet",
		"❌ /use: there is no suggestion 9; there are 4",
		"❌ /use: \"x\" is not a suggestion's number",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	sessions, err := db.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 || len(sessions[0].Turns) != 1 {
		t.Errorf("%d sessions recorded, want only the good describe's", len(sessions))
	}
}

// TestDescribeWithOpenAI: through the OpenAI SDK into the fake, the
// suggestions are the fake's, their cost is counted in the usage, and a
// refusal gets the provider's message and records nothing.
func TestDescribeWithOpenAI(t *testing.T) {
	srv := openaitest.NewServer(t)
	gen, err := responses.New(responses.Config{APIKey: "sk-test", BaseURL: srv.URL(), MaxRetries: 0, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	path := writeImage(t, t.TempDir(), 64, 64)
	srv.Fail(openaitest.Fault{}, openaitest.ModerationBlocked()) // the first request passes, the second is refused
	out, db := describeChat(t, "openai-responses", gen, "/describe "+path+"\n/describe "+path+"\n")
	if !strings.Contains(out, "1. "+openaitest.Suggestions[0]) || !strings.Contains(out, "❌ OpenAI's safety system declined this request") {
		t.Errorf("output:\n%s", out)
	}
	u, err := db.UsageTotals(context.Background(), core.WorkspaceMonthKey(console.Platform, "", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if u.Turns != 1 || u.Images != 0 || u.CostUSD <= 0 {
		t.Errorf("usage %+v, want 1 turn, no image and a cost", u)
	}
}
