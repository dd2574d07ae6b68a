package discord_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// burstSize is how many /imagine commands arrive at once.
const burstSize = 200

// TestAcksUnderLoad sends 200 /imagine commands at once and checks that
// each is acknowledged within Discord's 3-second deadline.
func TestAcksUnderLoad(t *testing.T) {
	h := start(t, func(s *setup) { s.srv.WaitTimeout = time.Minute })
	lat := burst(t, h, users(h, burstSize))
	p50, p99, worst := percentiles(lat)
	t.Logf("ack latency of %d concurrent /imagine: p50 %s, p99 %s, max %s", len(lat), p50, p99, worst)
	if worst > discordtest.InteractionDeadline {
		t.Errorf("slowest ack took %s, over Discord's deadline", worst)
	}
}

// BenchmarkInteractionAck measures the time from an INTERACTION_CREATE
// leaving the fake gateway to its deferred response arriving, with 200
// /imagine commands in flight at once. Each iteration is one burst:
//
//	go test -run '^$' -bench InteractionAck -benchtime 5x ./bots/discord/
func BenchmarkInteractionAck(b *testing.B) {
	h := start(b, func(s *setup) { s.srv.WaitTimeout = time.Minute })
	us := users(h, burstSize)
	var lat []time.Duration
	for b.Loop() {
		lat = append(lat, burst(b, h, us)...)
	}
	p50, p99, worst := percentiles(lat)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(worst), "max-ms")
}

func users(h *harness, n int) []discordtest.User {
	us := make([]discordtest.User, n)
	for i := range us {
		us[i] = h.srv.AddUser(fmt.Sprintf("user%d", i))
	}
	return us
}

// burst makes each user run /imagine at once, returns the ack latencies and
// waits for the images, so the next burst starts from a quiet bot. The
// provider answers once every command is acknowledged: real ones take
// seconds, far longer than an acknowledgement.
func burst(tb testing.TB, h *harness, us []discordtest.User) []time.Duration {
	tb.Helper()
	calls := h.gen.Calls.Load()
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	ics := make([]discordtest.Interaction, len(us))
	for i, u := range us {
		ics[i] = h.srv.Command(tb, u, h.srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: fmt.Sprintf("picture %d", i)})
	}
	var lat []time.Duration
	h.srv.Wait(tb, "every command to be acknowledged", func() bool {
		lat = lat[:0]
		for _, ic := range ics {
			got := h.srv.GetInteraction(ic.ID)
			if got.AckType == 0 {
				return false
			}
			lat = append(lat, got.AckLatency())
		}
		return true
	})
	close(gate)
	h.srv.Wait(tb, "every image", func() bool { return h.gen.Calls.Load() == calls+int64(len(us)) })
	return lat
}

func percentiles(lat []time.Duration) (p50, p99, worst time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.99), s[len(s)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
