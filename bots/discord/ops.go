package discord

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/easel-bot/easel/bots/inbox"
)

// Metrics observes the adapter, for monitoring: how fast it acknowledges
// interactions, and what its inbox drops and takes up again.
type Metrics = inbox.AdapterMetrics

// Ready reports whether the bot takes events now: nil once it has taken
// its share of the shards and every shard it holds is connected (a process
// whose replicas hold every shard holds none, and is ready); an error
// naming the shards not connected otherwise.
func (b *Bot) Ready() error {
	b.shardsMu.Lock()
	defer b.shardsMu.Unlock()
	if b.heldShards == nil {
		return errors.New("no shard taken yet")
	}
	var down []int
	for id, sh := range b.heldShards {
		if !sh.connected.Load() {
			down = append(down, id)
		}
	}
	if len(down) > 0 {
		slices.Sort(down)
		return fmt.Errorf("shards %v of %v not connected", down, slices.Sorted(maps.Keys(b.heldShards)))
	}
	return nil
}

// noteShards records the shards this process holds, for Ready; nil when
// it holds none because it stopped.
func (b *Bot) noteShards(held map[int]*shard) {
	b.shardsMu.Lock()
	defer b.shardsMu.Unlock()
	if held == nil {
		b.heldShards = nil
		return
	}
	b.heldShards = maps.Clone(held)
}
