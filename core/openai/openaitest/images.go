package openaitest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// ProvenanceMarker is the text every image the fake returns carries in a
// metadata block standing for a C2PA manifest: a "caBX" chunk in PNG (where
// C2PA stores its JUMBF box), an APP11 segment in JPEG, a "C2PA" chunk in
// WebP. Re-encoding an image drops it, so tests can prove that bytes were
// passed through untouched by looking for it.
const ProvenanceMarker = "easel-fake-c2pa-manifest"

// tinyWebP is a valid 1x1 lossless WebP (RIFF, WEBP, one VP8L chunk).
var tinyWebP = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

// makeImage encodes a small solid image whose colour depends on seq, in
// format ("png", "jpeg" or "webp"), with a fake provenance block naming seq.
// Its dimensions are the requested size divided by scale (at most 64 pixels
// per edge when scale > 1) so a test can check the aspect ratio; "auto" or ""
// gives 16x16.
func makeImage(seq int, format, size string, scale int, partial bool) ([]byte, error) {
	w, h := 16, 16
	if sw, sh, ok := parseSize(size); ok {
		w, h = sw, sh
		if scale > 1 {
			w, h = clamp(sw/scale, 1, 64), clamp(sh/scale, 1, 64)
		}
	}
	kind := "final"
	if partial {
		kind = "partial"
	}
	manifest := fmt.Sprintf("%s seq=%d kind=%s", ProvenanceMarker, seq, kind)
	c := seqColor(seq, partial)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	switch format {
	case "jpeg":
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			return nil, err
		}
		return withJPEGSegment(buf.Bytes(), manifest), nil
	case "webp":
		return withWebPChunk(tinyWebP, manifest), nil
	default:
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		return withPNGChunk(buf.Bytes(), "caBX", manifest), nil
	}
}

// seqColor returns a colour that differs between consecutive sequence
// numbers; partial images are paler than finals.
func seqColor(seq int, partial bool) color.NRGBA {
	c := color.NRGBA{
		R: uint8(seq * 67),
		G: uint8(seq*131 + 40),
		B: uint8(seq*29 + 90),
		A: 255,
	}
	if partial {
		c.R, c.G, c.B = 128+c.R/2, 128+c.G/2, 128+c.B/2
	}
	return c
}

// withPNGChunk inserts an ancillary chunk right after IHDR.
func withPNGChunk(data []byte, typ, payload string) []byte {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	var chunk bytes.Buffer
	_ = binary.Write(&chunk, binary.BigEndian, uint32(len(payload)))
	chunk.WriteString(typ)
	chunk.WriteString(payload)
	_ = binary.Write(&chunk, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), payload...)))
	out := make([]byte, 0, len(data)+chunk.Len())
	out = append(out, data[:ihdrEnd]...)
	out = append(out, chunk.Bytes()...)
	return append(out, data[ihdrEnd:]...)
}

// withJPEGSegment inserts an APP11 segment (where C2PA keeps its JUMBF boxes)
// right after the SOI marker.
func withJPEGSegment(data []byte, payload string) []byte {
	seg := []byte{0xFF, 0xEB, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := make([]byte, 0, len(data)+len(seg))
	out = append(out, data[:2]...)
	out = append(out, seg...)
	return append(out, data[2:]...)
}

// withWebPChunk appends a "C2PA" RIFF chunk and fixes the RIFF size.
func withWebPChunk(data []byte, payload string) []byte {
	out := append([]byte{}, data...)
	out = append(out, "C2PA"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(payload)))
	out = append(out, payload...)
	if len(payload)%2 == 1 {
		out = append(out, 0)
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func clamp(v, lo, hi int) int {
	return max(lo, min(hi, v))
}
