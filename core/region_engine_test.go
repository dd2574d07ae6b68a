package core_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/preview"
)

// recorder records the requests a Generator is given.
type recorder struct {
	core.Generator
	mu   sync.Mutex
	reqs []core.GenerateRequest
}

func (r *recorder) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.Generator.Generate(ctx, req)
}

func (r *recorder) last() core.GenerateRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func decodePNG(t *testing.T, data []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// changed counts the pixels of b that differ from a's inside and outside
// rect.
func changed(a, b image.Image, rect image.Rectangle) (inside, outside int) {
	outside = core.ChangedOutside(a, b, rect)
	return core.ChangedOutside(a, b, image.Rectangle{}) - outside, outside
}

// TestRegionEditPreview: with the offline renderer, a region edit sends a
// mask of the base image's size and draws only inside the region, outlined;
// strict or not, no pixel outside it changes.
func TestRegionEditPreview(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), logs: &bytes.Buffer{}}
	rec := &recorder{Generator: preview.New(preview.Config{})}
	h.openWith(core.EngineConfig{}, rec)
	t.Cleanup(h.close)
	th := coretest.NewThread()
	q := h.send(th, msg("p1", "a lighthouse at dusk --size 336x208"))
	th.WaitTurns(t, 1)
	h.send(th, msg("p1", "a red sky --region top-right"))
	th.WaitTurns(t, 2)
	h.send(th, msg("p1", "a boat --region 10,50,45,40 --strict-region"))
	th.WaitTurns(t, 3)
	s := h.session(q.SessionID)
	if len(s.Versions) != 3 || s.Turn(2).Flags.Region != "top-right" || s.Turn(3).Flags.Region != "10,50,45,40" {
		t.Fatalf("versions %d, regions %q and %q", len(s.Versions), s.Turn(2).Flags.Region, s.Turn(3).Flags.Region)
	}
	req := rec.last()
	if req.Mask == nil || req.Base == nil {
		t.Fatal("the region edit sent no mask")
	}
	mask := decodePNG(t, req.Mask.Data)
	if mask.Bounds() != image.Rect(0, 0, 336, 208) {
		t.Errorf("mask is %v, want the base image's 336x208", mask.Bounds())
	}
	for i, tc := range []struct {
		n      int
		region string
	}{{2, "top-right"}, {3, "10,50,45,40"}} {
		base := decodePNG(t, h.imageBytes(s.Version(tc.n-1).Image))
		out := decodePNG(t, h.imageBytes(s.Version(tc.n).Image))
		r, _, _ := core.ParseRegion(tc.region)
		rect := r.Pixels(336, 208)
		in, outside := changed(base, out, rect)
		if outside != 0 || in < rect.Dx()*rect.Dy()/4 {
			t.Errorf("v%d (%s): %d pixels changed outside the region, %d of %d inside", tc.n, tc.region, outside, in, rect.Dx()*rect.Dy())
		}
		// The outline: the region's inner edge, where it meets the rest.
		c := color.RGBAModel.Convert(out.At(rect.Min.X, rect.Min.Y+rect.Dy()/2)).(color.RGBA)
		if i == 1 && (c.R != 255 || c.G != 209 || c.B != 102) {
			t.Errorf("v%d: the region's left edge is %v, not outlined", tc.n, c)
		}
	}
	if s.Version(2).Original != nil || s.Version(3).Original == nil {
		t.Errorf("originals kept: v2 %v, v3 %v; want only the strict edit's", s.Version(2).Original, s.Version(3).Original)
	}
	caps := captions(th)
	if !strings.Contains(caps[1], "region top-right") || strings.Contains(caps[1], "composited") ||
		!strings.Contains(caps[2], "region 10,50,45,40") || !strings.Contains(caps[2], "composited onto v2") {
		t.Errorf("captions:\n%s", strings.Join(caps, "\n"))
	}
}

// captions returns the captions of th's posts, in order.
func captions(th *coretest.Thread) []string {
	th.Lock()
	defer th.Unlock()
	var c []string
	for _, p := range th.Posts {
		c = append(c, p.Caption)
	}
	return c
}

