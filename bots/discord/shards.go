package discord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// A bot in many guilds connects to Discord's gateway in shards: shard i of
// n receives the events of the guilds whose id's top bits, modulo n, are i
// (DMs go to shard 0), each on a connection of its own. The processes that
// run the bot share its shards through ShardLeases: each shard is held by
// one process at a time, under a lease the process renews every third of
// its length, and taken over when its holder stops renewing; a process
// holds at most its share, the shards divided by the processes alive,
// rounded up, so shards spread out as processes join. A shard's IDENTIFY
// waits for its turn in Discord's max_concurrency bucket and the day's
// budget, through IdentifyLimits, shared by the same processes.

// ShardLeases are the leases on a bot's gateway shards of every process
// that runs it. Shards are numbered from 0; a grant has a token that
// grows with every grant. Without a ShardLeases of its own a Bot holds
// every shard.
type ShardLeases interface {
	// Lease is how long a shard stays held without a renewal; a Bot
	// renews every third of it, and stops using a shard it could not
	// renew for a whole lease.
	Lease() time.Duration
	// Renew extends the leases of held (shard → token) and the
	// process's presence, and returns those still held (one taken over
	// while this process was frozen is not) and the most shards this
	// process should hold: count divided by the processes alive,
	// rounded up.
	Renew(ctx context.Context, count int, held map[int]int64) (kept map[int]int64, share int, err error)
	// Acquire takes up to n of shards 0 to count-1 that no live process
	// holds, lowest first, each with a new token.
	Acquire(ctx context.Context, count, n int) (map[int]int64, error)
	// Release gives shard up if token is still its latest grant.
	Release(ctx context.Context, shard int, token int64) error
}

// IdentifyLimits pace the gateway IDENTIFYs of every process that runs the
// bot: Discord allows one per 5 s in each max_concurrency bucket (shard id
// modulo max_concurrency) and a budget a day (session_start_limit).
type IdentifyLimits interface {
	// ReserveIdentify reserves an IDENTIFY in bucket: the bucket's first
	// free moment, which moves gap later, and one of the day's budget. It
	// returns how long to wait before identifying; when the budget is
	// spent it reserves nothing, and returns false and the time until it
	// resets.
	ReserveIdentify(ctx context.Context, bucket int, gap time.Duration) (wait time.Duration, ok bool, err error)
	// SetIdentifyBudget records how many IDENTIFYs may still be made
	// before the budget resets, resetAfter from now.
	SetIdentifyBudget(ctx context.Context, remaining int, resetAfter time.Duration) error
}

// identifySlack is added to the 5 s between IDENTIFYs of a bucket: an
// IDENTIFY is sent a moment after its turn (a dial, Discord's HELLO), and
// the next one's moment may be shorter.
const identifySlack = time.Second

// localLease is the period of a Bot's own shard bookkeeping when it holds
// every shard.
const localLease = 15 * time.Second

// localShards are the ShardLeases of a process that holds every shard.
type localShards struct {
	mu    sync.Mutex
	held  map[int]int64
	grant int64
}

func (l *localShards) Lease() time.Duration { return localLease }

func (l *localShards) Renew(_ context.Context, count int, held map[int]int64) (map[int]int64, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := map[int]int64{}
	for sh, tok := range held {
		if l.held[sh] == tok {
			kept[sh] = tok
		}
	}
	return kept, count, nil
}

func (l *localShards) Acquire(_ context.Context, count, n int) (map[int]int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := map[int]int64{}
	for sh := 0; sh < count && len(got) < n; sh++ {
		if _, taken := l.held[sh]; !taken {
			l.grant++
			l.held[sh], got[sh] = l.grant, l.grant
		}
	}
	return got, nil
}

func (l *localShards) Release(_ context.Context, shard int, token int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[shard] == token {
		delete(l.held, shard)
	}
	return nil
}

// localIdentifies are the IdentifyLimits of one process.
type localIdentifies struct {
	now func() time.Time

	mu        sync.Mutex
	next      map[int]time.Time // bucket → first free moment
	budget    bool              // remaining and reset are known
	remaining int
	reset     time.Time
}

