package discord

import (
	"context"
	"strings"
	"testing"
	"time"
)

// SetPacer makes b time its IDENTIFYs with now, sleep and jitter instead of
// the real clock, for the tests in package discord_test.
func SetPacer(b *Bot, now func() time.Time, sleep func(context.Context, time.Duration) error, jitter func() float64) {
	b.pace = pacer{now: now, sleep: sleep, jitter: jitter}
}

// IdentifyName is the name under which IDENTIFYs are recorded in the store.
const IdentifyName = identifyName

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func half() float64 { return 0.5 }

func TestIdentifyWaitSpacesIdentifiesFiveSecondsApart(t *testing.T) {
	if w, why := identifyWait(nil, t0, half); w != 0 || why != "" {
		t.Errorf("first IDENTIFY waits %s (%s)", w, why)
	}
	w, why := identifyWait([]time.Time{t0.Add(-time.Second)}, t0, half)
	if w != 4*time.Second || !strings.Contains(why, "5 seconds") {
		t.Errorf("1 s after the last: wait %s (%s), want 4s", w, why)
	}
	if w, _ := identifyWait([]time.Time{t0.Add(-time.Minute)}, t0, half); w != 0 {
		t.Errorf("a minute after the last: wait %s", w)
	}
	// A start recorded in the future (the clock went back) counts as now.
	if w, _ := identifyWait([]time.Time{t0.Add(time.Hour)}, t0, half); w != identifyGap {
		t.Errorf("after a start in the future: wait %s, want %s", w, identifyGap)
	}
}

// TestIdentifyWaitBacksOffACrashLoop simulates a bot that crashes as soon as
// it has identified, for a day: three quick IDENTIFYs, then waits that
// double up to the cap, and far fewer than Discord's 1000 a day.
func TestIdentifyWaitBacksOffACrashLoop(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 0.999} {
		now := t0
		var prev []time.Time
		var waits []time.Duration
		for now.Sub(t0) < 24*time.Hour {
			w, why := identifyWait(prev, now, func() float64 { return jitter })
			if w > 0 && why == "" {
				t.Fatalf("wait %s without a reason", w)
			}
			waits = append(waits, w)
			now = now.Add(w)
			prev = append(prev, now)
		}
		if waits[0] != 0 || waits[1] != identifyGap || waits[2] != identifyGap {
			t.Errorf("jitter %v: first waits %v, want 0, 5s, 5s", jitter, waits[:3])
		}
		for i := 3; i < len(waits); i++ {
			if w := waits[i]; w > backoffMax || w <= waits[i-1] && waits[i-1] < backoffMax*4/5 {
				t.Errorf("jitter %v: wait %d is %s after %s: want growing, at most %s", jitter, i, w, waits[i-1], backoffMax)
			}
		}
		if want := backoffBase - time.Duration(jitter*float64(backoffBase)/5); waits[3] != want {
			t.Errorf("jitter %v: first backoff %s, want %s", jitter, waits[3], want)
		}
		n := len(prev) - 1 // the last one fell after the day
		if n > 200 {
			t.Errorf("jitter %v: %d IDENTIFYs in 24h of crash loop", jitter, n)
		}
		t.Logf("jitter %.1f: %d IDENTIFYs in 24h of a crash loop; waits %v …", jitter, n, waits[:12])
	}
}

func TestIdentifyWaitForgetsAStreakAfterAGoodRun(t *testing.T) {
	prev := []time.Time{t0, t0.Add(5 * time.Second), t0.Add(10 * time.Second), t0.Add(25 * time.Second)}
	now := t0.Add(25*time.Second + streakGap)
	if w, why := identifyWait(prev, now, half); w != 0 {
		t.Errorf("after %s up: wait %s (%s), want none", streakGap, w, why)
	}
	// Unsorted input is sorted first.
	shuffled := []time.Time{prev[2], prev[0], prev[3], prev[1]}
	if w, _ := identifyWait(shuffled, prev[3].Add(time.Second), func() float64 { return 0 }); w != 2*backoffBase-time.Second {
		t.Errorf("fifth quick IDENTIFY waits %s, want %s", w, 2*backoffBase-time.Second)
	}
}

func TestIdentifyWaitKeepsUnderTheDailyBudget(t *testing.T) {
	// Many IDENTIFYs a day ago, then one a minute ago: no streak, but the
	// daily count spaces them out.
	var prev []time.Time
	for i := range dailySoft - 1 {
		prev = append(prev, t0.Add(-23*time.Hour+time.Duration(i)*time.Second))
	}
	prev = append(prev, t0.Add(-time.Minute))
	w, why := identifyWait(prev, t0, half)
	if w != dailyGap-time.Minute || !strings.Contains(why, "daily") {
		t.Errorf("over the soft daily count: wait %s (%s), want %s", w, why, dailyGap-time.Minute)
	}

	// Past the hard count none until the oldest ages out.
	prev = prev[:0]
	for i := range dailyHard {
		prev = append(prev, t0.Add(-23*time.Hour+time.Duration(i)*time.Second))
	}
	w, why = identifyWait(prev, t0, half)
	if w != time.Hour || !strings.Contains(why, "1000") {
		t.Errorf("at the hard daily count: wait %s (%s), want 1h", w, why)
	}
	// Starts older than a day do not count.
	if w, _ := identifyWait(prev, t0.Add(23*time.Hour), half); w != 0 {
		t.Errorf("a day later: wait %s", w)
	}
}
