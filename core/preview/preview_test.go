package preview_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/preview"
)

// generate calls Generate and fails the test on error.
func generate(t testing.TB, g *preview.Generator, req core.GenerateRequest) core.Result {
	t.Helper()
	res, err := g.Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return res
}

// decodeAs decodes data, which must be in format.
func decodeAs(t testing.TB, data []byte, format string) image.Image {
	t.Helper()
	img, got, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode output: %v", err)
	}
	if got != format {
		t.Fatalf("output is %s, want %s", got, format)
	}
	return img
}

// solid returns a w×h PNG of one colour.
func solid(t testing.TB, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func request(prompt string) core.GenerateRequest {
	return core.GenerateRequest{Kind: core.KindGenerate, Prompt: prompt, N: 1, Version: 1}
}

func TestSizes(t *testing.T) {
	g := preview.New(preview.Config{})
	for _, tc := range []struct {
		flags core.Flags
		w, h  int
	}{
		{core.Flags{}, 1024, 1024},
		{core.Flags{Size: "1536x1024"}, 1536, 1024},
		{core.Flags{Size: "1360x768"}, 1360, 768},
		{core.Flags{Size: "64x64"}, 64, 64},
		{core.Flags{Size: "64x3840"}, 64, 3840},
		{core.Flags{Size: "3840x2160"}, 3840, 2160},
		{core.Flags{Aspect: "16:9"}, 1360, 768},
	} {
		t.Run(fmt.Sprint(tc.flags.Size, tc.flags.Aspect), func(t *testing.T) {
			t.Parallel()
			req := request("a lighthouse at dusk, watercolour")
			req.Flags = tc.flags
			res := generate(t, g, req)
			if len(res.Images) != 1 {
				t.Fatalf("got %d images, want 1", len(res.Images))
			}
			img := decodeAs(t, res.Images[0].Data, "png")
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.w, tc.h)
			}
		})
	}
}

func TestPNGResult(t *testing.T) {
	res := generate(t, preview.New(preview.Config{}), request("a red fox"))
	if res.Model != "preview" || res.Attempts != 1 || res.CostUSD != 0 || res.Usage != (core.Usage{}) {
		t.Errorf("result metadata = %q, %d attempts, $%v, %+v; want preview, 1, 0, zero usage", res.Model, res.Attempts, res.CostUSD, res.Usage)
	}
	im := res.Images[0]
	if im.MIME != "image/png" || im.Ext() != ".png" || im.Name != "preview-v1.png" {
		t.Errorf("image = %s %q, want image/png preview-v1.png", im.MIME, im.Name)
	}
	img := decodeAs(t, im.Data, "png")
	if _, _, _, a := img.At(img.Bounds().Dx()-1, img.Bounds().Dy()-1).RGBA(); a != 0xffff {
		t.Errorf("opaque render has alpha %#x in a corner", a)
	}
}

func TestJPEG(t *testing.T) {
	req := request("a red fox")
	req.Flags.Format, req.Flags.Size = "jpeg", "1360x768"
	res := generate(t, preview.New(preview.Config{}), req)
	im := res.Images[0]
	if im.MIME != "image/jpeg" || im.Ext() != ".jpg" {
		t.Errorf("MIME %s, ext %s; want image/jpeg, .jpg", im.MIME, im.Ext())
	}
	if b := decodeAs(t, im.Data, "jpeg").Bounds(); b.Dx() != 1360 || b.Dy() != 768 {
		t.Errorf("size %v, want 1360x768", b.Size())
	}
}

func TestTransparent(t *testing.T) {
	req := request("a sticker of a red fox")
	req.Flags.Transparent = true
	img := decodeAs(t, generate(t, preview.New(preview.Config{}), req).Images[0].Data, "png")
	b := img.Bounds()
	var clear, opaque int
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			switch _, _, _, a := img.At(x, y).RGBA(); a {
			case 0:
				clear++
			case 0xffff:
				opaque++
			}
		}
	}
	total := b.Dx() * b.Dy() / 16
	if clear < total/10 || opaque == 0 {
		t.Errorf("of %d sampled pixels %d are transparent and %d opaque; want a transparent background and opaque content", total, clear, opaque)
	}
}

// lineage returns a request refining a base image, with attachments,
// several samples and every flag the renderer draws.
func lineage(t testing.TB) core.GenerateRequest {
	seed := int64(42)
	return core.GenerateRequest{
		Kind:    core.KindRefine,
		Prompt:  "make the title gold",
		History: []string{`a poster for our offsite, text "Q3 KICKOFF"`, "add confetti"},
		Flags:   core.Flags{Size: "640x512", Seed: &seed, Quality: "high", Avoid: "watermarks"},
		N:       2,
		Base:    &core.Image{Data: solid(t, 300, 200, color.RGBA{200, 30, 30, 255}), MIME: "image/png"},
		Inputs:  []core.Image{{Data: solid(t, 50, 80, color.RGBA{30, 30, 200, 255}), MIME: "image/png", Name: "logo.png"}},
		Version: 3,
		Parent:  2,
	}
}

