package postgres_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

// shardReplica is one process's view of the shards: its limits, its
// shard leases and the shards it holds.
type shardReplica struct {
	limits *postgres.Limits
	shards *postgres.Shards
	held   map[int]int64
}

func shardReplicas(t *testing.T, url string, n int, lease time.Duration) []*shardReplica {
	t.Helper()
	ctx := context.Background()
	var rs []*shardReplica
	for range n {
		db, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		limits, err := db.NewLimits(ctx, 1, lease)
		if err != nil {
			t.Fatal(err)
		}
		shards, err := limits.Shards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &shardReplica{limits: limits, shards: shards, held: map[int]int64{}})
		t.Cleanup(func() { shards.Close(); limits.Close(); db.Close() })
	}
	return rs
}

// sync renews what r holds, gives up what it holds beyond its share and
// takes shards up to its share, as the Discord adapter does each period.
func (r *shardReplica) sync(t *testing.T, count int) (share int) {
	t.Helper()
	ctx := context.Background()
	kept, share, err := r.shards.Renew(ctx, count, r.held)
	if err != nil {
		t.Fatal(err)
	}
	r.held = kept
	for _, sh := range slices.Backward(slices.Sorted(maps.Keys(r.held))) {
		if len(r.held) <= share {
			break
		}
		if err := r.shards.Release(ctx, sh, r.held[sh]); err != nil {
			t.Fatal(err)
		}
		delete(r.held, sh)
	}
	got, err := r.shards.Acquire(ctx, count, share-len(r.held))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(r.held, got)
	return share
}

// owners checks that no shard is held twice and returns each shard's
// holder index.
func owners(t *testing.T, rs []*shardReplica) map[int]int {
	t.Helper()
	out := map[int]int{}
	for i, r := range rs {
		for sh := range r.held {
			if j, dup := out[sh]; dup {
				t.Fatalf("shard %d held by replicas %d and %d", sh, j, i)
			}
			out[sh] = i
		}
	}
	return out
}

