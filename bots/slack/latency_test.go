package slack

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

// burst delivers n slash commands from n users at once over Socket Mode
// and returns the ack latency of each, as the fake measured it: from
// writing the envelope to reading its ack.
func burst(h *harness, n int) []time.Duration {
	h.t.Helper()
	envs := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		env := h.fake.SlashCommand(fmt.Sprintf("ULOAD%03d", i), "C1", fmt.Sprintf("load test image %d", i))
		wg.Go(func() {
			<-start
			envs[i] = h.fake.Send(h.t, env)
		})
	}
	close(start)
	wg.Wait()
	lat := make([]time.Duration, n)
	for i, id := range envs {
		lat[i] = h.fake.WaitAck(h.t, id).Latency
	}
	return lat
}

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	return sorted[min(len(sorted)-1, (len(sorted)*p+99)/100-1)]
}

// TestAckLatencyUnderLoad sends 200 concurrent slash commands and checks
// that every one is acknowledged within Slack's 3 s, and every image
// posted, while the whole pipeline (root messages, engine, uploads) runs
// behind them. The latency target itself is BenchmarkAck200's; figures are
// logged:
//
//	go test -race -run TestAckLatencyUnderLoad -v ./bots/slack/
func TestAckLatencyUnderLoad(t *testing.T) {
	h := newHarness(t, options{engine: core.EngineConfig{MaxConcurrent: 8}})
	// Making and posting 200 images takes 15–20 s under the race detector
	// alone, longer beside the other packages' tests; only the acks are timed.
	h.fake.WaitTimeout = 2 * time.Minute
	start := time.Now()
	lat := burst(h, 200)
	slices.Sort(lat)
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	h.images(200)
	t.Logf("200 concurrent slash commands: ack p50 %s, p99 %s, max %s; all 200 images posted after %s",
		p50, p99, lat[len(lat)-1], time.Since(start).Round(time.Millisecond))
	if maxLat := lat[len(lat)-1]; maxLat > 3*time.Second {
		t.Errorf("an ack took %s: past Slack's 3 s deadline, after which Slack retries the command", maxLat)
	}
}

// BenchmarkAck200 measures ack latency for bursts of 200 concurrent slash
// commands over Socket Mode, the full pipeline running behind them:
//
//	go test -run '^$' -bench Ack200 -benchtime 5x ./bots/slack/
func BenchmarkAck200(b *testing.B) {
	h := newHarness(b, options{engine: core.EngineConfig{MaxConcurrent: 8}})
	h.fake.WaitTimeout = 2 * time.Minute
	var all []time.Duration
	done := 0
	for b.Loop() {
		all = append(all, burst(h, 200)...)
		done += 200
		h.images(done)
	}
	slices.Sort(all)
	b.ReportMetric(float64(percentile(all, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(all, 99).Microseconds())/1000, "p99-ms")
}
