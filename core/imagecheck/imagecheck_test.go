package imagecheck_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/imagecheck"
)

// maxCheckBytes bounds the memory one Check of a bomb may allocate. A
// decoder that trusted the header would need gigabytes.
const maxCheckBytes = 1 << 20

// tinyWebP is a valid 1x1 lossless WebP.
var tinyWebP = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

// bomb is a few bytes declaring an enormous image.
type bomb struct {
	name string
	data []byte
	w, h int64
	want string // the refusal says; "" for "NAME is WxH pixels"
}

// bombs returns one bomb per format and header variant.
func bombs() []bomb {
	return []bomb{
		{"png-100000.png", pngBomb(100000, 100000, 2), 100000, 100000, ""},
		{"png-line.png", pngBomb(1<<31-1, 1, 2), 1<<31 - 1, 1, ""},
		{"png-max.png", pngBomb(1<<31-1, 1<<31-1, 2), 1<<31 - 1, 1<<31 - 1, "png-max.png could not be read"}, // image/png: "dimension overflow"
		{"png-paletted.png", pngBomb(65535, 65535, 3), 65535, 65535, ""},
		{"gif-max.gif", gifBomb(65535, 65535), 65535, 65535, ""},
		{"webp-vp8x.webp", webpVP8XBomb(16384, 16384), 16384, 16384, ""},
		{"webp-vp8l.webp", webpVP8LBomb(16384, 16384), 16384, 16384, ""},
		{"webp-vp8.webp", webpVP8Bomb(16383, 16383), 16383, 16383, ""},
		{"jpeg-max.jpg", jpegBomb(65535, 65535), 65535, 65535, ""},
	}
}

// TestBombsAreRefusedCheaply feeds Check headers that declare up to
// 2^31-1 pixels on a side and proves each is refused for its dimensions (a
// PNG past 2^31 pixels in all is refused by the PNG decoder itself), having
// allocated less than maxCheckBytes. Decoding the smallest of them (a
// 16383x16383 lossy WebP) would take 400 MB.
func TestBombsAreRefusedCheaply(t *testing.T) {
	for _, b := range bombs() {
		_, err := imagecheck.Check(b.name, b.data, imagecheck.Limits{})
		want := b.want
		if want == "" {
			want = fmt.Sprintf("%s is %dx%d pixels", b.name, b.w, b.h)
		}
		if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an Invalid error saying %q", b.name, err, want)
			continue
		}
		allocs := testing.AllocsPerRun(100, func() { _, _ = imagecheck.Check(b.name, b.data, imagecheck.Limits{}) })
		per := allocatedPerCheck(b.data)
		if per > maxCheckBytes {
			t.Errorf("%s: checking %d bytes allocated %d bytes", b.name, len(b.data), per)
		}
		t.Logf("%-17s %4d bytes declaring %dx%d (%.3g pixels): refused, %d bytes in %.0f allocations per check",
			b.name, len(b.data), b.w, b.h, float64(b.w)*float64(b.h), per, allocs)
	}
}

// allocatedPerCheck returns the bytes allocated by one Check of data, on
// average over 100.
func allocatedPerCheck(data []byte) uint64 {
	const runs = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		_, _ = imagecheck.Check("x", data, imagecheck.Limits{})
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestContentIsSniffed proves the bytes decide: a PNG named x.jpg is a PNG,
// a web page named cat.png is refused, and a GIF is refused for its type.
func TestContentIsSniffed(t *testing.T) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 8, 6)), nil); err != nil {
		t.Fatal(err)
	}
	var smallGIF bytes.Buffer
	if err := gif.Encode(&smallGIF, image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White}), nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		mime string // accepted as, or "" for refused
		want string // the refusal says
	}{
		{"x.jpg", coretest.PNG(1), "image/png", ""},
		{"photo", jpg.Bytes(), "image/jpeg", ""},
		{"sticker.png", tinyWebP, "image/webp", ""},
		{"cat.png", []byte("<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"), "", "cat.png is not an image Easel can use (it looks like text/html)"},
		{"notes.png", []byte("just some words"), "", "notes.png is not an image Easel can use (it looks like text/plain)"},
		{"doc.webp", []byte("%PDF-1.7\n"), "", "doc.webp is not an image Easel can use (it looks like application/pdf)"},
		{"anim.png", smallGIF.Bytes(), "", "anim.png is a GIF, which image models don't take"},
		{"header.png", coretest.PNG(1)[:20], "", "header.png could not be read as an image"},
		{"cut.png", coretest.PNG(1)[:60], "", "cut.png is cut short"},
		{"cut.jpg", jpg.Bytes()[:len(jpg.Bytes())-10], "", "cut.jpg is cut short"},
		{"cut.webp", tinyWebP[:len(tinyWebP)-2], "", "cut.webp is cut short"},
		{"fake.png", []byte("\x89PNG\r\n\x1a\nthis is no PNG at all"), "", "fake.png could not be read as an image"},
		{"empty.png", nil, "", "empty.png is empty"},
		{"zero.png", pngBomb(0, 5, 2), "", "zero.png could not be read"},
	}
	for _, c := range cases {
		img, err := imagecheck.Check(c.name, c.data, imagecheck.Limits{})
		switch {
		case c.mime != "" && (err != nil || img.MIME != c.mime || img.Name != c.name || !bytes.Equal(img.Data, c.data)):
			t.Errorf("%s: %+v, %v; want it accepted as %s", c.name, img.MIME, err, c.mime)
		case c.mime == "" && (core.KindOf(err) != core.Invalid || !strings.HasPrefix(core.UserMessage(err, "ref"), c.want)):
			t.Errorf("%s: %v; want an Invalid error starting %q", c.name, err, c.want)
		}
	}
}

