package gallery

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/usage"
	"github.com/easel-bot/easel/storage/imagedir"
)

// testKey signs the links of the tests.
var testKey = bytes.Repeat([]byte("k"), MinKeyBytes)

// now is the tests' clock.
var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// fakeStore is a Store of sessions and usage counters in memory.
type fakeStore struct {
	mu       sync.Mutex
	sessions map[string]*core.Session
	usage    []core.UsageRow
	fail     error // returned by every read when set
}

func (f *fakeStore) Sessions(context.Context) ([]*core.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var all []*core.Session
	for _, s := range f.sessions {
		all = append(all, s)
	}
	return all, nil
}

func (f *fakeStore) Session(_ context.Context, id string) (*core.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	s, ok := f.sessions[id]
	if !ok {
		return nil, core.Errorf(core.NotFound, "no session %s", id)
	}
	return s, nil
}

func (f *fakeStore) Usage(_ context.Context, prefix string) ([]core.UsageRow, error) {
	var rows []core.UsageRow
	for _, r := range f.usage {
		if strings.HasPrefix(r.Key, prefix) {
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// solidPNG returns a w×h PNG of one colour.
func solidPNG(w, h int, c color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Colours of the fixture's images, which the browser test looks for.
var (
	red   = color.RGBA{220, 30, 30, 255}
	green = color.RGBA{30, 200, 60, 255}
	blue  = color.RGBA{30, 60, 220, 255}
)

// fixture is a gallery with sessions in a fakeStore and images in a
// directory.
type fixture struct {
	store  *fakeStore
	images *imagedir.Dir
	g      *Gallery
	linker *Linker
	h      http.Handler // the gallery's routes
	srv    *httptest.Server
}

// The fixture's sessions: tree has a branch, an answer, a composited
// region edit, a failed turn and a hostile prompt; other is another user's.
const (
	treeID  = "treesession1"
	otherID = "othersession"
)

// hostilePrompt is a prompt that is HTML, and worse.
const hostilePrompt = `<script>alert(1)</script><img src=x onerror=alert(2)> "quoted" & ` + coretest.Hostile

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{store: &fakeStore{sessions: map[string]*core.Session{}}, images: coretest.ImageDir(t, "")}
	put := func(data []byte) core.ImageRef {
		ref, err := f.images.Put(context.Background(), core.Image{Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	at := func(min int) time.Time { return now.Add(time.Duration(min) * time.Minute) }
	alice := core.User{ID: "U0ALICE", Name: "alice"}
	bob := core.User{ID: "U0BOB", Name: "bob"}
	r, g, b := put(solidPNG(64, 48, red)), put(solidPNG(64, 48, green)), put(solidPNG(48, 64, blue))
	orig := put(coretest.PNG(9))
	tree := &core.Session{
		ID: treeID, Platform: "slack", Workspace: "T0WORK", Channel: "C0ART", Thread: "C0ART/1.2",
		CreatedBy: alice, CreatedAt: at(-60), UpdatedAt: at(-30), Head: 2,
		Versions: []core.Version{
			{N: 1, Turn: 1, Image: r},
			{N: 2, Parent: 1, Turn: 2, Image: g, RevisedPrompt: "a green fox, drawn in watercolour"},
			{N: 3, Parent: 1, Turn: 3, Image: b, Original: &orig},
		},
		Turns: []core.Turn{
			{ID: 1, Kind: core.KindGenerate, User: alice, Text: "a red fox --ar 4:3", Prompt: "a red fox", Flags: core.Flags{Aspect: "4:3", Size: "1024x768"},
				Provider: "openai", Model: "gpt-image-2", Outputs: []int{1}, CostUSD: 0.042, Status: core.StatusDone,
				QueuedAt: at(-60), StartedAt: at(-60), FinishedAt: at(-59)},
			{ID: 2, Kind: core.KindRefine, User: bob, Text: "make it green", Prompt: "make it green", Base: 1,
				Provider: "openai-responses", Model: "gpt-5.5", Outputs: []int{2}, CostUSD: 0.05, Status: core.StatusDone,
				QueuedAt: at(-50), StartedAt: at(-50), FinishedAt: at(-49)},
			{ID: 3, Kind: core.KindBranch, User: alice, Text: hostilePrompt, Prompt: hostilePrompt, Base: 1, Target: 1,
				Flags: core.Flags{Region: "top-left"}, Provider: "preview", Outputs: []int{3}, Status: core.StatusDone,
				QueuedAt: at(-40), StartedAt: at(-40), FinishedAt: at(-40)},
			{ID: 4, Kind: core.KindAnswer, User: bob, Text: "what animal is it?", Prompt: "what animal is it?", Base: 2,
				Answer: "A fox, painted green.", Provider: "openai-responses", Model: "gpt-5.5", CostUSD: 0.001, Status: core.StatusDone,
				QueuedAt: at(-35), StartedAt: at(-35), FinishedAt: at(-35)},
			{ID: 5, Kind: core.KindRefine, User: bob, Text: "add a hat", Prompt: "add a hat", Status: core.StatusFailed,
				Error: "The provider refused this request.", QueuedAt: at(-30)},
		},
	}
	other := &core.Session{
		ID: otherID, Platform: "discord", Workspace: "G0SERVER", Channel: "C0OTHER", Thread: "C0OTHER",
		CreatedBy: bob, CreatedAt: at(-24 * 60), UpdatedAt: at(-24 * 60), Head: 1,
		Versions: []core.Version{{N: 1, Turn: 1, Image: put(coretest.PNG(1))}},
		Turns: []core.Turn{{ID: 1, Kind: core.KindGenerate, User: bob, Text: "a quiet harbour", Prompt: "a quiet harbour",
			Provider: "preview", Outputs: []int{1}, Status: core.StatusDone, QueuedAt: at(-24 * 60)}},
	}
	f.store.sessions[tree.ID], f.store.sessions[other.ID] = tree, other
	f.store.usage = []core.UsageRow{
		{Key: "user/slack/U0ALICE/2026-03-04", UsageTotals: core.UsageTotals{Turns: 2, Images: 2, CostUSD: 0.042}},
		{Key: "user/slack/U0BOB/2026-03-01", UsageTotals: core.UsageTotals{Turns: 3, Images: 1, CostUSD: 0.051}},
		{Key: "workspace/slack/T0WORK/2026-03", UsageTotals: core.UsageTotals{Turns: 5, Images: 3, CostUSD: 0.093}},
	}
	var err error
	f.g, err = New(Config{Key: testKey, Now: func() time.Time { return now }, Limits: usage.Limits{ImagesPerUserDay: 50, AdminsExempt: true}, Admins: []string{"U0ALICE"}}, f.store, f.images)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.g.Mount(mux)
	f.h = mux
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	if f.linker, err = NewLinker(testKey, f.srv.URL); err != nil {
		t.Fatal(err)
	}
	f.linker.now = func() time.Time { return now }
	return f
}

// sessionLink and galleryLink return signed links, valid for a day.
func (f *fixture) sessionLink(t testing.TB, id string) string {
	t.Helper()
	link, err := f.linker.SessionLink(id, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

func (f *fixture) galleryLink(t testing.TB) string {
	t.Helper()
	link, err := f.linker.GalleryLink(24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// signature returns the exp and sig query of a link.
func signature(t testing.TB, link string) url.Values {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// get serves a GET of target (a path with its query, or a link) with the
// cookies given, and returns the answer.
func (f *fixture) get(t testing.TB, target string, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	target = strings.TrimPrefix(target, f.srv.URL)
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w.Result()
}

// body reads all of res's body.
func body(t testing.TB, res *http.Response) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// sameShape returns an error page without the relative way to the style
// sheet, the only part that depends on the path asked for.
func sameShape(page string) string {
	for strings.Contains(page, `href="../`) {
		page = strings.ReplaceAll(page, `href="../`, `href="`)
	}
	return page
}
