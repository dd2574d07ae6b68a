package openaitest

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"strings"
	"testing"
)

// alphaMask returns a w×h PNG mask with an alpha channel, transparent in
// its top-left quarter.
func alphaMask(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if x >= w/2 || y >= h/2 {
				m.Pix[y*m.Stride+4*x+3] = 255
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEditMask: an edit's mask must be a PNG with an alpha channel of the
// first image's size; one that is is recorded byte for byte.
func TestEditMask(t *testing.T) {
	s := NewServer(t)
	img := pngBytes(t) // 16x16, opaque: no alpha channel
	mask := alphaMask(t, 16, 16)
	res := postMultipart(t, s, map[string]string{"prompt": "x"}, []filePart{{"image", "a.png", "image/png", img}, {"mask", "m.png", "image/png", mask}})
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if r := s.LastRequest(t); r.Mask == nil || !bytes.Equal(r.Mask.Data, mask) || r.Mask.Field != "mask" {
		t.Errorf("the mask was not recorded: %+v", r.Mask)
	}
	for _, tc := range []struct {
		mask []byte
		says string
	}{
		{img, "must have an alpha channel"},
		{alphaMask(t, 16, 17), "the mask (16x17) and the image (16x16) must have the same dimensions"},
		{[]byte("\x89PNG\r\n\x1a\nbroken"), "valid PNG"},
	} {
		res := postMultipart(t, s, map[string]string{"prompt": "x"}, []filePart{{"image", "a.png", "image/png", img}, {"mask", "m.png", "image/png", tc.mask}})
		e := wantError(t, res, 400, "mask", "")
		if !strings.Contains(e, tc.says) {
			t.Errorf("mask refused with %q, want %q", e, tc.says)
		}
	}
}

// TestResponsesMask: the image tool's input_image_mask applies to the
// image the request edits (here the one the continued response made), must
// be a PNG data URL with an alpha channel of its size, and is recorded.
func TestResponsesMask(t *testing.T) {
	s := NewServer(t)
	postResponses(t, s, `{"model":"gpt-5.5","input":"a shop sign",`+tool+`}`) // a 16x16 image
	first := s.LastRequest(t)
	edit := func(mask string) string {
		return `{"model":"gpt-5.5","input":"make it red","previous_response_id":"` + first.ResponseID +
			`","tools":[{"type":"image_generation","action":"edit","size":"1024x1024","input_image_mask":` + mask + `}]}`
	}
	url := func(data []byte) string {
		return `{"image_url":"data:image/png;base64,` + base64.StdEncoding.EncodeToString(data) + `"}`
	}
	mask := alphaMask(t, 16, 16)
	if res := postResponses(t, s, edit(url(mask))); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if r := s.LastRequest(t); r.Mask == nil || !bytes.Equal(r.Mask.Data, mask) || !bytes.Equal(r.Edited, first.Returned[0]) {
		t.Errorf("mask recorded %v, edited the first image %v", r.Mask != nil, bytes.Equal(r.Edited, first.Returned[0]))
	}
	const param = "tools[0].input_image_mask"
	for _, tc := range []struct{ name, mask, param, says string }{
		{"wrong size", url(alphaMask(t, 32, 16)), param, "must have the same dimensions"},
		{"no alpha", url(pngBytes(t)), param, "alpha channel"},
		{"file id", `{"file_id":"file_1"}`, param + ".file_id", "only as"},
		{"not an object", `"mask.png"`, param, "expected an object"},
		{"unknown key", `{"url":"x"}`, param + ".url", "Unknown parameter"},
		{"jpeg", `{"image_url":"data:image/jpeg;base64,` + base64.StdEncoding.EncodeToString(pngBytes(t)) + `"}`, param + ".image_url", "must be a PNG"},
		{"not base64", `{"image_url":"data:image/png;base64,@@@"}`, param + ".image_url", "Invalid base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e := wantError(t, postResponses(t, s, edit(tc.mask)), 400, tc.param, ""); !strings.Contains(e, tc.says) {
				t.Errorf("refused with %q, want %q", e, tc.says)
			}
		})
	}
	// A mask with nothing to edit.
	e := wantError(t, postResponses(t, s, `{"model":"gpt-5.5","input":"a cat","tools":[{"type":"image_generation","input_image_mask":`+url(mask)+`}]}`), 400, param, "")
	if !strings.Contains(e, "edits none") {
		t.Errorf("a mask with no image was refused with %q", e)
	}
}
