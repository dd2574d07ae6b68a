package slack

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

func TestAttachmentIsAnInput(t *testing.T) {
	h := newHarness(t, options{})
	logo := testPNG(42)
	f := h.fake.AddFile(ana, "logo.png", "image/png", logo)
	mention := "<@" + h.fake.BotUserID + "> put this logo on a mug"
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: mention, Files: []slacktest.File{f}})
	h.deliver(envs...)
	h.images(1)
	req := h.gen.Requests()[0]
	if len(req.Inputs) != 1 || !bytes.Equal(req.Inputs[0].Data, logo) {
		t.Fatalf("provider got %d inputs, want the attached logo", len(req.Inputs))
	}

	// A reply with an attachment in the session thread: a refinement with
	// both the previous image and the attachment.
	first := h.images(1)[0]
	mug := testPNG(43)
	g := h.fake.AddFile(ana, "mug.png", "image/png", mug)
	_, envs = h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "use this mug instead", ThreadTS: first.ThreadTS,
		Files: []slacktest.File{g}})
	h.deliver(envs...)
	h.images(2)
	req = h.gen.Requests()[1]
	if req.Kind != core.KindRefine || req.Base == nil || !bytes.Equal(req.Base.Data, first.Data) ||
		len(req.Inputs) != 1 || !bytes.Equal(req.Inputs[0].Data, mug) {
		t.Errorf("reply with attachment sent %s with %d inputs", req.Kind, len(req.Inputs))
	}
	for _, c := range h.fake.Calls("download") {
		if c.Token != h.fake.BotToken || c.Status != http.StatusOK {
			t.Errorf("download with token %q answered %d", c.Token, c.Status)
		}
	}
}

func TestBadAttachmentsAreExplained(t *testing.T) {
	h := newHarness(t, options{cfg: func(c *Config) { c.Attachments.MaxBytes = 4 << 10 }})
	var foreignHits atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
		w.Write(testPNG(1))
	}))
	defer foreign.Close()

	large := h.fake.AddFile(ana, "huge.png", "image/png", bigPNG(t))
	text := h.fake.AddFile(ana, "notes.png", "image/png", []byte("not an image at all, just words"))
	elsewhere := slacktest.File{ID: "F0EVIL", Name: "evil.png", Mimetype: "image/png", Size: 100,
		URLPrivate: foreign.URL + "/evil.png", URLPrivateDownload: foreign.URL + "/evil.png"}
	cases := []struct {
		file slacktest.File
		want string
	}{
		{large, "huge.png is"},
		{text, "notes.png is not an image Easel can use"},
		{elsewhere, "evil.png is not stored on Slack"},
	}
	for _, c := range cases {
		ts, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> use this",
			Files: []slacktest.File{c.file}})
		h.deliver(envs...)
		h.fake.WaitFor(t, "the explanation "+c.want, func() bool {
			for _, r := range h.fake.Replies("C1", ts) {
				if strings.Contains(r.Text, c.want) {
					return true
				}
			}
			return false
		})
		h.reacted("C1", ts)
	}
	if n := h.engine.handles.Load(); n != 0 {
		t.Errorf("%d bad attachments reached the engine", n)
	}
	if foreignHits.Load() != 0 {
		t.Error("the bot fetched a file from a host that is not Slack's")
	}
}

// bigPNG returns a PNG of noise, larger than 4 KiB.
func bigPNG(t *testing.T) []byte {
	img := image.NewGray(image.Rect(0, 0, 128, 128))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if b.Len() <= 4<<10 {
		t.Fatalf("test image is only %d bytes", b.Len())
	}
	return b.Bytes()
}

// TestSlackImageLimits checks the limits Slack's downloads apply through
// imagecheck: a few bytes declaring too many pixels are refused before any
// decoding, and Slack's larger side limit holds.
func TestSlackImageLimits(t *testing.T) {
	h := newHarness(t, options{})
	cases := []struct {
		name string
		data []byte
		want string // "" for accepted
	}{
		{"ok.png", testPNG(1), ""},
		{"wide.png", pngHeader(imagecheck.DefaultMaxSide, 2), ""},
		{"too-wide.png", pngHeader(imagecheck.DefaultMaxSide+1, 1), "too-wide.png is 16385x1 pixels; attached images can be at most 40 megapixels and 16384 pixels on a side"},
		{"too-many.png", pngHeader(imagecheck.DefaultMaxSide, imagecheck.DefaultMaxPixels/imagecheck.DefaultMaxSide+1), "too-many.png is 16384x2442 pixels"},
		{"truncated.png", testPNG(1)[:20], "truncated.png could not be read"},
		{"page.png", []byte("<!DOCTYPE html><html></html>"), "page.png is not an image Easel can use"},
		{"anim.png", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "anim.png is a GIF"},
	}
	for _, c := range cases {
		img, err := h.bot.home.files.Fetch(context.Background(), attachment(apiFile(h.fake.AddFile(ana, c.name, "image/png", c.data))))
		switch {
		case c.want == "" && (err != nil || img.MIME != "image/png"):
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want Invalid saying %q", c.name, err, c.want)
		}
	}
}

// apiFile is the slack-go description of a file of the fake.
func apiFile(f slacktest.File) slackapi.File {
	return slackapi.File{ID: f.ID, Name: f.Name, Mimetype: f.Mimetype, Size: f.Size, URLPrivate: f.URLPrivate, URLPrivateDownload: f.URLPrivateDownload}
}

// pngHeader returns a PNG of w×h pixels with no image data: a header and
// an IEND chunk, enough for imagecheck, far too little to decode.
func pngHeader(w, h int) []byte {
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // 8-bit greyscale
	b := append([]byte("\x89PNG\r\n\x1a\n"), 0, 0, 0, 13)
	b = append(b, ihdr...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
	b = append(b, 0, 0, 0, 0)
	b = append(b, "IEND"...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte("IEND")))
}