// TestLimits checks the boundaries of each limit, and that zero limits
// mean the defaults rather than none.
func TestLimits(t *testing.T) {
	lim := imagecheck.Limits{MaxBytes: 1000, MaxSide: 100, MaxPixels: 5000}
	cases := []struct {
		data []byte
		ok   bool
	}{
		{pngBomb(100, 50, 2), true},
		{pngBomb(50, 100, 2), true},
		{pngBomb(101, 1, 2), false},
		{pngBomb(1, 101, 2), false},
		{pngBomb(100, 51, 2), false},
		{append(pngBomb(10, 10, 2), make([]byte, 1000)...), false},
	}
	for i, c := range cases {
		_, err := imagecheck.Check("x.png", c.data, lim)
		if (err == nil) != c.ok {
			t.Errorf("case %d: err = %v, want ok=%v", i, err, c.ok)
		}
	}
	if _, err := imagecheck.Check("x.png", pngBomb(imagecheck.DefaultMaxSide, 1, 2), imagecheck.Limits{}); err != nil {
		t.Errorf("default side: %v", err)
	}
	if _, err := imagecheck.Check("x.png", pngBomb(imagecheck.DefaultMaxSide+1, 1, 2), imagecheck.Limits{}); err == nil {
		t.Error("zero Limits accepted an image over the default side")
	}
	if _, err := imagecheck.Check("x.png", pngBomb(8000, 8000, 2), imagecheck.Limits{MaxSide: 10000}); err == nil {
		t.Error("a zero MaxPixels accepted 64 megapixels")
	}
}

