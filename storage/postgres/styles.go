package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/easel-bot/easel/core"
)

// Styles returns the styles of a workspace, in name order.
func (db *DB) Styles(ctx context.Context, platform, workspace string) ([]core.Style, error) {
	rows, err := db.pool.Query(ctx, `SELECT name, body FROM styles WHERE platform = $1 AND workspace = $2 ORDER BY name`,
		platform, workspace)
	if err != nil {
		return nil, fmt.Errorf("postgres: styles: %w", err)
	}
	defer rows.Close()
	var out []core.Style
	for rows.Next() {
		var name string
		var body []byte
		if err := rows.Scan(&name, &body); err != nil {
			return nil, fmt.Errorf("postgres: styles: %w", err)
		}
		var s core.Style
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("postgres: style %q: %w", name, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: styles: %w", err)
	}
	return out, nil
}

// PutStyle stores s under its name, replacing a style of that name.
func (db *DB) PutStyle(ctx context.Context, platform, workspace string, s core.Style) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("postgres: put style %s: %w", s.Name, err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO styles (platform, workspace, name, body) VALUES ($1, $2, $3, $4)
		ON CONFLICT (platform, workspace, name) DO UPDATE SET body = EXCLUDED.body`, platform, workspace, s.Name, body)
	if err != nil {
		return fmt.Errorf("postgres: put style %s: %w", s.Name, err)
	}
	return nil
}

// DeleteStyle removes the named style, or returns a NotFound *core.Error.
func (db *DB) DeleteStyle(ctx context.Context, platform, workspace, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM styles WHERE platform = $1 AND workspace = $2 AND name = $3`,
		platform, workspace, name)
	if err != nil {
		return fmt.Errorf("postgres: delete style %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return core.Errorf(core.NotFound, "there is no style named %s", name)
	}
	return nil
}

// ChannelDefaults returns a channel's defaults; the zero value when none
// are set.
func (db *DB) ChannelDefaults(ctx context.Context, platform, workspace, channel string) (core.ChannelDefaults, error) {
	var body []byte
	err := db.pool.QueryRow(ctx, `SELECT body FROM channel_defaults WHERE platform = $1 AND workspace = $2 AND channel = $3`,
		platform, workspace, channel).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.ChannelDefaults{}, nil
	}
	if err != nil {
		return core.ChannelDefaults{}, fmt.Errorf("postgres: channel defaults of %s: %w", channel, err)
	}
	var d core.ChannelDefaults
	if err := json.Unmarshal(body, &d); err != nil {
		return core.ChannelDefaults{}, fmt.Errorf("postgres: channel defaults of %s: %w", channel, err)
	}
	return d, nil
}

// PutChannelDefaults stores a channel's defaults; the zero value removes
// them.
func (db *DB) PutChannelDefaults(ctx context.Context, platform, workspace, channel string, d core.ChannelDefaults) error {
	var err error
	if d.IsZero() {
		_, err = db.pool.Exec(ctx, `DELETE FROM channel_defaults WHERE platform = $1 AND workspace = $2 AND channel = $3`,
			platform, workspace, channel)
	} else {
		var body []byte
		if body, err = json.Marshal(d); err == nil {
			_, err = db.pool.Exec(ctx, `INSERT INTO channel_defaults (platform, workspace, channel, body) VALUES ($1, $2, $3, $4)
				ON CONFLICT (platform, workspace, channel) DO UPDATE SET body = EXCLUDED.body`, platform, workspace, channel, body)
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: put channel defaults of %s: %w", channel, err)
	}
	return nil
}

// EveryStyle calls fn with each style of every workspace, in platform,
// workspace and name order, for listing them all.
func (db *DB) EveryStyle(ctx context.Context, fn func(platform, workspace string, s core.Style) error) error {
	return db.every(ctx, `SELECT platform, workspace, name, body FROM styles ORDER BY platform, workspace, name`,
		func(platform, workspace, _ string, body []byte) error {
			var s core.Style
			if err := json.Unmarshal(body, &s); err != nil {
				return fmt.Errorf("style in %s/%s: %w", platform, workspace, err)
			}
			return fn(platform, workspace, s)
		})
}

// EveryChannelDefaults calls fn with the defaults of every channel that
// has some, in platform, workspace and channel order.
func (db *DB) EveryChannelDefaults(ctx context.Context, fn func(platform, workspace, channel string, d core.ChannelDefaults) error) error {
	return db.every(ctx, `SELECT platform, workspace, channel, body FROM channel_defaults ORDER BY platform, workspace, channel`,
		func(platform, workspace, channel string, body []byte) error {
			var d core.ChannelDefaults
			if err := json.Unmarshal(body, &d); err != nil {
				return fmt.Errorf("channel defaults of %s in %s/%s: %w", channel, platform, workspace, err)
			}
			return fn(platform, workspace, channel, d)
		})
}

// every runs query, which selects platform, workspace, a name and a body,
// and calls fn with each row.
func (db *DB) every(ctx context.Context, query string, fn func(platform, workspace, name string, body []byte) error) error {
	rows, err := db.pool.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("postgres: list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var platform, workspace, name string
		var body []byte
		if err := rows.Scan(&platform, &workspace, &name, &body); err != nil {
			return fmt.Errorf("postgres: list: %w", err)
		}
		if err := fn(platform, workspace, name, body); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: list: %w", err)
	}
	return nil
}
