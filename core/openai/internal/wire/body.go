package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// An answer carries each image as a base64 string of about 1.37 times the
// image's size. Decoding the whole answer as JSON would hold the body, the
// string and the image at once; instead the reader below decodes the values
// of the keys that hold images ("b64_json" in the Images API) straight from
// the body into their images, and hands only the rest of the document
// (small: usage, format, sizes) to encoding/json.

// imageReader reads one JSON document (or, for server-sent events, one line
// of one) from r, taking out the string values of keys.
type imageReader struct {
	r    *bufio.Reader
	keys []string // the keys whose string values are base64 images
	// skip, if set, is asked before an image is decoded, with the value of
	// the document's "type" key read so far ("" if none): true skips the
	// image, which is returned as nil.
	skip func(typ string) bool
}

// read returns the document with every string value of a key in keys
// replaced by "" (null and other values stay), and
// the decoded images in document order. With line set it stops at a newline
// outside a string (server-sent events carry one JSON line per data field).
// It returns io.ErrUnexpectedEOF for a document cut short and ErrBadImage for
// a value that is not base64.
func (ir *imageReader) read(line bool) (rest []byte, images [][]byte, err error) {
	var out bytes.Buffer
	var lastString []byte // the last string read outside a value, if short
	afterString, b64Next, typeNext := false, false, false
	var typ string // the value of the document's "type" key
	for {
		c, err := ir.r.ReadByte()
		if err == io.EOF {
			return out.Bytes(), images, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case c == '"' && b64Next && ir.skip != nil && ir.skip(typ):
			if err := ir.skipString(); err != nil {
				return nil, nil, err
			}
			images = append(images, nil)
			out.WriteString(`""`)
			afterString, b64Next = false, false
		case c == '"' && b64Next:
			img, err := ir.decodeString()
			if err != nil {
				return nil, nil, err
			}
			images = append(images, img)
			out.WriteString(`""`)
			afterString, b64Next = false, false
		case c == '"':
			s, err := ir.readString()
			if err != nil {
				return nil, nil, err
			}
			out.WriteByte('"')
			out.Write(s)
			out.WriteByte('"')
			if typeNext {
				typ, typeNext = string(s), false
			}
			lastString, afterString = s, true
		case c == ':':
			out.WriteByte(c)
			b64Next = afterString && slices.Contains(ir.keys, string(lastString))
			typeNext = afterString && string(lastString) == "type"
			afterString = false
		case c == '\n' && line:
			return out.Bytes(), images, nil
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			out.WriteByte(c)
		default:
			out.WriteByte(c)
			afterString, b64Next, typeNext = false, false, false
		}
	}
}

// readString reads the rest of a JSON string whose opening quote was read,
// returning its raw contents without the closing quote.
func (ir *imageReader) readString() ([]byte, error) {
	var s []byte
	for {
		chunk, err := ir.r.ReadSlice('"')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			s = append(s, chunk...)
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		s = append(s, chunk...)
		if backslashes(s[:len(s)-1])%2 == 0 {
			return s[:len(s)-1], nil
		}
	}
}

// backslashes counts the backslashes that end b.
func backslashes(b []byte) int {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\\' {
		n++
	}
	return n
}

// b64Scratch holds the base64 text of an image while it is decoded, so that
// reading an answer allocates the decoded image and little else. A new
// buffer is made the size of the last image's text (b64Size), so that
// gathering the text seldom grows it: growing it by doubling cost more
// copying than the decoding itself.
var (
	b64Scratch = sync.Pool{New: func() any { return new([]byte) }}
	b64Size    atomic.Int64
)

// decodeString base64-decodes the rest of a JSON string whose opening quote
// was read. The text is gathered in a pooled buffer and decoded in one
// call into an image of the exact size.
func (ir *imageReader) decodeString() ([]byte, error) {
	bp := b64Scratch.Get().(*[]byte)
	if want := int(b64Size.Load()) + 64<<10; cap(*bp) < want {
		*bp = make([]byte, 0, want)
	}
	text, err := ir.appendBase64((*bp)[:0])
	defer func() {
		*bp = text[:0]
		b64Scratch.Put(bp)
	}()
	if err != nil {
		return nil, err
	}
	b64Size.Store(int64(min(len(text), 16<<20)))
	img := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(img, text)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrBadImage, err)
	case n == 0:
		return nil, ErrBadImage
	}
	return img[:n], nil
}