func TestDeterministic(t *testing.T) {
	g := preview.New(preview.Config{})
	run := func() (core.Result, []core.Partial) {
		req := lineage(t)
		var parts []core.Partial
		req.Progress = func(p core.Partial) { parts = append(parts, p) }
		return generate(t, g, req), parts
	}
	a, pa := run()
	b, pb := run()
	for i := range a.Images {
		if !bytes.Equal(a.Images[i].Data, b.Images[i].Data) {
			t.Errorf("image %d differs between identical requests", i)
		}
	}
	for i := range pa {
		if !bytes.Equal(pa[i].Image.Data, pb[i].Image.Data) {
			t.Errorf("partial %d differs between identical requests", i)
		}
	}
}

func TestOutputsDiffer(t *testing.T) {
	g := preview.New(preview.Config{})
	base := lineage(t)
	seen := map[string]string{}
	add := func(name string, req core.GenerateRequest) {
		t.Helper()
		for i, im := range generate(t, g, req).Images {
			key := string(im.Data)
			if prev, ok := seen[key]; ok {
				t.Errorf("%s image %d is identical to %s", name, i, prev)
			}
			seen[key] = fmt.Sprintf("%s image %d", name, i)
		}
	}
	add("base request", base)

	next := base
	next.Version = 7
	add("another version", next)

	seed := int64(43)
	reseeded := base
	reseeded.Flags.Seed = &seed
	add("another seed", reseeded)

	// Variations of one request differ in more than their version label:
	// their colours differ too.
	vary := request("a red fox")
	vary.Kind, vary.N, vary.Version, vary.Flags.Size = core.KindVariations, 3, 5, "256x256"
	res := generate(t, g, vary)
	corners := map[color.RGBA]bool{}
	for _, im := range res.Images {
		img := decodeAs(t, im.Data, "png")
		corners[color.RGBAModel.Convert(img.At(255, 255)).(color.RGBA)] = true
	}
	if len(corners) != 3 {
		t.Errorf("3 variations have %d distinct corner colours, want 3", len(corners))
	}
}

func TestBaseAndInputsChangeOutput(t *testing.T) {
	g := preview.New(preview.Config{})
	with := lineage(t)
	with.N = 1
	without := with
	without.Base = nil
	noInputs := with
	noInputs.Inputs = nil
	a, b, c := generate(t, g, with), generate(t, g, without), generate(t, g, noInputs)
	if bytes.Equal(a.Images[0].Data, b.Images[0].Data) {
		t.Error("the base image does not change the output")
	}
	if bytes.Equal(a.Images[0].Data, c.Images[0].Data) {
		t.Error("the attachments do not change the output")
	}
}

func TestDecodesInputFormats(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 40, 30))
	var pngBuf, jpegBuf, gifBuf bytes.Buffer
	if err := png.Encode(&pngBuf, src); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBuf, src, nil); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gifBuf, src, nil); err != nil {
		t.Fatal(err)
	}
	// A 1x1 lossless WebP, and a 1x1 lossy one with an alpha channel.
	lossless, _ := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	lossyAlpha, _ := base64.StdEncoding.DecodeString("UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEAAQAAAP4AAA3AAP7mtQAAAA==")
	g := preview.New(preview.Config{})
	for name, data := range map[string][]byte{
		"png": pngBuf.Bytes(), "jpeg": jpegBuf.Bytes(), "gif": gifBuf.Bytes(),
		"webp lossless": lossless, "webp lossy+alpha": lossyAlpha,
	} {
		req := request("put this on a mug")
		req.Flags.Size = "128x128"
		req.Inputs = []core.Image{{Data: data, Name: name}}
		req.Base = &core.Image{Data: data}
		if _, err := g.Generate(context.Background(), req); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// pngHeader returns a PNG signature and IHDR chunk declaring w×h RGBA
// pixels, and no pixel data.
func pngHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b = append(b, chunk...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(chunk))
}

