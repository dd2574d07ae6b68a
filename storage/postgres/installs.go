package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/easel-bot/easel/bots/slack/install"
)

// SaveInstallation stores rec under rec.Key(), replacing the installation
// stored there.
func (db *DB) SaveInstallation(ctx context.Context, rec install.Record) error {
	if err := rec.Check(); err != nil {
		return fmt.Errorf("postgres: save installation: %w", err)
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO slack_installs
		(key, team_id, enterprise_id, enterprise_install, bot_user_id, token, scopes, installer, installed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (key) DO UPDATE SET team_id = EXCLUDED.team_id, enterprise_id = EXCLUDED.enterprise_id,
			enterprise_install = EXCLUDED.enterprise_install, bot_user_id = EXCLUDED.bot_user_id,
			token = EXCLUDED.token, scopes = EXCLUDED.scopes, installer = EXCLUDED.installer,
			installed_at = EXCLUDED.installed_at`,
		rec.Key(), rec.Team, rec.Enterprise, rec.EnterpriseInstall, rec.BotUser, rec.Token,
		install.ScopeList(rec.Scopes), rec.Installer, rec.InstalledAt)
	if err != nil {
		return fmt.Errorf("postgres: save installation %s: %w", rec.Key(), err)
	}
	return nil
}

// Installation returns the installation stored under key (see
// install.Record.Key), and false if there is none.
func (db *DB) Installation(ctx context.Context, key string) (install.Record, bool, error) {
	var rec install.Record
	var scopes string
	err := db.pool.QueryRow(ctx, `SELECT team_id, enterprise_id, enterprise_install, bot_user_id, token, scopes,
		installer, installed_at FROM slack_installs WHERE key = $1`, key).
		Scan(&rec.Team, &rec.Enterprise, &rec.EnterpriseInstall, &rec.BotUser, &rec.Token, &scopes,
			&rec.Installer, &rec.InstalledAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return install.Record{}, false, nil
	case err != nil:
		return install.Record{}, false, fmt.Errorf("postgres: read installation %s: %w", key, err)
	}
	rec.Scopes = install.ParseScopes(scopes)
	return rec, true, nil
}

// DeleteInstallation forgets the installation stored under key and reports
// whether there was one.
func (db *DB) DeleteInstallation(ctx context.Context, key string) (bool, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM slack_installs WHERE key = $1", key)
	if err != nil {
		return false, fmt.Errorf("postgres: delete installation %s: %w", key, err)
	}
	return tag.RowsAffected() > 0, nil
}
