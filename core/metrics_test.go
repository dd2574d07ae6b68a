package core_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// metricsLog is a core.Metrics that remembers what it was told.
type metricsLog struct {
	mu       sync.Mutex
	ended    []string // kind/status/provider
	calls    []string // provider/failed
	partials int
	access   []string
	quota    []string
}

func (r *metricsLog) TurnEnded(kind core.TurnKind, status core.TurnStatus, provider string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = append(r.ended, fmt.Sprintf("%s/%s/%s", kind, status, provider))
}

func (r *metricsLog) ProviderCalled(provider string, failed bool, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%s/%v", provider, failed))
}

func (r *metricsLog) FirstPartial(provider string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partials++
}

func (r *metricsLog) AccessRefused(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.access = append(r.access, reason)
}

func (r *metricsLog) QuotaRefused(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.quota = append(r.quota, reason)
}

func (r *metricsLog) snapshot() metricsLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	return metricsLog{ended: slices.Clone(r.ended), calls: slices.Clone(r.calls), partials: r.partials,
		access: slices.Clone(r.access), quota: slices.Clone(r.quota)}
}

// TestEngineMetrics: the engine tells its Metrics how each turn ended, how
// each provider call went, when the first partial image came, and why it
// refused a message; Load counts what it holds.
func TestEngineMetrics(t *testing.T) {
	rec := &metricsLog{}
	h := newHarness(t, core.EngineConfig{Metrics: rec, Access: core.Access{Channels: []string{"C1"}}})
	th := coretest.NewThread()
	ok := msg("t1", "a red fox")
	ok.Channel = "C1"
	h.send(th, ok)
	th.WaitTurns(t, 1)
	h.gen.Fail(errors.New("boom"))
	bad := msg("t1", "make it blue")
	bad.Channel = "C1"
	h.send(th, bad)
	th.WaitTurns(t, 2)
	undo := core.Message{Platform: "test", Thread: "t1", Channel: "C1", User: ana, Action: core.ActionUndo}
	h.send(th, undo)
	th.WaitTurns(t, 3)
	if _, err := h.engine.Handle(context.Background(), th, msg("t2", "elsewhere")); core.KindOf(err) != core.Forbidden {
		t.Fatalf("a message from a channel not allowed: %v, want Forbidden", err)
	}

	got := rec.snapshot()
	wantEnded := []string{"generate/done/fake", "refine/failed/fake", "/failed/"} // an undo with nothing to undo fails before it has a kind
	if !slices.Equal(got.ended, wantEnded) {
		t.Errorf("turns ended %q, want %q", got.ended, wantEnded)
	}
	if want := []string{"fake/false", "fake/true"}; !slices.Equal(got.calls, want) {
		t.Errorf("provider calls %q, want %q", got.calls, want)
	}
	if got.partials != 1 {
		t.Errorf("%d first partials, want 1 (the failed call streamed none)", got.partials)
	}
	if want := []string{core.RefusedChannel}; !slices.Equal(got.access, want) {
		t.Errorf("access refusals %q, want %q", got.access, want)
	}
	if l := h.engine.Load(); l != (core.Load{}) {
		t.Errorf("load %+v once every turn ended, want none", l)
	}
}

// TestEngineLoad: a turn waiting for the provider counts as running, and
// the turns behind it in its session as queued.
func TestEngineLoad(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, core.EngineConfig{})
	h.gen.SetGate(gate)
	th := coretest.NewThread()
	h.send(th, msg("t1", "a red fox"))
	h.send(th, msg("t1", "a blue fox"))
	deadline := time.Now().Add(10 * time.Second)
	for h.engine.Load() != (core.Load{Queued: 1, Running: 1}) {
		if time.Now().After(deadline) {
			t.Fatalf("load %+v, want 1 queued and 1 running", h.engine.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(gate)
	th.WaitTurns(t, 2)
}

// TestEngineQuotaMetrics: a refusal by a quota is counted once, with the
// quota that refused it.
func TestEngineQuotaMetrics(t *testing.T) {
	rec := &metricsLog{}
	r := newRig(t, core.EngineConfig{Metrics: rec, Quotas: core.Quotas{ImagesPerUserDay: 1}}, &coretest.Generator{})
	r.open()
	th := coretest.NewThread()
	r.mustAsk(th, "t", ana, "a fox")
	th.WaitTurns(t, 1)
	wantQuota(t, "a second image", r.ask(th, "t", ana, "a cat"), "your 1 image for today")
	if got, want := rec.snapshot().quota, []string{core.RefusedUserImagesDay}; !slices.Equal(got, want) {
		t.Errorf("quota refusals %q, want %q", got, want)
	}
}
