package preview

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"sync"

	"github.com/easel-bot/easel/core"
)

// jpegQuality is the quality of JPEG output.
const jpegQuality = 90

// encoder writes images in one output format.
type encoder struct {
	jpeg      bool
	mime, ext string
}

// encoderFor returns the encoder for f.Format, which CheckRequest has
// limited to "", "png" and "jpeg".
func encoderFor(f core.Flags) encoder {
	mime := core.MIMEForFormat(f.Format)
	return encoder{jpeg: f.Format == "jpeg", mime: mime, ext: core.ExtForMIME(mime)}
}

// pngEncoder favours speed: a preview is looked at once, not archived. Its
// buffer pool reuses the compressor's large state between images.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngBuffers{}}

// pngBuffers is a png.EncoderBufferPool backed by a sync.Pool.
type pngBuffers struct{ pool sync.Pool }

// Get returns a pooled buffer, or nil, which tells png to allocate one.
func (p *pngBuffers) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

// Put returns b to the pool.
func (p *pngBuffers) Put(b *png.EncoderBuffer) { p.pool.Put(b) }

// encode returns img in e's format.
func (e encoder) encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	if e.jpeg {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality})
	} else {
		err = pngEncoder.Encode(&buf, img)
	}
	if err != nil {
		return nil, fmt.Errorf("preview: encode %s: %w", e.mime, err)
	}
	return buf.Bytes(), nil
}
