package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/core/imagecheck"
)

// Installations are the workspaces that installed the app through OAuth,
// by install.Record.Key. *storage.DB and *postgres.DB implement it;
// storage/storetest checks both against it.
type Installations interface {
	// SaveInstallation stores rec under rec.Key(), replacing the one
	// stored there.
	SaveInstallation(ctx context.Context, rec install.Record) error
	// Installation returns the installation stored under key, and false
	// if there is none.
	Installation(ctx context.Context, key string) (install.Record, bool, error)
	// DeleteInstallation forgets the installation stored under key and
	// reports whether there was one.
	DeleteInstallation(ctx context.Context, key string) (bool, error)
	// MarkEvent marks key for ttl and reports whether it was not marked
	// already: it makes an install's state good once, in every process
	// sharing the store.
	MarkEvent(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
}

// errNotInstalled is the error of a delivery or a thread of a workspace
// the app has no token for.
var errNotInstalled = errors.New("the app is not installed in this workspace")

// teamID names the workspace a delivery or a thread belongs to: its id,
// and its Enterprise Grid organization's, when known.
type teamID struct {
	team       string
	enterprise string
}

// workspace serves one workspace (or, installed organization-wide, one
// organization): the Web API with its bot token, the downloads of its
// files, and its bot's user id.
type workspace struct {
	api     *slackapi.Client
	files   *imagecheck.Fetcher // downloads attachments, from Slack's hosts only
	botUser string
	botID   string // from auth.test; "" for an installation, known by botUser
	sealed  []byte // an installation's sealed token, as stored
}

// newWorkspace returns the workspace served with token, whose bot user is
// botUser ("" until identify learns it).
func (b *Bot) newWorkspace(token, botUser string) *workspace {
	return &workspace{api: b.newClient(token), files: b.newFetcher(token), botUser: botUser}
}

// newClient returns a Web API client calling with token, and with the
// app-level token for Socket Mode.
func (b *Bot) newClient(token string) *slackapi.Client {
	opts := []slackapi.Option{
		slackapi.OptionAPIURL(b.cfg.APIURL),
		slackapi.OptionHTTPClient(b.cfg.HTTPClient),
		slackapi.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)),
	}
	if b.cfg.AppToken != "" {
		opts = append(opts, slackapi.OptionAppLevelToken(b.cfg.AppToken))
	}
	return slackapi.New(token, opts...)
}

// workspace returns what serves who: its installation (the workspace's
// own, else its organization's), else the workspace of SLACK_BOT_TOKEN
// if who is that one. Without OAuth, SLACK_BOT_TOKEN's serves everything.
// An installation's client is made once and kept while its installation
// stays as it was, and so is a key's having none: each is forgotten when
// the app is installed or uninstalled here, and checked against the store
// every clientTTL, so that what another process installed or uninstalled
// is noticed.
func (b *Bot) workspace(ctx context.Context, who teamID) (*workspace, error) {
	if b.installs == nil {
		return b.home, nil
	}
	who = b.clients.learn(who)
	var keys []string
	if who.team != "" {
		keys = append(keys, install.TeamKey(who.team))
	}
	if who.enterprise != "" {
		keys = append(keys, install.EnterpriseKey(who.enterprise))
	}
	for _, key := range keys {
		kept, fresh, gen := b.clients.get(key)
		switch {
		case fresh && kept != nil:
			return kept, nil
		case fresh:
			continue // known not to be installed
		}
		rec, found, err := b.installs.Installation(ctx, key)
		switch {
		case err != nil:
			return nil, fmt.Errorf("slack: read installation %s: %w", key, err)
		case !found:
			b.clients.put(key, nil, gen) // remembered as not installed
			continue
		case kept != nil && bytes.Equal(kept.sealed, rec.Token):
			return b.clients.put(key, kept, gen), nil
		}
		token, err := b.box.Open(key, rec.Token)
		if err != nil {
			return nil, fmt.Errorf("slack: installation %s: %w", key, err)
		}
		w := b.newWorkspace(token, rec.BotUser)
		w.sealed = rec.Token
		return b.clients.put(key, w, gen), nil
	}
	if b.home == nil {
		return nil, fmt.Errorf("slack: workspace %s: %w", who.team, errNotInstalled)
	}
	if err := b.identify(ctx); err != nil {
		return nil, err
	}
	if who.team == "" || who.team == b.homeTeam {
		return b.home, nil
	}
	return nil, fmt.Errorf("slack: workspace %s: %w", who.team, errNotInstalled)
}

// Bounds of the client cache: an installation's client is checked against
// the store when it was last checked clientTTL ago; beyond maxClients,
// every client is dropped and made again as it is used.
const (
	clientTTL  = 30 * time.Second
	maxClients = 10000
)

// clientCache keeps a workspace per installation key, and the
// organization of each workspace seen in a delivery.
type clientCache struct {
	now         func() time.Time
	mu          sync.Mutex
	byKey       map[string]cachedClient
	enterprises map[string]string // workspace id → organization id
	gen         uint64            // counts drops, so a read racing one is not kept
}

// cachedClient is a kept workspace (nil: not installed) and when it was
// last checked.
type cachedClient struct {
	w       *workspace
	checked time.Time
}

func newClientCache() *clientCache {
	return &clientCache{now: time.Now, byKey: map[string]cachedClient{}, enterprises: map[string]string{}}
}

// get returns the workspace kept for key (nil if none, or if key is kept
// as not installed), whether what is kept was checked less than clientTTL
// ago, and the generation to pass to put.
func (c *clientCache) get(key string) (w *workspace, fresh bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.byKey[key]
	return e.w, found && c.now().Sub(e.checked) < clientTTL, c.gen
}

// put keeps w for key (nil: not installed), checked now, unless an
// installation was dropped since get returned gen (w may have been read
// before its removal), and returns w.
func (c *clientCache) put(key string, w *workspace, gen uint64) *workspace {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return w
	}
	if len(c.byKey) >= maxClients {
		clear(c.byKey)
	}
	c.byKey[key] = cachedClient{w: w, checked: c.now()}
	return w
}

// drop forgets the workspace of key.
func (c *clientCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byKey, key)
	c.gen++
}

// learn remembers who's organization, or fills it in from an earlier
// delivery of the workspace (a thread resumed after a restart knows only
// its workspace).
func (c *clientCache) learn(who teamID) teamID {
	if who.team == "" {
		return who
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if who.enterprise == "" {
		who.enterprise = c.enterprises[who.team]
		return who
	}
	if len(c.enterprises) >= maxClients {
		clear(c.enterprises)
	}
	c.enterprises[who.team] = who.enterprise
	return who
}

// uninstall forgets the installation of key, for an app_uninstalled or
// tokens_revoked event, and drops its client.
func (b *Bot) uninstall(ctx context.Context, key string) {
	gone, err := b.installs.DeleteInstallation(ctx, key)
	b.clients.drop(key)
	switch {
	case err != nil:
		b.log.Error("slack: forgetting an uninstalled workspace failed", "installation", key, "err", err)
	case gone:
		b.log.Info("slack: app uninstalled; installation removed", "installation", key)
	default:
		b.log.Info("slack: app uninstalled from a workspace with no installation", "installation", key)
	}
}
