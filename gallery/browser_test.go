package gallery

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of Debian's chromium. Without it the test is
// skipped, unless EASEL_REQUIRE_CHROMIUM is set (as .ci/run sets it): then
// it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("EASEL_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is not installed, and EASEL_REQUIRE_CHROMIUM is set: apt-get install chromium")
	}
	t.Skip("chromium is not installed (apt-get install chromium); set EASEL_REQUIRE_CHROMIUM=1 to fail instead")
	return ""
}

// browser starts a headless Chromium with a phone's screen and returns a
// context for chromedp actions in one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	do(t, ctx, "start chromium", chromedp.EmulateViewport(390, 844)) // a phone's screen
	return ctx
}

// do runs steps in ctx's tab, failing the test on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs a in ctx's tab and returns its value, failing the test on an
// error.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// allImagesLoaded scrolls every image into view, so that lazy ones load,
// and is true once each has loaded and has a width.
const allImagesLoaded = `(() => {
	const imgs = Array.from(document.images);
	imgs.forEach(i => { if (!i.complete) i.scrollIntoView(); });
	return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
})()`

func TestBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t)
	f.g.now = time.Now // the browser keeps the cookies until their real expiry
	f.linker.now = time.Now
	shots := t.ArtifactDir()
	loaded := chromedp.Poll[bool](allImagesLoaded, chromedp.WithPollingTimeout(30*time.Second))

	// A session link: the tree is drawn and every image loads.
	do(t, ctx, "open the session link", chromedp.Navigate(f.sessionLink(t, treeID)), chromedp.WaitVisible(chromedp.CSS("#v1 img")))
	get(t, ctx, "wait for the images", loaded)
	type treeView struct {
		Title    string
		Roots    int
		Branches []string
		Images   []struct {
			Alt   string
			Width int
		}
		Scripts int
		Prompt  string
	}
	tree := get(t, ctx, "read the tree", chromedp.Evaluate[treeView](`window.scrollTo(0, 0), ({
		Title: document.querySelector("h1").innerText,
		Roots: document.querySelectorAll("main > ol.chain").length,
		Branches: Array.from(document.querySelectorAll("#v1 > ul.branches li.version")).map(li => li.id),
		Images: Array.from(document.images).map(i => ({Alt: i.alt, Width: i.naturalWidth})),
		Scripts: document.scripts.length,
		Prompt: document.querySelector("#v3 .prompt").innerText,
	})`))
	if tree.Title != "Session "+treeID || tree.Roots != 1 || strings.Join(tree.Branches, ",") != "v2,v3" {
		t.Errorf("the tree as drawn: %+v; want one root, v1, with branches v2 and v3", tree)
	}
	if len(tree.Images) != 3 {
		t.Errorf("images %+v, want v1, v2 and v3", tree.Images)
	}
	for i, img := range tree.Images {
		if want := fmt.Sprintf("v%d", i+1); img.Width == 0 || !strings.HasPrefix(img.Alt, want) {
			t.Errorf("image %d: alt %q, natural width %d; want a loaded image of %s", i, img.Alt, img.Width, want)
		}
	}
	if tree.Scripts != 0 || !strings.Contains(tree.Prompt, "<script>alert(1)</script>") {
		t.Errorf("the hostile prompt: %d scripts in the page, shown as %q; want none, and the prompt as text", tree.Scripts, tree.Prompt)
	}

	// What a person sees: the page is not blank, and each version's image
	// shows its colour where the page puts it.
	shot := screenshot(t, ctx, filepath.Join(shots, "session.png"))
	if n := colours(shot); n < 8 {
		t.Errorf("the screenshot of the session page has %d colours: blank?", n)
	}
	type box struct{ X, Y, W, H, Scale float64 }
	for v, want := range map[string]color.RGBA{"v1": red, "v2": green, "v3": blue} {
		r := get(t, ctx, "find "+v, chromedp.Evaluate[box](fmt.Sprintf(`(() => {
			const r = document.querySelector("#%s img").getBoundingClientRect();
			return {X: r.left + window.scrollX, Y: r.top + window.scrollY, W: r.width, H: r.height, Scale: window.devicePixelRatio};
		})()`, v)))
		if r.W < 50 {
			t.Errorf("%s's image is drawn %.0f pixels wide", v, r.W)
		}
		x, y := int((r.X+r.W/2)*r.Scale), int((r.Y+r.H/2)*r.Scale)
		if got := color.RGBAModel.Convert(shot.At(x, y)).(color.RGBA); !near(got, want) {
			t.Errorf("the screenshot shows %v in the middle of %s's image (%d,%d), want %v", got, v, x, y, want)
		}
	}

	// The session's cookie opens nothing else.
	do(t, ctx, "open another session", chromedp.Navigate(f.srv.URL+"/gallery/s/"+otherID))
	if h := get(t, ctx, "read the heading", chromedp.Text(chromedp.CSS("h1"))); h != "Link not valid" {
		t.Errorf("another session with a session's cookie shows %q", h)
	}

	// The gallery link: the list, and a search typed into its form.
	do(t, ctx, "open the gallery link", chromedp.Navigate(f.galleryLink(t)), chromedp.WaitVisible(chromedp.CSS("#q")))
	get(t, ctx, "wait for the thumbnails", loaded)
	do(t, ctx, "search",
		chromedp.SendKeys(chromedp.CSS("#q"), "harbour"),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS(`.buttons a[href="./"]`)), // "Show all": only on the results
	)
	if count := get(t, ctx, "read the count", chromedp.Text(chromedp.CSS("#count"))); count != "1 session found." {
		t.Errorf("the search says %q, want 1 session found.", count)
	}
	ids := get(t, ctx, "read the results", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("li.session h2 a")).map(a => a.getAttribute("href"))`))
	if strings.Join(ids, ",") != "s/"+otherID {
		t.Errorf("the search found %v, want s/%s", ids, otherID)
	}
	get(t, ctx, "wait for the thumbnail", loaded)
	if n := colours(screenshot(t, ctx, filepath.Join(shots, "search.png"))); n < 8 {
		t.Errorf("the screenshot of the search has %d colours: blank?", n)
	}

	// Keyboard: the first Tab reaches the skip link, and Enter on a result
	// opens its session.
	do(t, ctx, "press Tab", chromedp.KeyEvent("\t"))
	if focused := get(t, ctx, "read the focus", chromedp.Evaluate[string](`document.activeElement.className`)); focused != "skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}
	do(t, ctx, "open a result with the keyboard",
		chromedp.Focus(chromedp.CSS(`li.session h2 a`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#v1 img")),
	)
	if h := get(t, ctx, "read the heading", chromedp.Text(chromedp.CSS("h1"))); h != "Session "+otherID {
		t.Errorf("Enter on the result opened %q", h)
	}
}

// screenshot takes a screenshot of the whole page, saves it at path and
// returns it decoded.
func screenshot(t *testing.T, ctx context.Context, path string) image.Image {
	t.Helper()
	buf := get(t, ctx, "take a screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	t.Logf("screenshot %s: %v", path, img.Bounds().Size())
	return img
}

// colours counts the distinct colours of img, up to 1000.
func colours(img image.Image) int {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(seen) < 1000; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			seen[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	return len(seen)
}

// near reports whether a and b are the same colour, give or take rounding.
func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= 8 && d(a.G, b.G) <= 8 && d(a.B, b.B) <= 8
}