func (l *localIdentifies) ReserveIdentify(_ context.Context, bucket int, gap time.Duration) (time.Duration, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.budget && now.Before(l.reset) && l.remaining <= 0 {
		return l.reset.Sub(now), false, nil
	}
	at := now
	if n := l.next[bucket]; n.After(at) {
		at = n
	}
	l.next[bucket] = at.Add(gap)
	if l.budget && now.Before(l.reset) {
		l.remaining--
	}
	return at.Sub(now), true, nil
}

func (l *localIdentifies) SetIdentifyBudget(_ context.Context, remaining int, resetAfter time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.budget, l.remaining, l.reset = true, remaining, l.now().Add(resetAfter)
	return nil
}

// shardOf returns the shard of count that receives a guild's events, as
// Discord routes them: (guild_id >> 22) % count. DMs (guild "") go to
// shard 0.
func shardOf(guild string, count int) int {
	var id uint64
	if _, err := fmt.Sscan(guild, &id); err != nil || count <= 1 {
		return 0
	}
	return int((id >> 22) % uint64(count))
}

// bucketOf returns the max_concurrency bucket of a shard.
func bucketOf(shard, maxConcurrency int) int { return shard % max(maxConcurrency, 1) }

// shareOf returns the most shards of count one of live processes holds.
func shareOf(count, live int) int {
	live = max(live, 1)
	return (count + live - 1) / live
}

// identifyBudgetReserve is the part of Discord's daily IDENTIFY budget
// that the shards leave unused, for people restarting the bot by hand.
func identifyBudgetReserve(total int) int { return total / 20 }

// gatewayShards asks Discord (GET /gateway/bot) how many shards it
// recommends, its max_concurrency and the day's IDENTIFY budget, records
// the budget, and returns the number of shards to run (the configured
// one, if any) and max_concurrency.
func (b *Bot) gatewayShards(ctx context.Context) (count, maxConcurrency int, err error) {
	gb, err := b.dg.GatewayBot(discordgo.WithContext(ctx))
	if err != nil {
		return 0, 0, fmt.Errorf("discord: ask for the gateway (GET /gateway/bot): %w", err)
	}
	count, maxConcurrency = max(gb.Shards, 1), max(gb.SessionStartLimit.MaxConcurrency, 1)
	if b.cfg.Shards > 0 {
		count = b.cfg.Shards
	}
	b.recordBudget(ctx, gb.SessionStartLimit)
	b.log.Info("Discord gateway", "shards", count, "recommended", gb.Shards, "max_concurrency", maxConcurrency,
		"identifies_left", gb.SessionStartLimit.Remaining)
	return count, maxConcurrency, nil
}

// recordBudget records the IDENTIFYs left of the day's budget, less a
// reserve.
func (b *Bot) recordBudget(ctx context.Context, l discordgo.SessionInformation) {
	if l.Total <= 0 {
		return // not reported
	}
	left := l.Remaining - identifyBudgetReserve(l.Total)
	if err := b.identifies.SetIdentifyBudget(ctx, left, time.Duration(l.ResetAfter)*time.Millisecond); err != nil {
		b.log.Warn("cannot record Discord's IDENTIFY budget", "err", err)
	}
}

// identifyTurn waits until shard may IDENTIFY: its bucket's turn, within
// the day's budget. It returns ctx's error if ctx ends first. Limits that
// cannot be read are logged, and one bucket's gap waited.
func (b *Bot) identifyTurn(ctx context.Context, shard int) error {
	bucket := bucketOf(shard, b.maxConcurrency)
	for {
		wait, ok, err := b.identifies.ReserveIdentify(ctx, bucket, identifyGap+identifySlack)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.log.Warn("cannot reserve a gateway IDENTIFY; waiting one bucket's gap", "shard", shard, "err", err)
			wait, ok = identifyGap, true
		}
		if !ok {
			b.log.Warn("Discord's daily IDENTIFY budget is used up; waiting for it to reset", "shard", shard,
				"wait", wait.Round(time.Second))
			if err := b.pace.Sleep(ctx, wait); err != nil {
				return err
			}
			if gb, err := b.dg.GatewayBot(discordgo.WithContext(ctx)); err == nil {
				b.recordBudget(ctx, gb.SessionStartLimit)
			}
			continue
		}
		if wait > 0 {
			b.log.Info("waiting for the shard's turn to IDENTIFY: Discord allows one per 5 s in each max_concurrency bucket",
				"shard", shard, "bucket", bucket, "wait", wait.Round(time.Millisecond))
			if err := b.pace.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		return nil
	}
}