// webpHeader returns a WebP header whose VP8X chunk declares a w×h canvas.
func webpHeader(w, h uint32) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00")
	b = append(b, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func TestHostileInputs(t *testing.T) {
	valid := solid(t, 20, 20, color.White)
	// SOI, a JFIF APP0 segment, and a start of frame for 65535x65535 pixels.
	jpegHuge := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 16}, "JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"...)
	jpegHuge = append(jpegHuge, 0xff, 0xc0, 0, 11, 8, 0xff, 0xff, 0xff, 0xff, 1, 1, 0x11, 0)
	gifHeader := func(w, h uint16) []byte {
		return append([]byte("GIF89a"), byte(w), byte(w>>8), byte(h), byte(h>>8), 0, 0, 0)
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"png 100000x100000", "is too large", pngHeader(100000, 100000)},
		{"png 7000x7000", "is too large", pngHeader(7000, 7000)},
		{"jpeg 65535x65535", "is too large", jpegHuge},
		{"gif 65535x65535", "is too large", gifHeader(65535, 65535)},
		{"webp 10000x10000", "is too large", webpHeader(10000, 10000)},
		{"gif 0x0", "has no pixels", gifHeader(0, 0)},
		{"png 0x10", "is not a PNG, JPEG, GIF or WebP image", pngHeader(0, 10)},
		{"garbage", "is not a PNG, JPEG, GIF or WebP image", []byte("this is not an image at all")},
		{"empty", "is not a PNG, JPEG, GIF or WebP image", nil},
		{"bmp", "is not a PNG, JPEG, GIF or WebP image", append([]byte("BM"), make([]byte, 60)...)},
		{"truncated png", "could not be decoded", valid[:len(valid)-30]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := preview.New(preview.Config{})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()

			req := request("put this on a mug")
			req.Inputs = []core.Image{{Data: valid}, {Data: tc.data, Name: "evil.png"}}
			_, err := g.Generate(context.Background(), req)
			checkInvalid(t, err, `attachment "evil.png" `+tc.want)

			req = request("make it blue")
			req.Base, req.Parent = &core.Image{Data: tc.data}, 4
			_, err = g.Generate(context.Background(), req)
			checkInvalid(t, err, "the image being refined (v4) "+tc.want)

			runtime.ReadMemStats(&after)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing took %v", d)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("refusing allocated %d MB", alloc>>20)
			}
		})
	}
}

func TestUnnamedAttachment(t *testing.T) {
	req := request("x")
	req.Inputs = []core.Image{{Data: []byte("junk")}}
	_, err := preview.New(preview.Config{}).Generate(context.Background(), req)
	checkInvalid(t, err, "attachment 1 is not a PNG, JPEG, GIF or WebP image")
}

func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if kind := core.KindOf(err); kind != core.Invalid {
		t.Fatalf("error %v has kind %q, want invalid", err, kind)
	}
	if msg := core.UserMessage(err, "ref"); !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
}

func TestProgress(t *testing.T) {
	req := lineage(t)
	req.N = 3
	var parts []core.Partial
	req.Progress = func(p core.Partial) { parts = append(parts, p) }
	res := generate(t, preview.New(preview.Config{}), req)
	if len(parts) != 2 {
		t.Fatalf("got %d partial images, want 2", len(parts))
	}
	final := decodeAs(t, res.Images[0].Data, "png").Bounds()
	for i, p := range parts {
		if p.Index != i || p.Image.MIME != "image/png" {
			t.Errorf("partial %d has index %d, MIME %s", i, p.Index, p.Image.MIME)
		}
		b := decodeAs(t, p.Image.Data, "png").Bounds()
		if b.Dx() >= final.Dx() || b.Dy() >= final.Dy() {
			t.Errorf("partial %d is %v, not smaller than the final %v", i, b.Size(), final.Size())
		}
	}
	if len(res.Images) != 3 {
		t.Errorf("got %d images, want 3", len(res.Images))
	}
}

func TestDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	g := preview.New(preview.Config{Delay: delay})
	for _, progress := range []bool{false, true} {
		req := request("a red fox")
		req.Flags.Size = "128x128"
		if progress {
			req.Progress = func(core.Partial) {}
		}
		start := time.Now()
		generate(t, g, req)
		if d := time.Since(start); d < delay {
			t.Errorf("progress %v: took %v, want at least %v", progress, d, delay)
		}
	}
}