// solidPNG returns a w×h PNG of one colour.
func solidPNG(w, h int, c color.NRGBA) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// TestStrictRegionProviderChangesEverything: a provider whose result
// changes every pixel (and has another size) is composited onto the base,
// so 0 pixels change outside the region; the provider's bytes are kept,
// byte for byte, as the version's original. Without strict, its bytes are
// the version. The configured default applies unless a prompt overrides
// it.
func TestStrictRegionProviderChangesEverything(t *testing.T) {
	h := newHarness(t, core.EngineConfig{StrictRegion: true})
	th := coretest.NewThread()
	q := h.send(th, msg("s1", "a poster"))
	th.WaitTurns(t, 1)
	everything := solidPNG(48, 40, color.NRGBA{250, 1, 2, 255})
	h.gen.SetOutput(func(int) []byte { return everything })
	h.send(th, msg("s1", "new title --region bottom-left")) // strict by default
	th.WaitTurns(t, 2)
	h.send(th, msg("s1", "new title --region bottom --strict-region=off")) // not strict
	th.WaitTurns(t, 3)

	s := h.session(q.SessionID)
	v1 := decodePNG(t, h.imageBytes(s.Version(1).Image))
	r, _, _ := core.ParseRegion("bottom-left")
	rect := r.Pixels(32, 32)
	if rect != image.Rect(0, 21, 11, 32) {
		t.Fatalf("bottom-left of 32x32 is %v", rect)
	}
	v2 := decodePNG(t, h.imageBytes(s.Version(2).Image))
	in, outside := changed(v1, v2, rect)
	if outside != 0 || in != rect.Dx()*rect.Dy() {
		t.Errorf("strict: %d pixels changed outside, %d of %d inside", outside, in, rect.Dx()*rect.Dy())
	}
	if o := s.Version(2).Original; o == nil || !bytes.Equal(h.imageBytes(*o), everything) {
		t.Error("the provider's original is not kept byte for byte")
	}
	if req := h.gen.Request(1); req.Mask == nil || !strings.Contains(req.FullPrompt(), "Change only the bottom-left part of the image") {
		t.Errorf("the request has no mask, or its prompt does not name the region: %q", req.FullPrompt())
	}
	if !bytes.Equal(h.imageBytes(s.Version(3).Image), everything) || s.Version(3).Original != nil {
		t.Error("a region edit that is not strict did not keep the provider's bytes as the version")
	}
	if caps := captions(th); !strings.Contains(caps[1], "composited onto v1: nothing outside the region changed") {
		t.Errorf("caption %q does not say the image is composited", caps[1])
	}
}

// TestRegionRefused: a region with no image to edit, --strict-region
// without a region, and a box smaller than a pixel are refused with
// messages saying so.
func TestRegionRefused(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	for text, says := range map[string]string{
		"a poster --region top":    "--region edits part of an existing image",
		"a poster --strict-region": "--strict-region keeps everything outside a region unchanged",
	} {
		if _, err := h.engine.Handle(context.Background(), th, msg("r1", text)); core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want an error saying %q", text, err, says)
		}
	}
	h.send(th, msg("r1", "a poster"))
	th.WaitTurns(t, 1)
	h.send(th, msg("r1", "a dot --region 0,0,0.5,0.5"))
	th.WaitTurns(t, 2)
	th.Lock()
	last := th.Replies[len(th.Replies)-1]
	th.Unlock()
	if r := last; !strings.Contains(r, "smaller than a pixel on this 32x32 image") {
		t.Errorf("the tiny box was answered %q", r)
	}
	if h.gen.Calls.Load() != 1 {
		t.Errorf("%d provider calls; a refused region must not reach the provider", h.gen.Calls.Load())
	}
}

