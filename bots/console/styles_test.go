package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/console"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/imagecheck"
	"github.com/easel-bot/easel/storage"
)

// styleChat runs a scripted console as user over a real store and engine
// that keeps styles, with a config style "house", and returns the output
// and the generator's requests.
func styleChat(t *testing.T, db *storage.DB, user core.User, script string) (string, []core.GenerateRequest) {
	t.Helper()
	gen := &coretest.Generator{}
	engine, err := core.NewEngine(core.EngineConfig{DefaultProvider: "fake", Limits: core.Limits{MaxN: 4, MaxPromptChars: 1000},
		StyleStore: db, Styles: []core.Style{{Name: "house", Prompt: "in the house style"}}},
		db, coretest.ImageDir(t, ""), map[string]core.Generator{"fake": gen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(context.Background())
	var out syncBuffer
	con := console.New(engine, &out, console.Options{User: user, Wait: true, Attachments: imagecheck.Limits{MaxBytes: 64 << 10}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := con.Run(ctx, strings.NewReader(script)); err != nil {
		t.Fatal(err)
	}
	return out.String(), gen.Requests()
}

func TestConsoleStyles(t *testing.T) {
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	me := core.User{ID: "me", Name: "me", Admin: true}
	logo := writeImage(t, t.TempDir(), 64, 64)
	out, reqs := styleChat(t, db, me, strings.Join([]string{
		"/style",
		"/style set Brand flat vector art \x1b[31m --quality high --ref " + logo,
		"/style set house mine now",
		"/style set brand",
		"/style set bad! x",
		"a fox --style brand",
		"a dog --style nope",
		"/defaults --style house --quality low",
		"/defaults",
		"/new",
		"a cat",
		"/style",
		"/defaults clear",
		"/style delete brand",
		"/style delete brand",
		"/style frobnicate",
	}, "\n")+"\n")
	for _, want := range []string{
		"🎨 house: in the house style (from the config)",
		"🎨 style brand added: flat vector art \\x1b[31m --quality high (1 reference image)",
		"/style set: the name house is taken by a style in Easel's config",
		"/style set: the style brand is empty",
		`/style set: "bad!" is not a style name`,
		`there is no style named "nope"; the styles here are brand, house`,
		"defaults here: --style house --quality low",
		"🎨 brand: flat vector art \\x1b[31m --quality high (1 reference image) (set by me)",
		"defaults cleared",
		"🎨 style brand deleted",
		"/style delete: there is no style named \"brand\"; the styles here are house",
		`/style: unknown "frobnicate"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "the prompt is empty") {
		t.Errorf("a /style or /defaults command was also sent as a prompt:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Error("an escape sequence in a style reached the terminal")
	}
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (the fox and the cat):\n%s", len(reqs), out)
	}
	if r := reqs[0]; r.Prompt != "a fox, flat vector art \x1b[31m" || r.Flags.Quality != "high" || len(r.Inputs) != 1 {
		t.Errorf("the fox was asked %q with %+v and %d inputs", r.Prompt, r.Flags, len(r.Inputs))
	}
	if r := reqs[1]; r.Prompt != "a cat, in the house style" || r.Flags.Quality != "low" {
		t.Errorf("the cat was asked %q with %+v", r.Prompt, r.Flags)
	}

	// Someone who is not an admin may list and use styles, not change them.
	out, _ = styleChat(t, db, core.User{ID: "guest"}, "/style set x y\n/defaults --quality high\n/style delete house\n/style\n")
	for _, want := range []string{"/style set: only an Easel admin can change styles", "/defaults: only an Easel admin can change channel defaults",
		"/style delete: only an Easel admin can change styles", "🎨 house"} {
		if !strings.Contains(out, want) {
			t.Errorf("as a guest, output lacks %q:\n%s", want, out)
		}
	}
}
