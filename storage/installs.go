package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/bots/slack/install"
)

// bucketInstalls holds install.Record.Key → JSON installRow, the Slack
// installations made through OAuth. It is created by the first
// SaveInstallation, so it needs no migration.
var bucketInstalls = []byte("slack_installs")

// installRow is how an install.Record is stored. Token is the sealed
// token, never the token itself.
type installRow struct {
	Team              string    `json:"team,omitempty"`
	Enterprise        string    `json:"enterprise,omitempty"`
	EnterpriseInstall bool      `json:"enterprise_install,omitempty"`
	BotUser           string    `json:"bot_user"`
	Token             []byte    `json:"token"`
	Scopes            []string  `json:"scopes,omitempty"`
	Installer         string    `json:"installer,omitempty"`
	InstalledAt       time.Time `json:"installed_at"`
}

// SaveInstallation stores rec under rec.Key(), replacing the installation
// stored there.
func (db *DB) SaveInstallation(ctx context.Context, rec install.Record) error {
	if err := rec.Check(); err != nil {
		return fmt.Errorf("storage: save installation: %w", err)
	}
	v, err := json.Marshal(installRow(rec))
	if err != nil {
		return fmt.Errorf("storage: save installation %s: %w", rec.Key(), err)
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketInstalls)
		if err != nil {
			return err
		}
		return b.Put([]byte(rec.Key()), v)
	})
	if err != nil {
		return fmt.Errorf("storage: save installation %s: %w", rec.Key(), err)
	}
	return nil
}

// Installation returns the installation stored under key (see
// install.Record.Key), and false if there is none.
func (db *DB) Installation(ctx context.Context, key string) (install.Record, bool, error) {
	var v []byte
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketInstalls); b != nil {
			if got := b.Get([]byte(key)); got != nil {
				v = append([]byte(nil), got...)
			}
		}
		return nil
	})
	if err != nil || v == nil {
		return install.Record{}, false, wrapInstall("read", key, err)
	}
	var row installRow
	if err := json.Unmarshal(v, &row); err != nil {
		return install.Record{}, false, fmt.Errorf("storage: installation %s: %w", key, err)
	}
	return install.Record(row), true, nil
}

// Installations returns every installation stored, in key order, for
// copying them into another store.
func (db *DB) Installations(ctx context.Context) ([]install.Record, error) {
	var recs []install.Record
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketInstalls)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var row installRow
			if err := json.Unmarshal(v, &row); err != nil {
				return fmt.Errorf("installation %s: %w", k, err)
			}
			recs = append(recs, install.Record(row))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: installations: %w", err)
	}
	return recs, nil
}

// DeleteInstallation forgets the installation stored under key and reports
// whether there was one.
func (db *DB) DeleteInstallation(ctx context.Context, key string) (bool, error) {
	var found bool
	err := db.update(ctx, func(tx *bolt.Tx) error {
		found = false
		b := tx.Bucket(bucketInstalls)
		if b == nil || b.Get([]byte(key)) == nil {
			return nil
		}
		found = true
		return b.Delete([]byte(key))
	})
	return found, wrapInstall("delete", key, err)
}

// wrapInstall wraps a non-nil err of op on the installation key.
func wrapInstall(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("storage: %s installation %s: %w", op, key, err)
}