func TestDisplayName(t *testing.T) {
	long := strings.Repeat("é", 150) + ".png"
	cases := map[string]string{
		"cat.png":                  "cat.png",
		"../../etc/passwd":         "passwd",
		`a/b\c.png`:                "c.png",
		`..\..\windows\win.ini`:    "win.ini",
		"/abs/path/":               "path",
		"../..":                    "the attachment",
		"":                         "the attachment",
		"  \t\n ":                  "the attachment",
		"evil\u202Egnp.exe":        "evilgnp.exe",
		"bell\a\x00\x1b[31mred":    "bell[31mred",
		"line\nbreak.png":          "line break.png",
		"bad\xffutf8.png":          "bad\uFFFDutf8.png",
		"😀 party.webp":             "😀 party.webp",
		long:                       strings.Repeat("é", 99) + "…",
		"C:\\Users\\me\\photo.JPG": "photo.JPG",
	}
	for in, want := range cases {
		if got := imagecheck.DisplayName(in); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNamesNeverBecomePaths stores images checked under hostile names and
// proves that no file or directory is named after them: storage names files
// by content hash, and the name is kept only as a display name.
func TestNamesNeverBecomePaths(t *testing.T) {
	root := t.TempDir()
	images := coretest.ImageDir(t, filepath.Join(root, "data"))
	names := map[string]string{"../../etc/passwd": "passwd", `a/b\c.png`: "c.png", "../../../../tmp/x.png": "x.png", "/etc/shadow": "shadow"}
	i := 0
	for name, display := range names {
		i++
		img, err := imagecheck.Check(name, coretest.PNG(i), imagecheck.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ref, err := images.Put(context.Background(), img)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := filepath.Join(root, "data", "images", ref.SHA256[:2], ref.SHA256+".png")
		if path := images.Locate(ref); path != want || ref.Name != display {
			t.Errorf("%s: stored at %s as %q, want %s as %q", name, path, ref.Name, want, display)
		}
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, bad := range []string{"passwd", "etc", "c.png", "b", "x.png", "tmp", "shadow"} {
			if d.Name() == bad {
				t.Errorf("%s is named after an attachment", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzCheck checks that Check never panics, refuses with an Invalid error
// naming the attachment, allocates little for small inputs, and accepts
// only PNG, JPEG or WebP images with positive dimensions within the limits.
func FuzzCheck(f *testing.F) {
	f.Add("x.png", coretest.PNG(1))
	f.Add("x.webp", tinyWebP)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 3, 2)), nil); err != nil {
		f.Fatal(err)
	}
	f.Add("a/b\\c.jpg", jpg.Bytes())
	for _, b := range bombs() {
		f.Add(b.name, b.data)
	}
	f.Add("cat.png", []byte("<html><body>cat</body></html>"))
	lim := imagecheck.Limits{MaxBytes: 1 << 20, MaxSide: 4096, MaxPixels: 8_000_000}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := imagecheck.Check(name, data, lim)
		runtime.ReadMemStats(&after)
		display := imagecheck.DisplayName(name)
		if n := after.TotalAlloc - before.TotalAlloc; len(data) <= 64<<10 && n > maxCheckBytes {
			t.Fatalf("checking %d bytes allocated %d bytes", len(data), n)
		}
		if strings.ContainsAny(display, "/\\\x00\n") || display != imagecheck.DisplayName(display) {
			t.Fatalf("DisplayName(%q) = %q", name, display)
		}
		if err != nil {
			if core.KindOf(err) != core.Invalid || !strings.HasPrefix(core.UserMessage(err, "ref"), display+" ") {
				t.Fatalf("error %v: want an Invalid error naming %q", err, display)
			}
			return
		}
		if img.Name != display || !bytes.Equal(img.Data, data) {
			t.Fatalf("accepted as %q with other bytes", img.Name)
		}
		decodeConfig, ok := map[string]func(io.Reader) (image.Config, error){
			"image/png": png.DecodeConfig, "image/jpeg": jpeg.DecodeConfig, "image/webp": webp.DecodeConfig,
		}[img.MIME]
		if !ok {
			t.Fatalf("accepted an image of type %q", img.MIME)
		}
		cfg, err := decodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("accepted %s bytes whose header does not read: %v", img.MIME, err)
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > lim.MaxSide || cfg.Height > lim.MaxSide ||
			int64(cfg.Width)*int64(cfg.Height) > lim.MaxPixels {
			t.Fatalf("accepted a %dx%d image", cfg.Width, cfg.Height)
		}
	})
}

// pngBomb returns a complete, small PNG (signature, IHDR, a tiny IDAT and
// IEND) whose header declares w×h pixels of color type ct (2 RGB, 3
// paletted, with a one-entry PLTE).
func pngBomb(w, h uint32, ct byte) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		body := append([]byte(typ), data...)
		out = append(out, body...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	chunk("IHDR", append(ihdr, 8, ct, 0, 0, 0))
	if ct == 3 {
		chunk("PLTE", []byte{0, 0, 0})
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 4096)) // a few rows of zeros: squeezes to a few bytes
	_ = zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return out
}

// gifBomb returns a GIF with a global palette and one frame, both declaring
// w×h pixels.
func gifBomb(w, h uint16) []byte {
	out := []byte("GIF89a")
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	out = append(out, 0xf0, 0, 0) // a global palette of 2 colors
	out = append(out, 0, 0, 0, 255, 255, 255)
	out = append(out, 0x2c, 0, 0, 0, 0) // image descriptor at 0,0
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	out = append(out, 0, 2, 2, 0x4c, 0x01, 0) // LZW: min code size 2, a clear and stop
	return append(out, ';')
}

// riff wraps chunks in a RIFF WEBP container.
func riff(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body)))
	return append(out, body...)
}

// webpChunk returns a RIFF chunk, padded to an even length.
func webpChunk(id string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint32([]byte(id), uint32(len(data)))
	out = append(out, data...)
	if len(data)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// vp8lHeader returns a VP8L chunk's signature and header for w×h pixels
// (at most 16384 on a side), followed by a few bytes of bitstream.
func vp8lHeader(w, h uint32) []byte {
	bits := (w - 1) | (h-1)<<14
	out := binary.LittleEndian.AppendUint32([]byte{0x2f}, bits)
	return append(out, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00)
}

// webpVP8XBomb returns an extended WebP whose canvas is w×h pixels (the
// VP8X chunk allows up to 2^24 a side; x/image/webp up to 2^31 pixels).
func webpVP8XBomb(w, h uint32) []byte {
	x := []byte{0, 0, 0, 0}
	x = append(x, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	x = append(x, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	return riff(webpChunk("VP8X", x), webpChunk("VP8L", vp8lHeader(w, h)))
}

// webpVP8LBomb returns a lossless WebP declaring w×h pixels.
func webpVP8LBomb(w, h uint32) []byte { return riff(webpChunk("VP8L", vp8lHeader(w, h))) }

// webpVP8Bomb returns a lossy WebP whose key frame declares w×h pixels (at
// most 16383 a side).
func webpVP8Bomb(w, h uint16) []byte {
	frame := []byte{0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a} // key frame, shown, first partition of 10 bytes
	frame = binary.LittleEndian.AppendUint16(frame, w&0x3fff)
	frame = binary.LittleEndian.AppendUint16(frame, h&0x3fff)
	frame = append(frame, make([]byte, 16)...)
	return riff(webpChunk("VP8 ", frame))
}

// jpegBomb returns a baseline greyscale JPEG whose frame header declares
// w×h pixels, with a scan header and no data.
func jpegBomb(w, h uint16) []byte {
	out := []byte{0xff, 0xd8}                                                                        // SOI
	out = append(out, 0xff, 0xc0, 0, 11, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0) // SOF0
	out = append(out, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 0x3f, 0)                                         // SOS
	return append(out, 0xff, 0xd9)                                                                   // EOI
}
