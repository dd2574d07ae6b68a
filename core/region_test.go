package core

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
)

// TestRegionPixels: every named region and some boxes, on an even and an
// odd image, cover exactly the pixels worked out by hand (each edge at the
// nearest pixel boundary, halves rounded up), and the mask built for each
// (checked on a 101x67 image) is a PNG of the image's size with an alpha
// channel, transparent on exactly those pixels and opaque black elsewhere.
func TestRegionPixels(t *testing.T) {
	type size struct{ w, h int }
	even, odd := size{1024, 1024}, size{1023, 767}
	tests := []struct {
		region string
		sz     size
		want   image.Rectangle
	}{
		{"top", even, image.Rect(0, 0, 1024, 512)},
		{"bottom", even, image.Rect(0, 512, 1024, 1024)},
		{"left", even, image.Rect(0, 0, 512, 1024)},
		{"right", even, image.Rect(512, 0, 1024, 1024)},
		{"top-left", even, image.Rect(0, 0, 341, 341)},
		{"top-center", even, image.Rect(341, 0, 683, 341)},
		{"top-right", even, image.Rect(683, 0, 1024, 341)},
		{"center-left", even, image.Rect(0, 341, 341, 683)},
		{"center", even, image.Rect(341, 341, 683, 683)},
		{"center-right", even, image.Rect(683, 341, 1024, 683)},
		{"bottom-left", even, image.Rect(0, 683, 341, 1024)},
		{"bottom-center", even, image.Rect(341, 683, 683, 1024)},
		{"bottom-right", even, image.Rect(683, 683, 1024, 1024)},
		// 1023/2 = 511.5 → 512; 767/2 = 383.5 → 384; 767/3 = 255.67 → 256,
		// 2·767/3 = 511.33 → 511; 1023/3 = 341 exactly.
		{"top", odd, image.Rect(0, 0, 1023, 384)},
		{"bottom", odd, image.Rect(0, 384, 1023, 767)},
		{"left", odd, image.Rect(0, 0, 512, 767)},
		{"right", odd, image.Rect(512, 0, 1023, 767)},
		{"top-left", odd, image.Rect(0, 0, 341, 256)},
		{"top-center", odd, image.Rect(341, 0, 682, 256)},
		{"top-right", odd, image.Rect(682, 0, 1023, 256)},
		{"center-left", odd, image.Rect(0, 256, 341, 511)},
		{"center", odd, image.Rect(341, 256, 682, 511)},
		{"center-right", odd, image.Rect(682, 256, 1023, 511)},
		{"bottom-left", odd, image.Rect(0, 511, 341, 767)},
		{"bottom-center", odd, image.Rect(341, 511, 682, 767)},
		{"bottom-right", odd, image.Rect(682, 511, 1023, 767)},
		// Boxes: 10% of 1023 = 102.3 → 102, 60% = 613.8 → 614; 20% of 767
		// = 153.4 → 153, 60% = 460.2 → 460.
		{"10,20,50,40", odd, image.Rect(102, 153, 614, 460)},
		{"10,20,50,40", even, image.Rect(102, 205, 614, 614)},
		// 12.5% of 1023 = 127.875 → 128, 37.5% = 383.625 → 384.
		{"12.5,0,25,100", odd, image.Rect(128, 0, 384, 767)},
		// Halves of odd edges round up: 511.5 → 512, 383.5 → 384.
		{"50,50,50,50", odd, image.Rect(512, 384, 1023, 767)},
		{"0,0,100,100", odd, image.Rect(0, 0, 1023, 767)},
		{"33.33%,0%,33.34%,1", size{3, 100}, image.Rect(1, 0, 2, 1)},
		{"0.01,0,0.01,100", size{64, 64}, image.Rect(0, 0, 0, 64)}, // narrower than a pixel: empty
	}
	for _, tt := range tests {
		r, _, err := ParseRegion(tt.region)
		if err != nil {
			t.Fatalf("ParseRegion(%q): %v", tt.region, err)
		}
		got := r.Pixels(tt.sz.w, tt.sz.h)
		if got != tt.want {
			t.Errorf("%s on %dx%d covers %v, want %v", tt.region, tt.sz.w, tt.sz.h, got, tt.want)
			continue
		}
		if got.Empty() {
			continue
		}
		// The mask of the same region on a small odd image (a megapixel
		// mask is slow to check under the race detector).
		checkMask(t, tt.region, r.Pixels(101, 67), 101, 67)
	}
}