// appendBase64 appends the characters of a JSON string whose opening quote
// was read to b, up to its closing quote. Base64 needs no escapes but "\/",
// which some encoders write for "/"; any other is ErrBadImage.
func (ir *imageReader) appendBase64(b []byte) ([]byte, error) {
	start := len(b)
	for {
		chunk, err := ir.r.ReadSlice('"')
		if errors.Is(err, bufio.ErrBufferFull) {
			b = append(b, chunk...)
			continue
		}
		if errors.Is(err, io.EOF) {
			return b, io.ErrUnexpectedEOF
		}
		if err != nil {
			return b, err
		}
		b = append(b, chunk[:len(chunk)-1]...)
		break
	}
	text := b[start:]
	if bytes.IndexByte(text, '\\') < 0 {
		return b, nil
	}
	// Unescape in place: "\/" becomes "/". A string that ends in a
	// backslash had its closing quote escaped, which base64 never needs.
	w := 0
	for r := 0; r < len(text); r++ {
		c := text[r]
		if c == '\\' {
			if r+1 == len(text) || text[r+1] != '/' {
				esc := "\""
				if r+1 < len(text) {
					esc = string(text[r+1])
				}
				return b, fmt.Errorf("%w: escape \\%s in base64", ErrBadImage, esc)
			}
			r++
			c = '/'
		}
		text[w] = c
		w++
	}
	return b[:start+w], nil
}

// skipString reads past the rest of a JSON string whose opening quote was
// read, keeping nothing: an image nobody will look at. A backslash before
// the closing quote would escape it, which base64 never needs.
func (ir *imageReader) skipString() error {
	var last byte // the last character read before the current chunk
	for {
		chunk, err := ir.r.ReadSlice('"')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(chunk) > 0 {
				last = chunk[len(chunk)-1]
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		if len(chunk) > 1 {
			last = chunk[len(chunk)-2]
		}
		if last == '\\' {
			return fmt.Errorf("%w: escape \\\" in base64", ErrBadImage)
		}
		return nil
	}
}

// Answer is one JSON answer or stream event, its images taken out.
type Answer struct {
	// Rest is the JSON document with each image's string replaced by "".
	Rest []byte
	// Images are the decoded images, in document order.
	Images [][]byte
}

// ReadAnswer reads a JSON (non-streaming) answer and closes its body,
// decoding the string values of keys as base64 images. It returns
// io.ErrUnexpectedEOF (or the body's read error) for an answer cut short and
// ErrBadImage for an image that is not base64.
func ReadAnswer(resp *http.Response, keys ...string) (Answer, error) {
	defer resp.Body.Close()
	ir := &imageReader{r: bufio.NewReaderSize(resp.Body, 64<<10), keys: keys}
	rest, images, err := ir.read(false)
	return Answer{Rest: rest, Images: images}, err
}

// ReadEvents reads server-sent events and closes the body, decoding the
// string values of keys as base64 images, and calls fn with each event's
// data until fn returns done or an error, which ReadEvents returns. A
// stream that ends before fn is done returns ErrTruncated: it must end with
// its completed event.
//
// skip, if not nil, is asked before each image is decoded, with the value
// of its event's "type" key when it came before the image ("" otherwise):
// true leaves the image undecoded, nil in Answer.Images, for an image
// nobody will look at (a partial image past those shown).
func ReadEvents(resp *http.Response, keys []string, skip func(typ string) bool, fn func(Answer) (done bool, err error)) error {
	defer resp.Body.Close()
	ir := &imageReader{r: bufio.NewReaderSize(resp.Body, 64<<10), keys: keys, skip: skip}
	var ev Answer
	dispatch := func() (bool, error) {
		if len(ev.Rest) == 0 && len(ev.Images) == 0 {
			return false, nil
		}
		done, err := fn(ev)
		ev = Answer{}
		return done, err
	}
	for {
		name, err := ir.fieldName()
		if errors.Is(err, io.EOF) {
			if done, err := dispatch(); done || err != nil {
				return err
			}
			return ErrTruncated
		}
		if err != nil {
			return err
		}
		switch name {
		case "\n": // a blank line ends an event
			if done, err := dispatch(); done || err != nil {
				return err
			}
		case "data":
			if c, err := ir.r.Peek(1); err == nil && c[0] == ' ' {
				_, _ = ir.r.ReadByte()
			}
			rest, images, err := ir.read(true)
			if err != nil {
				return err
			}
			if len(ev.Rest) > 0 {
				ev.Rest = append(ev.Rest, '\n')
			}
			ev.Rest = append(ev.Rest, bytes.TrimRight(rest, "\r")...)
			ev.Images = append(ev.Images, images...)
		default: // event:, id:, retry: and comments carry nothing Easel needs
			if err := ir.skipLine(); err != nil {
				return err
			}
		}
	}
}

// fieldName reads a server-sent event field name up to its colon, or
// returns "\n" for a blank line. A line without a colon is skipped.
func (ir *imageReader) fieldName() (string, error) {
	var name []byte
	for {
		c, err := ir.r.ReadByte()
		if err != nil {
			if len(name) > 0 && errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		switch {
		case c == '\r':
		case c == '\n' && len(name) == 0:
			return "\n", nil
		case c == '\n':
			name = name[:0] // a field without a value: ignored
		case c == ':':
			return string(name), nil
		case len(name) < 64:
			name = append(name, c)
		}
	}
}

// skipLine discards the rest of the current line.
func (ir *imageReader) skipLine() error {
	for {
		_, err := ir.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
}
