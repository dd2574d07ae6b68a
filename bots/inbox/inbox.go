// Package inbox is the durable inbox Easel's chat adapters share, so that
// every delivery they act on (a Slack event, slash command or button press,
// a Discord interaction or gateway message) is handled exactly once, across
// crashes and restarts.
//
// A delivery is recorded (Record) before the platform is told it arrived,
// or, for a gateway message, which is never acknowledged, before anything
// acts on it. A delivery recorded before, by this process or an earlier
// one, is reported as a duplicate, for the adapter to drop. The turn a
// delivery asks for marks it handled in the commit that records the turn
// (the adapter passes the key it got from Record as core.Message.Delivery;
// see core.EffectsOf); a delivery whose handling ends without a turn (a
// refusal, a message Easel ignores) is marked handled when its Job returns
// (Handle). A process that stops in between leaves the delivery unhandled,
// and the next start hands it to the adapter again (Left).
//
// A delivery that cannot be handled yet, such as a Slack reply whose
// thread's session is not recorded yet, can be set aside (Park) until
// another delivery's handling wakes it (Wake) or its deadline passes. It
// stays unhandled meanwhile, so a restart takes it up again too.
package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/easel-bot/easel/core"
)

// Store is what the inbox needs of the session store. *storage.DB
// implements it; storage/storetest checks every backend against it.
type Store interface {
	// Receive records a delivery under key, marks key for dedupe for ttl,
	// and reports whether this is its first delivery within ttl; false
	// means a duplicate. A first delivery is kept until Handled.
	Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (first bool, err error)
	// Handled forgets the delivery key; its dedupe mark stays until it
	// expires. Forgetting a key not kept is no error.
	Handled(ctx context.Context, key string) error
	// Unhandled returns the deliveries received but not handled, of every
	// platform, oldest first. A store shared by several processes returns
	// only those no other live process holds, and holds them for this one
	// from then on; its Receive holds what it records for this process.
	Unhandled(ctx context.Context) ([]core.Delivery, error)
}

// Metrics observes an inbox's deliveries, for monitoring. Its methods
// must return at once and be safe for concurrent use.
type Metrics interface {
	// Duplicate is called for a delivery dropped as a duplicate.
	Duplicate()
	// Replayed is called with the number of deliveries Left hands back.
	Replayed(n int)
}

// A Job handles one delivery. key is the delivery's inbox key, to be set
// as core.Message.Delivery on the message the job hands to the engine, so
// that recording its turn marks the delivery handled in the same commit.
// The job reports whether the delivery's handling is over: false, which
// only a job that parked the delivery returns, leaves it unhandled.
type Job func(ctx context.Context, key string) (over bool)

// maxID bounds the length of a delivery id kept as it is in a key; a
// longer one (no real id is this long) is replaced by its digest, within
// the store's key limits.
const maxID = 128

// maxParked bounds the deliveries parked at once.
const maxParked = 10000

// Inbox is the inbox of one platform's deliveries. Its methods are safe
// for concurrent use.
type Inbox struct {
	store  Store
	prefix string
	ttl    time.Duration
	log    *slog.Logger
	obs    Metrics

	mu      sync.Mutex
	closed  bool
	busy    map[string]bool      // deliveries this process is handling, parked ones too
	parked  map[string][]*parked // by topic
	nParked int
	retries sync.WaitGroup
}

// parked is a delivery set aside until its topic is woken.
type parked struct {
	retry func()
	timer *time.Timer
}

// New returns the inbox of platform's deliveries in store: their keys
// start with platform and a colon, and a duplicate is recognised for ttl
// after its first delivery. log may be nil.
func New(store Store, platform string, ttl time.Duration, log *slog.Logger) *Inbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inbox{store: store, prefix: platform + ":", ttl: ttl, log: log, obs: NoMetrics{},
		parked: map[string][]*parked{}, busy: map[string]bool{}}
}

// Observe has m told of the inbox's duplicates and replays; call it before
// the inbox is used. A nil m observes nothing.
func (in *Inbox) Observe(m Metrics) {
	if m != nil {
		in.obs = m
	}
}

// AdapterMetrics is what a chat adapter reports for monitoring: its
// inbox's deliveries, and how fast it acknowledges them. Its methods must
// return at once and be safe for concurrent use.
type AdapterMetrics interface {
	Metrics
	// Acked is called when a delivery is acknowledged, d after it arrived.
	Acked(d time.Duration)
}

// NoMetrics observes nothing: the metrics of an inbox not observed, or of
// an adapter configured without any.
type NoMetrics struct{}

func (NoMetrics) Acked(time.Duration) {}
func (NoMetrics) Duplicate()          {}
func (NoMetrics) Replayed(int)        {}

// Key returns the inbox key of the platform's delivery id.
func (in *Inbox) Key(id string) string {
	if len(id) > maxID {
		sum := sha256.Sum256([]byte(id))
		id = hex.EncodeToString(sum[:12])
	}
	return in.prefix + id
}

// Record records a delivery, named id by the platform, of the given kind
// and payload, to be called before the platform is told it arrived. It
// returns the delivery's inbox key and whether this is its first delivery;
// false means a duplicate (a retry, a redelivery, a gateway replay) that
// was recorded before, by this process or an earlier one, and is to be
// dropped. An error means nothing was recorded: the delivery must not be
// acknowledged as taken.
func (in *Inbox) Record(ctx context.Context, id, kind string, payload []byte) (key string, first bool, err error) {
	if id == "" {
		return "", false, errors.New("inbox: a delivery without an id")
	}
	key = in.Key(id)
	first, err = in.store.Receive(ctx, key, kind, payload, in.ttl)
	if err != nil {
		return key, false, fmt.Errorf("inbox: record %s: %w", key, err)
	}
	if first {
		in.setBusy(key, true)
	} else {
		in.obs.Duplicate()
	}
	return key, first, nil
}