// checkMask builds the mask of rect on a w×h image and checks every pixel.
func checkMask(t *testing.T, name string, rect image.Rectangle, w, h int) {
	t.Helper()
	m, err := RegionMask(rect, w, h)
	if err != nil {
		t.Fatal(err)
	}
	if m.MIME != "image/png" || !bytes.HasPrefix(m.Data, []byte("\x89PNG")) {
		t.Fatalf("%s: the mask is %s, not a PNG", name, m.MIME)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(m.Data))
	if err != nil || cfg.Width != w || cfg.Height != h || cfg.ColorModel != color.NRGBAModel {
		t.Fatalf("%s: mask %dx%d, model %v, err %v; want %dx%d with an alpha channel", name, cfg.Width, cfg.Height, cfg.ColorModel, err, w, h)
	}
	img, _ := png.Decode(bytes.NewReader(m.Data))
	nrgba, ok := img.(*image.NRGBA)
	if !ok {
		t.Fatalf("%s: the mask decodes as %T", name, img)
	}
	wrong := 0
	for y := range h {
		for x := range w {
			px := nrgba.Pix[y*nrgba.Stride+4*x : y*nrgba.Stride+4*x+4]
			in := x >= rect.Min.X && x < rect.Max.X && y >= rect.Min.Y && y < rect.Max.Y
			if (in && (px[3] != 0)) || (!in && (px[3] != 255 || px[0]|px[1]|px[2] != 0)) {
				wrong++
			}
		}
	}
	if wrong != 0 {
		t.Errorf("%s on %dx%d: %d mask pixels wrong", name, w, h, wrong)
	}
}

func TestParseRegionSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"TOP-LEFT": "top-left", "top_left": "top-left", " top  left ": "top-left", "centre": "center", "middle-left": "center-left",
		"10,20,50,40": "10,20,50,40", "10%,20%,50%,40%": "10,20,50,40", " 10 , 20 , 50 , 40 ": "10,20,50,40",
		"010,20.50,50.0,40.05": "10,20.5,50,40.05", ".5,0,99.5,100": "0.5,0,99.5,100",
	} {
		_, got, err := ParseRegion(in)
		if err != nil || got != want {
			t.Errorf("ParseRegion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestParseRegionRefuses: each bad value gets an Invalid error naming what
// is wrong, and no control character of the value reaches the message.
func TestParseRegionRefuses(t *testing.T) {
	tests := []struct{ in, says string }{
		{"topleft", "is not a region: use a part of the image: top, bottom"},
		{"", "is not a region"},
		{"10,20,50", "has 3 numbers; a box takes 4"},
		{"1,2,3,4,5", "has 5 numbers"},
		{strings.Repeat(",", 5000), "has 5001 numbers"},
		{"10,20,0,40", "zero size"},
		{"10,20,50,0.00", "zero size"},
		{"-5,20,50,40", `x is "-5", not a percentage`},
		{"10,-0,50,40", `y is "-0", not a percentage`},
		{"101,0,10,10", `x is "101", out of range`},
		{"0,0,100.01,10", `w (the width) is "100.01", out of range`},
		{"99999999999999999999999999,0,1,1", "out of range"},
		{"1e2,0,1,1", "not a percentage"},
		{"NaN,0,10,10", `x is "nan", not a percentage`},
		{"inf,0,10,10", "not a percentage"},
		{"0x10,0,10,10", "not a percentage"},
		{"10.123,0,10,10", "not a percentage: use a number from 0 to 100 with at most two decimals"},
		{"10.,0,10,10", "not a percentage"},
		{".,0,10,10", "not a percentage"},
		{"60,0,50,10", "reaches past the right edge (x + w is 110%"},
		{"0,99.99,10,0.02", "reaches past the bottom edge (y + h is 100.01%"},
		{"\x1b[31mtop", `"\x1b[31mtop" is not a region`},
		{"top\u202eleft", `is not a region`},
		{"1,2,3,\x1b]0;pwned\x07", `h (the height) is "\x1b]0;pwned\a"`},
	}
	for _, tt := range tests {
		_, _, err := ParseRegion(tt.in)
		if KindOf(err) != Invalid || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("ParseRegion(%q) = %v; want an Invalid error saying %q", tt.in, err, tt.says)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x1b\x07\u202e") {
			t.Errorf("ParseRegion(%q): the message carries control characters: %q", tt.in, err)
		}
		if len(err.Error()) > 600 {
			t.Errorf("ParseRegion(%q): a message of %d bytes", tt.in, len(err.Error()))
		}
	}
}

func TestRegionFlags(t *testing.T) {
	_, f, err := ParsePrompt("make the sky red --region TOP --strict-region", testLimits)
	if err != nil || f.Region != "top" || f.StrictRegion == nil || !*f.StrictRegion {
		t.Fatalf("flags %+v, err %v", f, err)
	}
	_, f, err = ParsePrompt("make it red --strict-region off --region 10,10,20,20", testLimits)
	if err != nil || f.Region != "10,10,20,20" || f.StrictRegion == nil || *f.StrictRegion {
		t.Fatalf("flags %+v, err %v", f, err)
	}
	_, f, err = ParsePrompt("make it red --strict-region=yes --region=center", testLimits)
	if err != nil || f.Region != "center" || !*f.StrictRegion {
		t.Fatalf("flags %+v, err %v", f, err)
	}
	for in, says := range map[string]string{
		"red --region":                     "--region needs a value: a part of the image",
		"red --region 10,20,0,5":           "zero size",
		"red --region top --region bottom": "--region is given twice",
		"red --strict-region=maybe":        `--strict-region "maybe" is not allowed`,
		"red --strict-region maybe":        `unexpected "maybe" after the flags`,
	} {
		if _, _, err := ParsePrompt(in, testLimits); KindOf(err) != Invalid || !strings.Contains(err.Error(), says) {
			t.Errorf("ParsePrompt(%q) = %v, want an error saying %q", in, err, says)
		}
	}
	if got := (Flags{}).Inherit(Flags{Region: "top", StrictRegion: new(true)}); got.Region != "" || got.StrictRegion != nil {
		t.Errorf("a region was inherited: %+v", got)
	}
}

// TestComposite: a result that changes everything, of another size than
// the base, laid onto the base inside a region changes no pixel outside
// it and every pixel inside it.
func TestComposite(t *testing.T) {
	base := image.NewNRGBA(image.Rect(0, 0, 101, 67))
	for i := range base.Pix {
		base.Pix[i] = uint8(i * 7)
	}
	for i := 3; i < len(base.Pix); i += 4 {
		base.Pix[i] = 255
	}
	result := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for i := 0; i < len(result.Pix); i += 4 {
		result.Pix[i], result.Pix[i+1], result.Pix[i+2], result.Pix[i+3] = 1, 2, 3, 255
	}
	r, _, _ := ParseRegion("center")
	rect := r.Pixels(101, 67)
	out, err := Composite(encodePNG(t, base), encodePNG(t, result), rect)
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(out.Data))
	if err != nil {
		t.Fatal(err)
	}
	if n := ChangedOutside(base, got, rect); n != 0 {
		t.Errorf("%d pixels changed outside the region", n)
	}
	full := image.Rect(0, 0, 101, 67)
	if n, want := ChangedOutside(base, got, image.Rectangle{}), rect.Dx()*rect.Dy(); n != want {
		t.Errorf("%d pixels changed in all, want the %d of the region", n, want)
	}
	if n := ChangedOutside(base, got, full); n != 0 {
		t.Errorf("ChangedOutside of the whole image = %d", n)
	}
	if _, err := Composite(Image{Data: []byte("not an image")}, encodePNG(t, result), rect); err == nil {
		t.Error("a broken base was composited")
	}
}

func encodePNG(t *testing.T, img image.Image) Image {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return Image{Data: buf.Bytes(), MIME: "image/png"}
}

// FuzzParseRegion: any value is either refused with an Invalid error free
// of control characters, or read as a non-empty region inside the image
// whose canonical spelling reads back as the same region.
func FuzzParseRegion(f *testing.F) {
	for _, s := range []string{"top", "Bottom_Right", "10,20,50,40", "0,0,100,100", "99.99,99.99,0.01,0.01", "-1,0,1,1",
		"1e309,0,1,1", "NaN,NaN,NaN,NaN", ",,,", "1,,2,3", "\x1b[31m", "１０,20,30,40", "50%,50%,50%,50%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, spelling, err := ParseRegion(s)
		if err != nil {
			if KindOf(err) != Invalid || strings.ContainsAny(err.Error(), "\x00\x1b\x07\u202e") {
				t.Fatalf("ParseRegion(%q): %v", s, err)
			}
			return
		}
		if r.X0 < 0 || r.Y0 < 0 || r.X1 > regionUnit || r.Y1 > regionUnit || r.X0 >= r.X1 || r.Y0 >= r.Y1 {
			t.Fatalf("ParseRegion(%q) = %+v, outside the image or empty", s, r)
		}
		again, spelling2, err := ParseRegion(spelling)
		if err != nil || again != r || spelling2 != spelling {
			t.Fatalf("%q reads as %q, which reads as %+v %q %v", s, spelling, again, spelling2, err)
		}
		if p := r.Pixels(1024, 1024); p.Min.X < 0 || p.Max.X > 1024 || p.Min.Y < 0 || p.Max.Y > 1024 {
			t.Fatalf("%q covers %v of a 1024x1024 image", s, p)
		}
	})
}