// shard is a gateway shard this process holds.
type shard struct {
	id     int
	token  int64
	cancel context.CancelFunc
	done   chan struct{} // closed when its connection is closed

	expires   bool        // held under a lease other processes may take over
	connected atomic.Bool // its gateway connection is open: see Ready

	mu    sync.Mutex
	until time.Time // the lease as this process knows it: renewed before then
}

// live reports whether events of the shard may be acted on: its lease has
// not run out (as when the process froze and another took it over).
func (s *shard) live() bool {
	if !s.expires {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.until)
}

func (s *shard) renewed(until time.Time) {
	s.mu.Lock()
	if until.After(s.until) {
		s.until = until
	}
	s.mu.Unlock()
}

// runShards holds this process's share of count shards until ctx ends or a
// shard's connection fails for good: every third of a lease it renews them,
// stops those it lost or could not renew for a whole lease, gives up those
// beyond its share and takes free ones up to it. Then it closes every
// connection and gives their shards up.
func (b *Bot) runShards(ctx context.Context, count int) error {
	held := map[int]*shard{}
	defer func() {
		b.noteShards(nil)
		for _, sh := range held {
			sh.cancel()
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, sh := range held {
			<-sh.done
			if err := b.leases.Release(rctx, sh.id, sh.token); err != nil {
				b.log.Warn("giving a shard up failed; it frees itself when its lease ends", "shard", sh.id, "err", err)
			}
		}
	}()
	lease := b.leases.Lease()
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		b.syncShards(ctx, count, held)
		select {
		case <-ctx.Done():
			return nil
		case err := <-b.fatal:
			return err
		case <-t.C:
		}
	}
}

// syncShards renews, drops and takes shards once (see runShards).
func (b *Bot) syncShards(ctx context.Context, count int, held map[int]*shard) {
	lease := b.leases.Lease()
	tokens := map[int]int64{}
	for id, sh := range held {
		tokens[id] = sh.token
	}
	before := slices.Sorted(maps.Keys(held))
	start := time.Now()
	kept, share, err := b.leases.Renew(ctx, count, tokens)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		b.log.Warn("renewing the shard leases failed; trying again", "err", err)
	}
	for id, sh := range held {
		switch _, ok := kept[id]; {
		case err == nil && ok:
			sh.renewed(start.Add(lease))
		case err == nil:
			b.log.Warn("another process took this shard over (this one was frozen or cut off); closing it", "shard", id)
			b.dropShard(ctx, held, id, false)
		case !sh.live():
			b.log.Warn("the shard's lease ran out without a renewal; closing it", "shard", id)
			b.dropShard(ctx, held, id, true)
		}
	}
	if err != nil {
		return
	}
	for _, id := range slices.Backward(slices.Sorted(maps.Keys(held))) {
		if len(held) <= share {
			break
		}
		b.log.Info("giving a shard up to a process that holds fewer", "shard", id, "share", share)
		b.dropShard(ctx, held, id, true)
	}
	if need := share - len(held); need > 0 {
		got, err := b.leases.Acquire(ctx, count, need)
		if err != nil && ctx.Err() == nil {
			b.log.Warn("taking shards failed; trying again", "err", err)
		}
		for id, tok := range got {
			sctx, cancel := context.WithCancel(ctx)
			sh := &shard{id: id, token: tok, cancel: cancel, done: make(chan struct{}), until: start.Add(lease), expires: b.shared}
			held[id] = sh
			go b.runShard(sctx, ctx, sh, count)
		}
	}
	b.noteShards(held)
	if now := slices.Sorted(maps.Keys(held)); !slices.Equal(now, before) {
		b.log.Info("holding Discord shards", "shards", now, "of", count, "share", share)
	}
}

// dropShard closes a shard's connection and, once it is closed, gives the
// shard up if release.
func (b *Bot) dropShard(ctx context.Context, held map[int]*shard, id int, release bool) {
	sh := held[id]
	delete(held, id)
	sh.cancel()
	if !release {
		return
	}
	go func() {
		<-sh.done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := b.leases.Release(rctx, sh.id, sh.token); err != nil {
			b.log.Warn("giving a shard up failed; it frees itself when its lease ends", "shard", sh.id, "err", err)
		}
	}()
}

