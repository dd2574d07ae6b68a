package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// BenchmarkCaption renders the caption of the head of a 3-turn session.
func BenchmarkCaption(b *testing.B) {
	s := sampleSession(1)
	for b.Loop() {
		if core.Caption(s, 3) == "" {
			b.Fatal("empty caption")
		}
	}
}

// BenchmarkWriteTree renders the version tree of a 20-version session.
func BenchmarkWriteTree(b *testing.B) {
	s := sampleSession(1)
	for j := 4; j <= 20; j++ {
		t := s.Turns[0]
		t.ID, t.Outputs = j, []int{j}
		s.Turns = append(s.Turns, t)
		s.Versions = append(s.Versions, core.Version{N: j, Parent: j / 2, Turn: j, Image: s.Versions[0].Image})
	}
	s.Head = 20
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := core.WriteTree(&buf, s, func(core.ImageRef) string { return "/data/images/x.png" }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponsePath splits the provider-response → stored part of a turn
// with a 2 MB PNG into its pieces, to show where the time goes.
func BenchmarkResponsePath(b *testing.B) {
	img := image2MB()
	oai := newFakeOpenAI(b, 0, img)
	b.Run("http-read-body", func(b *testing.B) {
		b.SetBytes(int64(len(oai.body)))
		for b.Loop() {
			resp, err := http.Post(oai.srv.URL+"/v1/images/generations", "application/json", bytes.NewReader([]byte(`{"prompt":"bench job 1"}`)))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("json-unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(oai.body)))
		for b.Loop() {
			var r struct {
				Data []struct {
					B64JSON string `json:"b64_json"`
				} `json:"data"`
			}
			if err := json.Unmarshal(oai.body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("base64-decode", func(b *testing.B) {
		s := base64.StdEncoding.EncodeToString(img)
		b.SetBytes(int64(len(img)))
		for b.Loop() {
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openai-generate", func(b *testing.B) {
		gen := oai.generator(b)
		b.SetBytes(int64(len(img)))
		for b.Loop() {
			if _, err := gen.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "bench job 1", N: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("put-image-new", func(b *testing.B) {
		images := coretest.ImageDir(b, "")
		data := bytes.Clone(img)
		n := 0
		b.SetBytes(int64(len(img)))
		for b.Loop() {
			n++
			data[len(data)-20] = byte(n) // inside the IEND-preceding data: new bytes, same header
			data[len(data)-21] = byte(n >> 8)
			if _, err := images.Put(context.Background(), core.Image{Data: data, MIME: "image/png"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