// Handle runs job for the delivery key, then marks the delivery handled
// unless job says its handling is not over. A job whose turn was recorded
// has marked it already, in the same commit. If ctx was canceled before
// job returned (the adapter is stopping), the delivery is left unhandled
// for the next start: its handling may have been cut short.
func (in *Inbox) Handle(ctx context.Context, key string, job Job) {
	if !job(ctx, key) {
		return
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		in.log.Info("inbox: handling stopped short; the next start takes the delivery up again", "key", key)
		in.setBusy(key, false)
		return
	}
	in.Done(context.WithoutCancel(ctx), key)
}

// Done marks the delivery key handled, for an adapter that handles it
// without Handle. A failure is logged: the delivery stays unhandled and the
// next start takes it up again.
func (in *Inbox) Done(ctx context.Context, key string) {
	if err := in.store.Handled(ctx, key); err != nil {
		in.log.Warn("inbox: could not mark a delivery handled; a restart may take it up again", "key", key, "err", err)
	}
	in.setBusy(key, false)
}

// setBusy notes whether this process is handling the delivery key.
func (in *Inbox) setBusy(key string, busy bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if busy {
		in.busy[key] = true
	} else {
		delete(in.busy, key)
	}
}

// Left returns this platform's deliveries that were recorded but are not
// being handled (an earlier process stopped first, or a process sharing
// the store died or froze with them), oldest first, for the adapter to
// handle now. Those this process is handling, parked ones included, are
// not among them, so an adapter may call Left again while it runs, to take
// up what another process left; a store shared by several processes hands
// each delivery to one of them (see Store).
func (in *Inbox) Left(ctx context.Context) ([]core.Delivery, error) {
	all, err := in.store.Unhandled(ctx)
	if err != nil {
		return nil, fmt.Errorf("inbox: read the deliveries left unhandled: %w", err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var mine []core.Delivery
	for _, d := range all {
		if strings.HasPrefix(d.Key, in.prefix) && !in.busy[d.Key] {
			in.busy[d.Key] = true
			mine = append(mine, d)
		}
	}
	if len(mine) > 0 {
		in.obs.Replayed(len(mine))
	}
	return mine, nil
}

// Park sets a delivery aside until Wake(topic) or until, whichever comes
// first, and then runs retry in a goroutine of its own; retry handles the
// delivery again (with Handle). A job that parks its delivery returns
// false, so that it stays unhandled, and a restart takes it up again.
//
// A job checks again, after Park, whatever made it wait: if the wait is
// over already (its wake may have gone by before Park), it calls unpark,
// and carries on only if unpark reports true; false means retry has been
// or will be run instead. ok is false when too many deliveries are parked:
// then nothing was parked, and the job does without waiting. Once the
// inbox is closed, Park parks nothing and unpark reports false: the
// delivery waits for the next start.
func (in *Inbox) Park(topic string, until time.Time, retry func()) (unpark func() bool, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return func() bool { return false }, true
	}
	if in.nParked >= maxParked {
		return nil, false
	}
	p := &parked{retry: retry}
	in.parked[topic] = append(in.parked[topic], p)
	in.nParked++
	p.timer = time.AfterFunc(time.Until(until), func() {
		if in.unpark(topic, p) {
			in.run(p.retry)
		}
	})
	return func() bool { return in.unpark(topic, p) }, true
}

// unpark removes p from topic's deliveries and reports whether it was
// still there.
func (in *Inbox) unpark(topic string, p *parked) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	list := in.parked[topic]
	for i, q := range list {
		if q == p {
			p.timer.Stop()
			if len(list) == 1 {
				delete(in.parked, topic)
			} else {
				in.parked[topic] = append(list[:i:i], list[i+1:]...)
			}
			in.nParked--
			return true
		}
	}
	return false
}

// Wake retries the deliveries parked on topic, one after another in the
// order they were parked, in a goroutine of their own.
func (in *Inbox) Wake(topic string) {
	in.mu.Lock()
	list := in.parked[topic]
	delete(in.parked, topic)
	in.nParked -= len(list)
	for _, p := range list {
		p.timer.Stop()
	}
	in.mu.Unlock()
	if len(list) == 0 {
		return
	}
	in.run(func() {
		for _, p := range list {
			p.retry()
		}
	})
}

// run starts retry unless the inbox is closed.
func (in *Inbox) run(retry func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.retries.Add(1)
	go func() {
		defer in.retries.Done()
		retry()
	}()
}

// Close drops the parked deliveries, which stay unhandled for the next
// start, and waits for the retries running. Park, Wake and the deadlines
// of parked deliveries start nothing after Close.
func (in *Inbox) Close() {
	in.mu.Lock()
	in.closed = true
	for _, list := range in.parked {
		for _, p := range list {
			p.timer.Stop()
		}
	}
	in.parked, in.nParked = map[string][]*parked{}, 0
	in.mu.Unlock()
	in.retries.Wait()
}

// TakeUpEvery calls takeUp every period until ctx ends: an adapter's
// replay, which takes up through Left what a process sharing the store
// left when it died or froze. A period of zero or less takes up nothing.
// A failure is logged and tried again at the next period.
func TakeUpEvery(ctx context.Context, period time.Duration, takeUp func(context.Context) error, log *slog.Logger) {
	if period <= 0 {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := takeUp(ctx); err != nil && ctx.Err() == nil {
			log.Warn("taking up deliveries other processes left failed; trying again", "err", err)
		}
	}
}
