package slack

import (
	"context"
	"sync"

	"github.com/easel-bot/easel/core"
)

// maxUsers bounds the name cache; it is cleared when full.
const maxUsers = 10000

// userCache remembers display names by user id.
type userCache struct {
	mu    sync.Mutex
	names map[string]string
}

func newUserCache() *userCache { return &userCache{names: map[string]string{}} }

// user returns the core.User for a Slack user id, named by hint if given
// (Slack sends a name with commands and button presses) or else by a
// users.info lookup in workspace w, remembered. A failed lookup leaves the
// name empty.
func (b *Bot) user(ctx context.Context, w *workspace, id, hint string) core.User {
	if hint != "" {
		return core.User{ID: id, Name: hint}
	}
	c := b.users
	c.mu.Lock()
	name, ok := c.names[id]
	c.mu.Unlock()
	if ok {
		return core.User{ID: id, Name: name}
	}
	err := b.call(ctx, "users.info", func() error {
		u, err := w.api.GetUserInfoContext(ctx, id)
		if err == nil {
			name = either(u.Profile.DisplayName, either(u.RealName, u.Name))
		}
		return err
	})
	if err != nil {
		b.log.Warn("slack: user lookup failed", "user", id, "err", err)
		return core.User{ID: id}
	}
	c.mu.Lock()
	if len(c.names) >= maxUsers {
		clear(c.names)
	}
	c.names[id] = name
	c.mu.Unlock()
	return core.User{ID: id, Name: name}
}
