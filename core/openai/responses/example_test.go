package responses_test

import (
	"fmt"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/responses"
)

// Example_fiveTurnSession prints the price table's estimate of a typical
// five-turn session (a generation, then four refinements) on each OpenAI
// provider, with Easel's defaults (auto quality and size, estimated as high
// and 1536x1024) and with --quality medium --size 1024x1024, and the
// conversation model's part of a fifth turn: what a question answered in
// words costs at most. The README quotes these figures.
func Example_fiveTurnSession() {
	images, _ := openai.New(openai.Config{APIKey: "unused"})
	conversation, _ := responses.New(responses.Config{APIKey: "unused", Store: true})
	talkOnly, _ := responses.New(responses.Config{APIKey: "unused", Store: true,
		Prices: map[string]openai.Price{responses.DefaultModel: responses.DefaultPrices()[responses.DefaultModel]}})
	prompts := []string{
		`a poster for our offsite, title "Q3 KICKOFF"`,
		"make the title gold",
		"add a second person on the left",
		"make her look less tired",
		"same poster, but for the Berlin office",
	}
	turn := func(i int, flags core.Flags) core.GenerateRequest {
		req := core.GenerateRequest{Kind: core.KindGenerate, Prompt: prompts[i], Flags: flags, N: 1}
		if i > 0 {
			req.Kind, req.Base, req.History, req.PreviousResponseID = core.KindRefine, &core.Image{MIME: "image/png"}, prompts[:i], "resp_before"
			for _, h := range prompts[:i] {
				req.Conversation = append(req.Conversation, core.Exchange{Prompt: h})
			}
		}
		return req
	}
	for _, flags := range []core.Flags{{}, {Quality: "medium", Size: "1024x1024"}} {
		var a, b float64
		for i := range prompts {
			a += images.EstimateCost(turn(i, flags))
			b += conversation.EstimateCost(turn(i, flags))
		}
		fmt.Printf("--quality %q --size %q: openai $%.2f, openai-responses $%.2f\n", flags.Quality, flags.Size, a, b)
	}
	fmt.Printf("the conversation model's part of the fifth turn: $%.3f\n", talkOnly.EstimateCost(turn(4, core.Flags{})))
	// Output:
	// --quality "" --size "": openai $1.07, openai-responses $1.28
	// --quality "medium" --size "1024x1024": openai $0.29, openai-responses $0.50
	// the conversation model's part of the fifth turn: $0.053
}
