package discord

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func TestShardOfRoutesAsDiscord(t *testing.T) {
	// Discord routes a guild to shard (id >> 22) % count.
	g := "197038439483310086"
	id, _ := strconv.ParseUint(g, 10, 64)
	for _, count := range []int{1, 2, 3, 16} {
		if got, want := shardOf(g, count), int((id>>22)%uint64(count)); got != want {
			t.Errorf("shardOf(%s, %d) = %d, want %d", g, count, got, want)
		}
	}
	if shardOf("", 4) != 0 || shardOf("x", 4) != 0 {
		t.Error("DMs and odd ids are not on shard 0")
	}
}

func TestBucketsAndShares(t *testing.T) {
	for _, c := range []struct{ shard, maxc, want int }{{0, 1, 0}, {5, 1, 0}, {5, 16, 5}, {17, 16, 1}, {3, 0, 0}} {
		if got := bucketOf(c.shard, c.maxc); got != c.want {
			t.Errorf("bucketOf(%d, %d) = %d, want %d", c.shard, c.maxc, got, c.want)
		}
	}
	for _, c := range []struct{ count, live, want int }{{1, 1, 1}, {2, 1, 2}, {2, 2, 1}, {2, 3, 1}, {5, 3, 2}, {16, 3, 6}, {4, 0, 4}} {
		if got := shareOf(c.count, c.live); got != c.want {
			t.Errorf("shareOf(%d, %d) = %d, want %d", c.count, c.live, got, c.want)
		}
	}
}

func TestLocalShardsHoldEveryShard(t *testing.T) {
	ctx := context.Background()
	l := &localShards{held: map[int]int64{}}
	kept, share, _ := l.Renew(ctx, 3, nil)
	if len(kept) != 0 || share != 3 {
		t.Fatalf("renew nothing: %v, share %d", kept, share)
	}
	got, _ := l.Acquire(ctx, 3, share)
	if len(got) != 3 {
		t.Fatalf("acquired %v, want shards 0–2", got)
	}
	if more, _ := l.Acquire(ctx, 3, 1); len(more) != 0 {
		t.Fatalf("acquired a shard twice: %v", more)
	}
	_ = l.Release(ctx, 1, got[1]+100) // a stale grant frees nothing
	if kept, _, _ := l.Renew(ctx, 3, got); len(kept) != 3 {
		t.Fatalf("kept %v", kept)
	}
	_ = l.Release(ctx, 1, got[1])
	if kept, _, _ := l.Renew(ctx, 3, got); len(kept) != 2 {
		t.Fatalf("kept %v after releasing shard 1", kept)
	}
	if again, _ := l.Acquire(ctx, 3, 3); len(again) != 1 || again[1] <= got[2] {
		t.Fatalf("re-acquired %v, want shard 1 with a new token", again)
	}
}

func TestLocalIdentifiesPaceBucketsAndBudget(t *testing.T) {
	ctx := context.Background()
	now := t0
	l := &localIdentifies{now: func() time.Time { return now }, next: map[int]time.Time{}}
	var waits []time.Duration
	for range 3 {
		w, ok, _ := l.ReserveIdentify(ctx, 0, identifyGap)
		if !ok {
			t.Fatal("refused without a budget")
		}
		waits = append(waits, w)
	}
	if waits[0] != 0 || waits[1] != identifyGap || waits[2] != 2*identifyGap {
		t.Errorf("waits in one bucket %v, want 0, 5s, 10s", waits)
	}
	if w, _, _ := l.ReserveIdentify(ctx, 1, identifyGap); w != 0 {
		t.Errorf("another bucket waits %s", w)
	}
	_ = l.SetIdentifyBudget(ctx, 1, time.Hour)
	if _, ok, _ := l.ReserveIdentify(ctx, 2, identifyGap); !ok {
		t.Fatal("the last of the budget refused")
	}
	if w, ok, _ := l.ReserveIdentify(ctx, 3, identifyGap); ok || w != time.Hour {
		t.Errorf("past the budget: wait %s, ok %v; want 1h, false", w, ok)
	}
	now = now.Add(time.Hour)
	if _, ok, _ := l.ReserveIdentify(ctx, 3, identifyGap); !ok {
		t.Error("refused after the budget reset")
	}
}