// TestChooseRegion: a region chosen from a result's menu applies to the
// chooser's next prompt only (another user's reply is a whole-image edit),
// to the version the menu was under, survives a restart, is said in the
// thread, and is used up; only the requester may choose, a value that is
// no choice is refused, and "whole" clears a choice.
func TestChooseRegion(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	ctx := context.Background()
	q := h.send(th, msg("c1", "a poster"))
	th.WaitTurns(t, 1)
	h.send(th, msg("c1", "a blue sky"))
	th.WaitTurns(t, 2)

	bob := core.User{ID: "U2", Name: "bob"}
	choose := func(u core.User, version int, region string) error {
		return h.engine.ChooseRegion(ctx, th, core.Message{Platform: "test", Thread: "c1", User: u, Version: version, SessionID: q.SessionID}, region)
	}
	if err := choose(bob, 1, "top-left"); core.KindOf(err) != core.Forbidden {
		t.Errorf("bob chose on ana's image: %v", err)
	}
	for _, forged := range []string{"top-left; rm -rf", "10,10,10", "\x1b[2J", "", strings.Repeat("a", 10000)} {
		if err := choose(ana, 1, forged); core.KindOf(err) != core.Invalid {
			t.Errorf("forged choice %q: %v", forged, err)
		}
	}
	if err := choose(ana, 1, "no-such"); core.KindOf(err) != core.Invalid {
		t.Errorf("unknown region: %v", err)
	}
	if err := choose(ana, 9, "top"); core.KindOf(err) != core.NotFound {
		t.Errorf("choice on v9: %v", err)
	}
	// The choice's delivery is handled in the commit that records it.
	if first, err := h.db.Receive(ctx, "test:choice", "interactive", []byte("{}"), time.Hour); err != nil || !first {
		t.Fatal(first, err)
	}
	err := h.engine.ChooseRegion(ctx, th, core.Message{Platform: "test", Thread: "c1", User: ana, Version: 1, SessionID: q.SessionID,
		Delivery: "test:choice"}, "bottom-right")
	if err != nil {
		t.Fatal(err)
	}
	if left, err := h.db.Unhandled(ctx); err != nil || len(left) != 0 {
		t.Errorf("deliveries left unhandled: %v %v", left, err)
	}
	th.Lock()
	said := th.Replies[len(th.Replies)-1]
	th.Unlock()
	if said != "✂️ ana chose the bottom-right part of v1: their next reply in this thread changes only that part of v1" {
		t.Errorf("the thread was told %q", said)
	}

	// A restart keeps the choice.
	h.close()
	h.open(core.EngineConfig{})
	th = coretest.NewThread()

	// Bob's reply is not a region edit.
	h.send(th, core.Message{Platform: "test", Thread: "c1", User: bob, Text: "add a bird"})
	th.WaitTurns(t, 1)
	// Ana's is, of v1.
	h.send(th, msg("c1", "a red door"))
	th.WaitTurns(t, 2)
	// And her next one is not.
	h.send(th, msg("c1", "brighter"))
	th.WaitTurns(t, 3)
	s := h.session(q.SessionID)
	if len(s.Regions) != 0 {
		t.Errorf("choices left: %+v", s.Regions)
	}
	for i, want := range []struct {
		region string
		base   int
		kind   core.TurnKind
		mask   bool
	}{{"", 2, core.KindRefine, false}, {"bottom-right", 1, core.KindBranch, true}, {"", 4, core.KindRefine, false}} {
		tt := s.Turn(3 + i)
		if tt.Flags.Region != want.region || tt.Base != want.base || tt.Kind != want.kind || (h.gen.Request(2+i).Mask != nil) != want.mask {
			t.Errorf("turn %d (%q by %s): region %q base v%d kind %s mask %v; want %q v%d %s %v", tt.ID, tt.Text, tt.User.Name,
				tt.Flags.Region, tt.Base, tt.Kind, h.gen.Request(2+i).Mask != nil, want.region, want.base, want.kind, want.mask)
		}
	}

	// "whole" clears a choice.
	if err := choose(ana, 2, "left"); err != nil {
		t.Fatal(err)
	}
	if err := choose(ana, 2, core.WholeImage); err != nil {
		t.Fatal(err)
	}
	if s := h.session(q.SessionID); len(s.Regions) != 0 {
		t.Errorf("whole left a choice: %+v", s.Regions)
	}
	if opts := core.RegionOptions(); len(opts) != 14 || opts[0] != (core.RegionOption{Value: "top", Label: "Top half"}) || opts[13].Value != core.WholeImage {
		t.Errorf("menu options %+v", opts)
	}
}
