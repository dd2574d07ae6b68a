// Package coretest holds helpers shared by the tests of Easel's packages.
package coretest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"unicode/utf8"
)

// PNG returns a valid 32x32 PNG whose bytes differ for every seed, for fake
// providers and attachments in tests.
func PNG(seed int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = byte(seed*7 + i)
	}
	img.Set(0, 0, color.RGBA{byte(seed), byte(seed >> 8), 1, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err) // encoding an in-memory RGBA image cannot fail
	}
	return b.Bytes()
}

// Hostile is a prompt that acts on a terminal, or disguises a message, if
// it is shown as typed: it clears the screen, sets the window title, plants
// a hyperlink, and carries NUL, the C1 control CSI (as a raw byte and as a
// character), DEL, a right-to-left override, a bidi isolate and bytes that
// are not UTF-8.
const Hostile = "a fox\x1b[2J\x1b[H \x1b]0;pwned\x07 \x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\" +
	" \x00 \x9b31m \u009b31m \x7f \u202egnp.exe \u2066isolated\u2069 \xff\xfe"

// Inert returns nil if out is safe to show: valid UTF-8 with no control
// character but newline and tab, no C1 control, no DEL and no bidirectional
// formatting character. Otherwise it returns an error naming the first
// offender and where it is.
func Inert(out string) error {
	if !utf8.ValidString(out) {
		return fmt.Errorf("bytes that are not UTF-8 in %q", out)
	}
	for i, r := range out {
		acts := r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r < 0xa0 ||
			strings.ContainsRune("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", r)
		if acts {
			return fmt.Errorf("%U at byte %d, in %q", r, i, out[max(0, i-40):min(len(out), i+40)])
		}
	}
	return nil
}