// runShard connects a shard to the gateway, after its turn to IDENTIFY,
// and keeps it connected (resuming after a drop) until ctx ends; then it
// closes the connection. Its events are handled under events, Run's
// context. A connection refused for good (a bad token, an intent not
// allowed, sharding required) is reported on b.fatal.
func (b *Bot) runShard(ctx, events context.Context, sh *shard, count int) {
	defer close(sh.done)
	defer sh.connected.Store(false)
	dg, err := discordgo.New(b.dg.Token)
	if err != nil {
		b.fail(fmt.Errorf("discord: %w", err))
		return
	}
	dg.Client, dg.Dialer, dg.State, dg.LogLevel = b.dg.Client, gatewayDialer(), b.dg.State, b.dg.LogLevel
	dg.Identify.Intents = b.dg.Identify.Intents
	dg.ShardID, dg.ShardCount = sh.id, count
	// discordgo would reconnect by itself, and could reopen a connection
	// this process has closed; runShard does it instead.
	dg.ShouldReconnectOnError = false
	dg.SyncEvents = true
	down := make(chan struct{}, 1)
	var ready sync.Once
	identified := make(chan struct{})
	b.handle(events, dg, sh)
	dg.AddHandler(func(_ *discordgo.Session, _ *discordgo.Ready) { ready.Do(func() { close(identified) }) })
	dg.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) {
		select {
		case down <- struct{}{}:
		default:
		}
	})
	backoff := time.Second
	for {
		select {
		case <-identified: // a RESUME, which needs no turn
		default:
			if err := b.identifyTurn(ctx, sh.id); err != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err := dg.Open(); err != nil {
			if fatal := openError(err); isFatal(err) {
				b.fail(fatal)
				return
			}
			b.log.Warn("connecting a shard to the gateway failed; trying again", "shard", sh.id, "wait", backoff, "err", err)
			if b.pace.Sleep(ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, 2*time.Minute)
			continue
		}
		backoff = time.Second
		select {
		case <-down: // the Disconnect of an earlier connection
		default:
		}
		if !b.registered.Swap(true) {
			if err := b.register(events); err != nil {
				b.fail(err)
				_ = dg.Close()
				return
			}
		}
		b.log.Info("connected to Discord", "shard", sh.id, "of", count, "message_content", b.cfg.MessageContent)
		sh.connected.Store(true)
		select {
		case <-ctx.Done():
			if err := dg.Close(); err != nil {
				b.log.Warn("closing the gateway failed", "shard", sh.id, "err", err)
			}
			return
		case <-down:
			sh.connected.Store(false)
			b.log.Info("the gateway connection dropped; resuming", "shard", sh.id)
		}
		// A process that froze past its lease may have lost the shard:
		// it reconnects only once the lease is renewed, or runShards
		// closes it.
		for !sh.live() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// fail reports an error that ends Run.
func (b *Bot) fail(err error) {
	select {
	case b.fatal <- err:
	default:
	}
}

// isFatal reports whether a gateway close code means connecting again
// would fail the same way.
func isFatal(err error) bool {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case 4004, 4010, 4011, 4012, 4013, 4014:
		return true
	}
	return false
}

// handle routes a shard connection's events to the bot, while the shard's
// lease lasts: a process that froze past it has had the shard taken over,
// and what it reads late is the new holder's to handle (its catch-up
// reads the messages back).
func (b *Bot) handle(ctx context.Context, dg *discordgo.Session, sh *shard) {
	live := func(what string) bool {
		if sh.live() {
			return true
		}
		b.log.Info("ignoring an event of a shard whose lease ran out", "shard", sh.id, "event", what)
		return false
	}
	// Handlers run on the gateway's reader, in the order Discord sent the
	// events, and return at once: the work is done elsewhere.
	dg.AddHandler(func(_ *discordgo.Session, ic *discordgo.InteractionCreate) {
		if live("interaction") {
			b.async(ctx, func(ctx context.Context) { b.onInteraction(ctx, ic.Interaction) })
		}
	})
	dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if live("message") {
			b.onMessage(ctx, m.Message)
		}
	})
	dg.AddHandler(func(_ *discordgo.Session, g *discordgo.GuildCreate) {
		if live("guild") {
			b.onGuild(ctx, g.Guild)
		}
	})
	b.watchIdentifies(ctx, dg)
}
