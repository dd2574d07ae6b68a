package openaitest

import (
	"bytes"
	"encoding/binary"
	"image"
	_ "image/jpeg" // registers JPEG with image.DecodeConfig
	_ "image/png"

	_ "golang.org/x/image/webp"
)

// checkMask checks a mask as OpenAI does: a PNG with an alpha channel
// (color type 4 or 6, or a palette with transparency) whose dimensions are
// those of image, the image it applies to. param names it in the error.
func checkMask(param string, mask, img []byte) *reqError {
	mw, mh, alpha, ok := pngHeader(mask)
	if !ok {
		return invalid(param, "invalid_image_format", "Invalid mask: the mask must be a valid PNG file.")
	}
	if !alpha {
		return invalid(param, "invalid_image_mask", "Invalid mask: the mask must have an alpha channel; transparent areas mark where the image is edited.")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return invalid(param, "invalid_image", "Invalid image: the image the mask applies to cannot be read.")
	}
	if cfg.Width != mw || cfg.Height != mh {
		return invalid(param, "invalid_image_mask", "Invalid mask: the mask (%dx%d) and the image (%dx%d) must have the same dimensions.", mw, mh, cfg.Width, cfg.Height)
	}
	return nil
}

// pngHeader reads a PNG's dimensions from its IHDR chunk and whether it
// has an alpha channel: colour type 4 (grey and alpha), 6 (RGBA), or a
// palette (3) or other type with a tRNS chunk before its image data.
func pngHeader(data []byte) (w, h int, alpha, ok bool) {
	const sig = "\x89PNG\r\n\x1a\n"
	if len(data) < 33 || string(data[:8]) != sig || string(data[12:16]) != "IHDR" {
		return 0, 0, false, false
	}
	w, h = int(binary.BigEndian.Uint32(data[16:20])), int(binary.BigEndian.Uint32(data[20:24]))
	colorType := data[25]
	if colorType == 4 || colorType == 6 {
		return w, h, true, true
	}
	for off := 8; off+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off : off+4]))
		typ := string(data[off+4 : off+8])
		if typ == "tRNS" {
			return w, h, true, true
		}
		if typ == "IDAT" || n < 0 || n > len(data) {
			break
		}
		off += 12 + n
	}
	return w, h, false, true
}