func TestShardsSpreadOverReplicasAndAreTakenOver(t *testing.T) {
	const count, lease = 5, 2 * time.Second
	url := pgtest.Start(t).DB(t)
	rs := shardReplicas(t, url, 1, lease)
	ctx := context.Background()

	// The first replica alone takes every shard.
	if share := rs[0].sync(t, count); share != count || len(rs[0].held) != count {
		t.Fatalf("one replica: share %d, holds %v", share, rs[0].held)
	}
	rs = append(rs, shardReplicas(t, url, 2, lease)...)
	// As the others join, it gives up its excess, and they take it: at
	// most ceil(5/3) = 2 each, every shard held by exactly one.
	for range 3 {
		for _, r := range rs {
			r.sync(t, count)
		}
	}
	got := owners(t, rs)
	if len(got) != count {
		t.Fatalf("shards held: %v, want all %d", got, count)
	}
	for i, r := range rs {
		if len(r.held) > 2 {
			t.Errorf("replica %d holds %d shards, want at most 2", i, len(r.held))
		}
	}

	// Replica 0 freezes: it stops renewing. Within the lease its shards
	// stay its own; after it, the others take them.
	frozen := maps.Clone(rs[0].held)
	rs[1].sync(t, count)
	if owners(t, rs[1:]); len(rs[1].held) > 2 {
		t.Fatalf("replica 1 took shards of a live replica: %v", rs[1].held)
	}
	deadline := time.Now().Add(lease + time.Second)
	for len(owners(t, rs[1:])) < count {
		if time.Now().After(deadline) {
			t.Fatalf("shards of the frozen replica not taken over within the lease: %v", owners(t, rs[1:]))
		}
		time.Sleep(lease / 6)
		rs[1].sync(t, count)
		rs[2].sync(t, count)
		if time.Until(deadline) > time.Second+lease/6 && len(owners(t, rs[1:])) == count {
			t.Fatal("shards of the frozen replica taken over before its lease ended")
		}
	}
	for i, r := range rs[1:] {
		if len(r.held) > 3 {
			t.Errorf("replica %d holds %d shards, want at most ceil(5/2)", i+1, len(r.held))
		}
	}
	// It wakes: its renewal finds its shards lost, and its late release
	// frees nothing.
	kept, _, err := rs[0].shards.Renew(ctx, count, frozen)
	if err != nil || len(kept) != 0 {
		t.Fatalf("a frozen replica kept %v after its lease (err %v)", kept, err)
	}
	for sh, tok := range frozen {
		if err := rs[0].shards.Release(ctx, sh, tok); err != nil {
			t.Fatal(err)
		}
	}
	rs[0].held = kept
	taken := map[int]int64{}
	for _, r := range rs[1:] {
		maps.Copy(taken, r.held)
	}
	for _, r := range rs[1:] {
		kept, _, err := r.shards.Renew(ctx, count, r.held)
		if err != nil || len(kept) != len(r.held) {
			t.Fatalf("the frozen replica's late release freed a shard taken over: kept %v of %v (err %v)", kept, r.held, err)
		}
	}

	// Replica 2 is killed outright: its connection closes, and its shards
	// are free at once, long before their leases end.
	for range 2 {
		for _, r := range rs[:2] {
			r.sync(t, count)
		}
		rs[2].sync(t, count)
	}
	if len(rs[2].held) == 0 {
		t.Fatalf("replica 2 holds no shard to lose: %v", owners(t, rs))
	}
	rs[2].shards.Kill()
	rs[2].held = nil
	start := time.Now()
	for len(owners(t, rs[:2])) < count {
		if time.Since(start) > lease/2 {
			t.Fatalf("shards of a killed replica not free at once: %v", owners(t, rs[:2]))
		}
		rs[0].sync(t, count)
		rs[1].sync(t, count)
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a killed replica's shards taken over in %s (lease %s)", time.Since(start).Round(time.Millisecond), lease)
	for i, r := range rs[:2] {
		if len(r.held) > 3 {
			t.Errorf("replica %d holds %d shards, want at most 3", i, len(r.held))
		}
	}
}

func TestIdentifyPacingAcrossReplicas(t *testing.T) {
	url := pgtest.Start(t).DB(t)
	rs := shardReplicas(t, url, 3, 5*time.Second)
	ctx := context.Background()
	const gap = 5 * time.Second

	// Six IDENTIFYs in bucket 0 from three replicas at once are spaced a
	// gap apart; bucket 1 is paced on its own.
	var mu sync.Mutex
	var waits []time.Duration
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			w, ok, err := rs[i%3].shards.ReserveIdentify(ctx, 0, gap)
			if err != nil || !ok {
				t.Errorf("reserve: %v, ok %v", err, ok)
			}
			mu.Lock()
			waits = append(waits, w)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(waits)
	for i, w := range waits {
		if want := time.Duration(i) * gap; w < want-time.Second || w > want+time.Second {
			t.Errorf("IDENTIFY %d in one bucket waits %s, want about %s (all: %v)", i, w, want, waits)
		}
	}
	if w, ok, err := rs[1].shards.ReserveIdentify(ctx, 1, gap); err != nil || !ok || w != 0 {
		t.Errorf("first IDENTIFY in bucket 1 waits %s (ok %v, err %v)", w, ok, err)
	}

	// The day's budget is shared: two left means two more, then a wait
	// until it resets.
	if err := rs[0].shards.SetIdentifyBudget(ctx, 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, ok, err := rs[i+1].shards.ReserveIdentify(ctx, 2, gap); err != nil || !ok {
			t.Fatalf("IDENTIFY %d within the budget refused (ok %v, err %v)", i, ok, err)
		}
	}
	w, ok, err := rs[0].shards.ReserveIdentify(ctx, 3, gap)
	if err != nil || ok || w < 59*time.Minute || w > time.Hour {
		t.Errorf("IDENTIFY past the budget: wait %s, ok %v, err %v; want a wait of about 1h", w, ok, err)
	}
}

func TestSlackConnectionsAtMostTen(t *testing.T) {
	url := pgtest.Start(t).DB(t)
	const lease = 2 * time.Second
	rs := shardReplicas(t, url, 11, lease)
	ctx := context.Background()
	type grant struct {
		slot  int
		token int64
	}
	var grants []grant
	for i, r := range rs {
		slot, token, ok, err := r.limits.SlackConnections().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (i < postgres.SlackSocketConnections) {
			t.Fatalf("replica %d: got slot %d (ok %v)", i, slot, ok)
		}
		if ok {
			grants = append(grants, grant{slot, token})
		}
	}
	// One gives its slot up: the eleventh takes it.
	c := rs[3].limits.SlackConnections()
	if err := c.Release(ctx, grants[3].slot, grants[3].token); err != nil {
		t.Fatal(err)
	}
	slot, _, ok, err := rs[10].limits.SlackConnections().Acquire(ctx)
	if err != nil || !ok || slot != grants[3].slot {
		t.Fatalf("after a release: slot %d, ok %v, err %v; want slot %d", slot, ok, err, grants[3].slot)
	}
	// One stops renewing: after the lease its slot is taken, and its
	// renewal then fails.
	time.Sleep(lease + 100*time.Millisecond)
	for i, g := range grants {
		if i == 0 || i == 3 {
			continue
		}
		if ok, err := rs[i].limits.SlackConnections().Renew(ctx, g.slot, g.token); err != nil || !ok {
			t.Fatalf("replica %d: renew %v %v", i, ok, err)
		}
	}
	if _, _, ok, err := rs[3].limits.SlackConnections().Acquire(ctx); err != nil || !ok {
		t.Fatalf("the expired slot was not taken: ok %v, err %v", ok, err)
	}
	if ok, err := rs[0].limits.SlackConnections().Renew(ctx, grants[0].slot, grants[0].token); err != nil || ok {
		t.Fatalf("a slot taken over still renews for its old holder: ok %v, err %v", ok, err)
	}
}
