package discord

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Pacing of gateway IDENTIFYs. Discord allows a bot 1000 IDENTIFYs a day
// (past that it resets the bot's token) and, with max_concurrency 1, one
// per 5 seconds. A RESUME costs nothing, but a process that crashes and
// restarts cannot resume, so each start identifies: a crash loop would burn
// the day's budget in minutes. Each IDENTIFY that Run makes is recorded
// durably, and Run waits first when there were many lately.
const (
	// identifyName names the IDENTIFY times in the store.
	identifyName = "discord:identify"
	// identifyGap is the least time between two IDENTIFYs (max_concurrency
	// 1: one per 5 s).
	identifyGap = 5 * time.Second
	// A run of IDENTIFYs each less than streakGap after the one before is
	// a crash loop: its first burstStarts go without backoff, and each one
	// beyond doubles the wait, from backoffBase up to backoffMax. A bot
	// that stayed up for streakGap starts afresh.
	streakGap   = 30 * time.Minute
	burstStarts = 3
	backoffBase = 15 * time.Second
	backoffMax  = 10 * time.Minute
	// Past dailySoft IDENTIFYs in dailyWindow they are spaced at least
	// dailyGap apart, and past dailyHard there are none until the oldest
	// ages out: well under Discord's 1000.
	dailyWindow = 24 * time.Hour
	dailySoft   = 300
	dailyGap    = 150 * time.Second
	dailyHard   = 900
)

// identifyWait returns how long to wait before an IDENTIFY at now, given
// the earlier ones (oldest first), and why; 0 and "" mean go at once.
// jitter returns a number in [0, 1) that spreads the backoff over its
// upper fifth, so the waits of successive restarts still grow.
func identifyWait(prev []time.Time, now time.Time, jitter func() float64) (time.Duration, string) {
	var day []time.Time
	for _, t := range prev {
		if t.After(now) {
			t = now // a clock set back: count it as just now
		}
		if now.Sub(t) < dailyWindow {
			day = append(day, t)
		}
	}
	if len(day) == 0 {
		return 0, ""
	}
	slices.SortFunc(day, time.Time.Compare)
	last := day[len(day)-1]
	since := now.Sub(last)
	var wait time.Duration
	var why string
	need := func(gap time.Duration, reason string) {
		if w := gap - since; w > wait {
			wait, why = w, reason
		}
	}
	need(identifyGap, "Discord allows one IDENTIFY per 5 seconds")

	streak := 0
	if since < streakGap {
		streak = 1
		for i := len(day) - 1; i > 0 && day[i].Sub(day[i-1]) < streakGap; i-- {
			streak++
		}
	}
	if streak >= burstStarts {
		backoff := backoffMax
		if n := streak - burstStarts; n < 16 {
			backoff = min(backoffBase<<n, backoffMax)
		}
		backoff -= time.Duration(jitter() * float64(backoff) / 5)
		need(backoff, fmt.Sprintf("%d connects less than %s apart: the bot may be crash-looping", streak, streakGap))
	}
	if len(day) >= dailySoft {
		need(dailyGap, fmt.Sprintf("%d connects in the last 24h: saving Discord's daily IDENTIFY budget", len(day)))
	}
	if len(day) >= dailyHard {
		// Wait until the oldest of the last dailyHard ages out.
		oldest := day[len(day)-dailyHard]
		if w := oldest.Add(dailyWindow).Sub(now); w > wait {
			wait = w
			why = fmt.Sprintf("%d connects in the last 24h: Discord resets the token of a bot that identifies 1000 times a day", len(day))
		}
	}
	return max(wait, 0), why
}

// pacer is the time source of IDENTIFY pacing; the zero value uses the
// real clock.
type pacer struct {
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64
}

func (p pacer) Now() time.Time {
	if p.now == nil {
		return time.Now()
	}
	return p.now()
}

func (p pacer) Sleep(ctx context.Context, d time.Duration) error {
	if p.sleep != nil {
		return p.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p pacer) Jitter() float64 {
	if p.jitter == nil {
		return rand.Float64()
	}
	return p.jitter()
}

// awaitIdentify waits, if the bot identified often lately, until another
// IDENTIFY is safe, then records it. It returns ctx's error if ctx ends
// first. A store that cannot be read or written is logged and not waited
// for: it would fail the bot's work anyway, and saying so matters more.
func (b *Bot) awaitIdentify(ctx context.Context) error {
	now := b.pace.Now()
	prev, err := b.events.Starts(ctx, identifyName, now.Add(-dailyWindow))
	if err != nil {
		b.log.Warn("cannot read the recent gateway connects; connecting without pacing", "err", err)
	}
	if wait, why := identifyWait(prev, now, b.pace.Jitter); wait > 0 {
		b.log.Warn("waiting before connecting to Discord's gateway", "wait", wait.Round(time.Second), "why", why)
		if err := b.pace.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	if _, err := b.events.RecordStart(ctx, identifyName, b.pace.Now(), dailyWindow); err != nil {
		b.log.Warn("cannot record the gateway connect", "err", err)
	}
	return nil
}

// watchIdentifies records the IDENTIFYs discordgo makes by itself on a
// shard's connection (it answers INVALID_SESSION with one) so that the
// next start's pacing counts them: every READY after the first follows
// such an IDENTIFY.
func (b *Bot) watchIdentifies(ctx context.Context, dg *discordgo.Session) {
	var readies atomic.Int64
	dg.AddHandler(func(_ *discordgo.Session, _ *discordgo.Ready) {
		if readies.Add(1) == 1 {
			return // awaitIdentify or the shard's turn counted it
		}
		b.async(ctx, func(ctx context.Context) {
			if _, err := b.events.RecordStart(ctx, identifyName, b.pace.Now(), dailyWindow); err != nil {
				b.log.Warn("cannot record the gateway connect", "err", err)
			}
		})
	})
}
