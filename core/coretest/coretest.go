// Package coretest holds helpers shared by the tests of Easel's packages.
package coretest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
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
