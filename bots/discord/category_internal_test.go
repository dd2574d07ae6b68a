package discord

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// Before the gateway announces a guild (as when deliveries left by an
// earlier process are handled at start), a channel's category is asked of
// Discord once and then remembered; a thread's is its parent channel's;
// a channel in no category, a DM and a failed lookup have none.
func TestCategoryLookup(t *testing.T) {
	srv := discordtest.NewServer(t)
	cat := srv.AddCategory(srv.Guild, "art")
	art := srv.AddChannel(srv.Guild, "posters", cat)
	b, err := New(Config{Token: srv.Token, APIURL: srv.URL()}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const route = "GET /channels/{channel_id}"
	for range 3 {
		if got := b.category(ctx, srv.Guild, art); got != cat {
			t.Fatalf("category of %s = %q, want %q", art, got, cat)
		}
	}
	if n := len(srv.Calls(route)); n != 1 {
		t.Errorf("%d lookups of a channel asked three times, want 1", n)
	}
	starter := srv.Say(srv.Alice, art, "a thread starts here")
	thread, err := b.dg.MessageThreadStart(art, starter.ID, "a thread", 1440)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.category(ctx, srv.Guild, thread.ID); got != cat {
		t.Errorf("category of a thread = %q, want its channel's, %q", got, cat)
	}
	for name, c := range map[string]struct{ guild, channel string }{
		"no category": {srv.Guild, srv.Channel},
		"a DM":        {"", srv.DMChannel(srv.Alice)},
		"unknown":     {srv.Guild, "123"},
	} {
		if got := b.category(ctx, c.guild, c.channel); got != "" {
			t.Errorf("%s: category %q, want none", name, got)
		}
	}
}

// The categories remembered are bounded, and forgotten after categoryTTL:
// at the bound, expired entries go first.
func TestCategoriesAreBounded(t *testing.T) {
	var c categories
	now := time.Now()
	for i := range maxCategories + 10 {
		c.put(strconv.Itoa(i), "cat", now)
	}
	if n := len(c.m); n > maxCategories {
		t.Errorf("%d categories remembered, more than %d", n, maxCategories)
	}
	c.put("new", "cat", now)
	if got, ok := c.get("new", now.Add(categoryTTL-time.Second)); !ok || got != "cat" {
		t.Errorf("a fresh entry: %q, %v", got, ok)
	}
	if _, ok := c.get("new", now.Add(categoryTTL)); ok {
		t.Error("an entry past categoryTTL is still used")
	}
	c.put("later", "cat", now.Add(categoryTTL))
	if n := len(c.m); n != 1 {
		t.Errorf("%d entries after a put at the bound once all expired, want 1", n)
	}
}
