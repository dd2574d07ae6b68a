package coretest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/easel-bot/easel/core"
)

// Generator is a scriptable core.Generator for tests. Each call records its
// request and answers with distinct small PNGs, one per image asked for,
// costing $0.01, unless scripted otherwise: an error for the next calls
// (Fail), a gate each call waits on (SetGate), partial images streamed
// first (SetPartials), other image bytes (SetOutput). It is safe for
// concurrent use.
type Generator struct {
	// Calls counts the calls made, Running those in progress and Peak the
	// most in progress at once.
	Calls, Running, Peak atomic.Int64

	mu       sync.Mutex
	requests []core.GenerateRequest
	errs     []error
	gate     chan struct{}
	partials int
	output   func(call int) []byte
}

// Generate records req and answers as scripted; see Generator.
func (g *Generator) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	n := g.Running.Add(1)
	defer g.Running.Add(-1)
	for p := g.Peak.Load(); n > p && !g.Peak.CompareAndSwap(p, n); p = g.Peak.Load() {
	}
	call := int(g.Calls.Add(1))
	g.mu.Lock()
	g.requests = append(g.requests, req)
	var err error
	if len(g.errs) > 0 {
		err, g.errs = g.errs[0], g.errs[1:]
	}
	gate, partials, output := g.gate, g.partials, g.output
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return core.Result{}, ctx.Err()
		}
	}
	if err != nil {
		return core.Result{Attempts: 2}, err
	}
	for i := range partials {
		if req.Progress != nil {
			req.Progress(core.Partial{Index: i, Image: core.Image{Data: PNG(-call*10 - i), MIME: "image/png"}})
		}
	}
	res := core.Result{Model: "fake-1", Usage: core.Usage{InputTextTokens: 10, OutputTokens: 100}, CostUSD: 0.01, Attempts: 1}
	for i := range max(req.N, 1) {
		data := PNG(call*10 + i)
		if output != nil {
			data = output(call)
		}
		res.Images = append(res.Images, core.Image{Data: data, MIME: "image/png"})
	}
	return res, nil
}

// Suggestions are what Generator.Describe suggests for any image.
var Suggestions = []string{"a red fox in fresh snow", "a blue whale at dawn", "a green frog on a lily pad"}

// Describe answers Suggestions for img, costing $0.005, or the error Fail
// scripted for the next call.
func (g *Generator) Describe(_ context.Context, img core.Image) (core.Description, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		err := g.errs[0]
		g.errs = g.errs[1:]
		if err != nil {
			return core.Description{}, err
		}
	}
	return core.Description{Suggestions: Suggestions, Model: "fake-eye-1", Usage: core.Usage{ConversationInputTokens: 100, ConversationOutputTokens: 40}, CostUSD: 0.005}, nil
}

// Fail makes the next calls return errs, in order (nil: succeed), after
// passing the gate.
func (g *Generator) Fail(errs ...error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs = append(g.errs, errs...)
}

// SetGate makes each call from now on wait for a value from gate (or its
// closing, or the call's end) before it answers; nil answers at once.
func (g *Generator) SetGate(gate chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = gate
}

// Gate returns the gate set by SetGate.
func (g *Generator) Gate() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gate
}

// SetPartials makes each call stream n partial images before its answer.
func (g *Generator) SetPartials(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.partials = n
}

// SetOutput makes each call answer with output(call) as the bytes of each
// image, instead of a small PNG; calls count from 1.
func (g *Generator) SetOutput(output func(call int) []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.output = output
}

// Requests returns the requests received so far, in order.
func (g *Generator) Requests() []core.GenerateRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]core.GenerateRequest(nil), g.requests...)
}

// Request returns the i-th request received (from 0).
func (g *Generator) Request(i int) core.GenerateRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[i]
}

// Gated returns a Generator whose calls wait on gate (see SetGate).
func Gated(gate chan struct{}) *Generator {
	g := &Generator{}
	g.SetGate(gate)
	return g
}