func TestCancel(t *testing.T) {
	g := preview.New(preview.Config{Delay: time.Minute})
	for _, progress := range []bool{false, true} {
		req := request("a red fox")
		req.Flags.Size = "64x64" // rendered well before the cancellation
		if progress {
			req.Progress = func(core.Partial) {}
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := g.Generate(ctx, req)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("progress %v: err = %v, want context.Canceled", progress, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("progress %v: cancellation took %v", progress, d)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Generate(ctx, request("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after a timeout, err = %v, want context.DeadlineExceeded", err)
	}

	done, stop := context.WithCancel(context.Background())
	stop()
	called := false
	req := request("x")
	req.Progress = func(core.Partial) { called = true }
	if _, err := preview.New(preview.Config{}).Generate(done, req); !errors.Is(err, context.Canceled) || called {
		t.Errorf("with a cancelled context, err = %v and progress called = %v; want context.Canceled, no progress", err, called)
	}
}

func TestCheckRequest(t *testing.T) {
	seed := int64(7)
	g := preview.New(preview.Config{})
	for _, tc := range []struct {
		name  string
		flags core.Flags
		n     int
		want  string // "" for a valid request
	}{
		{"defaults", core.Flags{}, 1, ""},
		{"n 0 means 1", core.Flags{}, 0, ""},
		{"n 10", core.Flags{}, 10, ""},
		{"smallest", core.Flags{Size: "64x64"}, 1, ""},
		{"largest", core.Flags{Size: "3840x3840"}, 1, ""},
		{"aspect", core.Flags{Aspect: "16:9"}, 1, ""},
		{"png", core.Flags{Format: "png", Transparent: true}, 1, ""},
		{"jpeg", core.Flags{Format: "jpeg"}, 1, ""},
		{"seed and quality", core.Flags{Seed: &seed, Quality: "low"}, 1, ""},
		{"n 11", core.Flags{}, 11, "--n 11"},
		{"edge too small", core.Flags{Size: "63x64"}, 1, "--size 63x64"},
		{"edge too large", core.Flags{Size: "3856x1024"}, 1, "--size 3856x1024"},
		{"not a size", core.Flags{Size: "big"}, 1, "--size big"},
		{"negative size", core.Flags{Size: "-64x64"}, 1, "--size -64x64"},
		{"half a size", core.Flags{Size: "640x"}, 1, "--size 640x"},
		{"bad aspect", core.Flags{Aspect: "16/9"}, 1, "--ar 16/9"},
		{"webp", core.Flags{Format: "webp"}, 1, "writes png or jpeg"},
		{"gif", core.Flags{Format: "gif"}, 1, "--format gif"},
		{"transparent jpeg", core.Flags{Format: "jpeg", Transparent: true}, 1, "--transparent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request("a red fox")
			req.Flags, req.N = tc.flags, tc.n
			err := g.CheckRequest(req)
			if tc.want == "" {
				if err != nil {
					t.Errorf("CheckRequest: %v", err)
				}
				return
			}
			checkInvalid(t, err, tc.want)
			// Generate refuses what CheckRequest refuses.
			_, err = g.Generate(context.Background(), req)
			checkInvalid(t, err, tc.want)
		})
	}
}

func TestAwkwardText(t *testing.T) {
	long := strings.Repeat("supercalifragilisticexpialidocious", 300) + " " + strings.Repeat("word ", 2000)
	g := preview.New(preview.Config{})
	for _, size := range []string{"64x64", "64x3840", "3840x64", "512x512"} {
		req := request(long + " \xff\xfe invalid UTF-8, emoji 🦊, 漢字, tabs\tand\nnewlines")
		req.History = []string{long, "", "\x00\x01", long}
		req.Flags.Size, req.Flags.Avoid = size, long
		req.Base = &core.Image{Data: solid(t, 3000, 10, color.White)}
		req.Inputs = make([]core.Image, 16)
		for i := range req.Inputs {
			req.Inputs[i] = core.Image{Data: solid(t, 10, 3000, color.Black)}
		}
		req.Version, req.Parent = 123456789, 123456788
		generate(t, g, req)
	}
}

func TestConcurrent(t *testing.T) {
	g := preview.New(preview.Config{})
	want := generate(t, g, lineage(t)).Images[0].Data
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := g.Generate(context.Background(), lineage(t))
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(res.Images[0].Data, want) {
				t.Error("a concurrent render differs")
			}
		})
	}
	wg.Wait()
}

func BenchmarkGenerate1024(b *testing.B) {
	g := preview.New(preview.Config{})
	req := request(`a poster for our offsite, text "Q3 KICKOFF", bold retro typography`)
	for b.Loop() {
		generate(b, g, req)
	}
}

func BenchmarkGenerate1024Refine(b *testing.B) {
	g := preview.New(preview.Config{})
	v1 := generate(b, g, request(`a poster for our offsite, text "Q3 KICKOFF", bold retro typography`)).Images[0]
	req := request("make the title gold")
	req.Kind, req.History, req.Base, req.Version, req.Parent = core.KindRefine, []string{`a poster for our offsite, text "Q3 KICKOFF"`}, &v1, 2, 1
	for b.Loop() {
		generate(b, g, req)
	}
}
