package discord

import (
	"strconv"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// snowflake returns an id made at t.
func snowflake(t time.Time, n int) string {
	return strconv.FormatUint(uint64(t.UnixMilli()-1420070400000)<<22|uint64(n), 10)
}

// Only threads active since the cut-off are caught up on, the most recent
// first, at most n; channels that are not threads and threads without a
// message are left out.
func TestRecentThreads(t *testing.T) {
	now := time.Now()
	since := now.Add(-catchUpAge)
	var chans []*discordgo.Channel
	for i := range 5 {
		chans = append(chans, &discordgo.Channel{ID: strconv.Itoa(i), Type: discordgo.ChannelTypeGuildPublicThread,
			LastMessageID: snowflake(now.Add(-time.Duration(i)*time.Hour), i)})
	}
	chans = append(chans,
		&discordgo.Channel{ID: "old", Type: discordgo.ChannelTypeGuildPublicThread, LastMessageID: snowflake(since.Add(-time.Minute), 9)},
		&discordgo.Channel{ID: "text", Type: discordgo.ChannelTypeGuildText, LastMessageID: snowflake(now, 8)},
		&discordgo.Channel{ID: "empty", Type: discordgo.ChannelTypeGuildPublicThread},
		nil)
	chans[0], chans[3] = chans[3], chans[0]
	got := recentThreads(chans, since, 3)
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if len(ids) != 3 || ids[0] != "0" || ids[1] != "1" || ids[2] != "2" {
		t.Errorf("recent threads %v, want [0 1 2]", ids)
	}
	if n := len(recentThreads(chans, since, 100)); n != 5 {
		t.Errorf("%d recent threads without a bound, want 5", n)
	}
}
