package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func response(body string) *http.Response {
	return &http.Response{Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

func TestReadAnswer(t *testing.T) {
	a, b := []byte("first image bytes \x00\xff"), []byte("second/image?>>")
	encB := strings.ReplaceAll(base64.StdEncoding.EncodeToString(b), "/", `\/`)
	body := `{"created": 1, "data": [{"b64_json": "` + base64.StdEncoding.EncodeToString(a) + `", "revised_prompt": "a \"quoted\" b64_json: x"},` +
		` {"b64_json":"` + encB + `"}], "output_format": "png", "usage": {"input_tokens": 5}}`
	ans, err := ReadAnswer(response(body), "b64_json")
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Images) != 2 || !bytes.Equal(ans.Images[0], a) || !bytes.Equal(ans.Images[1], b) {
		t.Fatalf("images = %q", ans.Images)
	}
	want := `{"created": 1, "data": [{"b64_json": "", "revised_prompt": "a \"quoted\" b64_json: x"}, {"b64_json":""}], "output_format": "png", "usage": {"input_tokens": 5}}`
	if string(ans.Rest) != want {
		t.Errorf("rest = %s\nwant   %s", ans.Rest, want)
	}
}

func TestReadAnswerErrors(t *testing.T) {
	full := `{"data":[{"b64_json":"` + base64.StdEncoding.EncodeToString([]byte("image")) + `"}]}`
	for cut := 5; cut < len(full)-3; cut += 3 {
		if _, err := ReadAnswer(response(full[:cut]), "b64_json"); err == nil && strings.Contains(full[:cut], `"b64_json":"`) {
			t.Errorf("a body cut at %d (%q) was accepted", cut, full[:cut])
		}
	}
	for _, body := range []string{`{"data":[{"b64_json":"!!!!"}]}`, `{"data":[{"b64_json":"aGVsbG8\n"}]}`, `{"data":[{"b64_json":""}]}`} {
		if _, err := ReadAnswer(response(body), "b64_json"); !errors.Is(err, ErrBadImage) {
			t.Errorf("readAnswer(%s) = %v, want a bad-image error", body, err)
		}
	}
}

func TestReadEvents(t *testing.T) {
	p, f := []byte("partial"), []byte("final")
	stream := ": keep-alive\r\n\r\n" +
		"event: image_generation.partial_image\r\n" +
		`data: {"type":"image_generation.partial_image","b64_json":"` + base64.StdEncoding.EncodeToString(p) + `","partial_image_index":0}` + "\r\n\r\n" +
		"event: image_generation.completed\n" +
		"data: {\"type\":\"image_generation.completed\",\n" +
		`data: "b64_json":"` + base64.StdEncoding.EncodeToString(f) + `","usage":{"output_tokens":3}}` + "\n\n"
	var events []Answer
	err := ReadEvents(response(stream), []string{"b64_json"}, nil, func(a Answer) (bool, error) {
		events = append(events, a)
		return strings.Contains(string(a.Rest), "completed"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || !bytes.Equal(events[0].Images[0], p) || !bytes.Equal(events[1].Images[0], f) {
		t.Fatalf("events = %+v", events)
	}
	if got := string(events[1].Rest); got != "{\"type\":\"image_generation.completed\",\n\"b64_json\":\"\",\"usage\":{\"output_tokens\":3}}" {
		t.Errorf("multi-line data joined as %q", got)
	}
	// A stream that stops before its completed event is truncated.
	err = ReadEvents(response(stream[:len(stream)/2]), []string{"b64_json"}, nil, func(Answer) (bool, error) { return false, nil })
	if err == nil {
		t.Error("a truncated stream was accepted")
	}
	if err := ReadEvents(response("event: x\ndata: {\"type\":\"x\"}\n\n"), []string{"b64_json"}, nil, func(Answer) (bool, error) { return false, nil }); !errors.Is(err, ErrTruncated) {
		t.Errorf("a stream without a completed event = %v, want ErrTruncated", err)
	}
}

func TestReadEventsSkipsImagesNotShown(t *testing.T) {
	p1, p2, f := []byte("partial one"), []byte("partial/two?>>"), []byte("final")
	enc := func(b []byte) string { return strings.ReplaceAll(base64.StdEncoding.EncodeToString(b), "/", `\/`) }
	event := func(typ string, img []byte) string {
		return "event: " + typ + "\ndata: {\"type\":\"" + typ + "\",\"b64_json\":\"" + enc(img) + "\"}\n\n"
	}
	stream := event("image_generation.partial_image", p1) + event("image_generation.partial_image", p2) +
		event("image_generation.completed", f)
	var asked []string
	skip := func(typ string) bool {
		asked = append(asked, typ)
		return typ == "image_generation.partial_image" && len(asked) > 1
	}
	var images [][]byte
	err := ReadEvents(response(stream), []string{"b64_json"}, skip, func(a Answer) (bool, error) {
		images = append(images, a.Images...)
		return strings.Contains(string(a.Rest), "completed"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 3 || !bytes.Equal(images[0], p1) || images[1] != nil || !bytes.Equal(images[2], f) {
		t.Fatalf("images = %q, want the first partial, nil, the final", images)
	}
	want := []string{"image_generation.partial_image", "image_generation.partial_image", "image_generation.completed"}
	if strings.Join(asked, " ") != strings.Join(want, " ") {
		t.Errorf("skip asked about %q, want %q", asked, want)
	}
	// A skipped string is still checked for a cut-off body.
	always := func(string) bool { return true }
	cut := stream[:len(event("image_generation.partial_image", p1))-10]
	if err := ReadEvents(response(cut), []string{"b64_json"}, always, func(Answer) (bool, error) { return false, nil }); err == nil {
		t.Error("a stream cut inside a skipped image was accepted")
	}
}

// BenchmarkReadAnswer reads a JSON answer carrying a 2 MB image: the bytes
// allocated per op should stay near the image's size, not a multiple of it.
func BenchmarkReadAnswer(b *testing.B) {
	img := make([]byte, 2<<20)
	_, _ = rand.Read(img)
	body := `{"created":1,"data":[{"b64_json":"` + base64.StdEncoding.EncodeToString(img) + `"}],"usage":{"input_tokens":1}}`
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		ans, err := ReadAnswer(response(body), "b64_json")
		if err != nil || len(ans.Images[0]) != len(img) {
			b.Fatal(err)
		}
	}
}
