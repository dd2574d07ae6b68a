package responses

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

// BenchmarkRefine measures Easel's side of one refinement of a 2 MiB image
// against the loopback fake, whose own work is small: building and sending
// the request, reading the answer. It reports the bytes each request
// uploads (req-bytes): the Images API provider sends the image every time,
// as a multipart edit; openai-responses continuing a stored response sends
// only the new message; resending the thread (store off, or the response
// gone) sends the image base64-encoded in JSON.
//
//	go test -run '^$' -bench Refine -benchmem ./core/openai/responses
func BenchmarkRefine(b *testing.B) {
	base := core.Image{Data: append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 2<<20)...), MIME: "image/png"}
	_, _ = rand.Read(base.Data[8:])
	req := core.GenerateRequest{Kind: core.KindRefine, Prompt: "make the title gold", History: []string{"a poster"},
		Conversation: []core.Exchange{{Prompt: "a poster"}}, Base: &base, Flags: core.Flags{Quality: "low", Size: "1024x1024"}, N: 1}
	run := func(b *testing.B, fresh func(url string) (core.Generator, string)) {
		var srv *openaitest.Server
		var gen core.Generator
		var prev string
		var sent int64
		renew := func() {
			if srv != nil {
				srv.Close() // the fake keeps every request: start afresh
			}
			srv = openaitest.NewServer(b)
			gen, prev = fresh(srv.URL())
		}
		renew()
		i := 0
		for b.Loop() {
			if i++; i%50 == 0 {
				b.StopTimer()
				renew()
				b.StartTimer()
			}
			r := req
			r.PreviousResponseID = prev
			if _, err := gen.Generate(context.Background(), r); err != nil {
				b.Fatal(err)
			}
			sent += srv.LastRequest(b).BodyBytes
		}
		b.ReportMetric(float64(sent)/float64(i), "req-bytes/op")
	}
	cfg := func(url string, store bool) Config {
		return Config{APIKey: "sk-bench", BaseURL: url, Store: store, MaxRetries: 0}
	}
	b.Run("openai", func(b *testing.B) {
		run(b, func(url string) (core.Generator, string) {
			g, err := openai.New(openai.Config{APIKey: "sk-bench", BaseURL: url})
			if err != nil {
				b.Fatal(err)
			}
			return g, ""
		})
	})
	b.Run("openai-responses/continued", func(b *testing.B) {
		run(b, func(url string) (core.Generator, string) {
			g, err := New(cfg(url, true))
			if err != nil {
				b.Fatal(err)
			}
			first, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a poster", N: 1})
			if err != nil {
				b.Fatal(err)
			}
			return g, first.Details[0].ResponseID
		})
	})
	b.Run("openai-responses/resent", func(b *testing.B) {
		run(b, func(url string) (core.Generator, string) {
			g, err := New(cfg(url, false))
			if err != nil {
				b.Fatal(err)
			}
			return g, ""
		})
	})
}
