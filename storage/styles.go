package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// The styles and channel defaults set in chat. Each bucket is created by
// its first write, so it needs no migration. Keys are platform, workspace
// and the style's name (or the channel) joined by NUL, which no id holds.
var (
	bucketStyles          = []byte("styles")
	bucketChannelDefaults = []byte("channel_defaults")
)

// styleKey returns the key of name (a style or a channel) in workspace.
func styleKey(platform, workspace, name string) []byte {
	return []byte(platform + "\x00" + workspace + "\x00" + name)
}

// Styles returns the styles of a workspace, in name order.
func (db *DB) Styles(ctx context.Context, platform, workspace string) ([]core.Style, error) {
	var out []core.Style
	prefix := styleKey(platform, workspace, "")
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStyles)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var s core.Style
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("style %q: %w", k[len(prefix):], err)
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: styles: %w", err)
	}
	return out, nil
}

// PutStyle stores s under its name, replacing a style of that name.
func (db *DB) PutStyle(ctx context.Context, platform, workspace string, s core.Style) error {
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("storage: put style %s: %w", s.Name, err)
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStyles)
		if err != nil {
			return err
		}
		return b.Put(styleKey(platform, workspace, s.Name), v)
	})
	if err != nil {
		return fmt.Errorf("storage: put style %s: %w", s.Name, err)
	}
	return nil
}

// DeleteStyle removes the named style, or returns a NotFound *core.Error.
func (db *DB) DeleteStyle(ctx context.Context, platform, workspace, name string) error {
	err := db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStyles)
		k := styleKey(platform, workspace, name)
		if b == nil || b.Get(k) == nil {
			return unchanged(core.Errorf(core.NotFound, "there is no style named %s", name))
		}
		return b.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("storage: delete style %s: %w", name, err)
	}
	return nil
}

// ChannelDefaults returns a channel's defaults; the zero value when none
// are set.
func (db *DB) ChannelDefaults(ctx context.Context, platform, workspace, channel string) (core.ChannelDefaults, error) {
	var d core.ChannelDefaults
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChannelDefaults)
		if b == nil {
			return nil
		}
		if v := b.Get(styleKey(platform, workspace, channel)); v != nil {
			return json.Unmarshal(v, &d)
		}
		return nil
	})
	if err != nil {
		return core.ChannelDefaults{}, fmt.Errorf("storage: channel defaults of %s: %w", channel, err)
	}
	return d, nil
}

// PutChannelDefaults stores a channel's defaults; the zero value removes
// them.
func (db *DB) PutChannelDefaults(ctx context.Context, platform, workspace, channel string, d core.ChannelDefaults) error {
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("storage: put channel defaults of %s: %w", channel, err)
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketChannelDefaults)
		if err != nil {
			return err
		}
		k := styleKey(platform, workspace, channel)
		if d.IsZero() {
			return b.Delete(k)
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("storage: put channel defaults of %s: %w", channel, err)
	}
	return nil
}

// EveryStyle calls fn with each style of every workspace, in platform,
// workspace and name order, for listing them all.
func (db *DB) EveryStyle(ctx context.Context, fn func(platform, workspace string, s core.Style) error) error {
	return db.every(ctx, bucketStyles, func(platform, workspace, _ string, v []byte) error {
		var s core.Style
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("style in %s/%s: %w", platform, workspace, err)
		}
		return fn(platform, workspace, s)
	})
}

// EveryChannelDefaults calls fn with the defaults of every channel that
// has some, in platform, workspace and channel order.
func (db *DB) EveryChannelDefaults(ctx context.Context, fn func(platform, workspace, channel string, d core.ChannelDefaults) error) error {
	return db.every(ctx, bucketChannelDefaults, func(platform, workspace, channel string, v []byte) error {
		var d core.ChannelDefaults
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("channel defaults of %s in %s/%s: %w", channel, platform, workspace, err)
		}
		return fn(platform, workspace, channel, d)
	})
}

// every calls fn with each entry of bucket, its key split into platform,
// workspace and name.
func (db *DB) every(ctx context.Context, bucket []byte, fn func(platform, workspace, name string, v []byte) error) error {
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 {
				return fmt.Errorf("malformed key %q", k)
			}
			return fn(string(parts[0]), string(parts[1]), string(parts[2]), v)
		})
	})
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", bucket, err)
	}
	return nil
}
