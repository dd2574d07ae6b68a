package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// usageRow is a usage counter as stored: what the done turns counted under
// its key consumed.
type usageRow struct {
	Turns   int64   `json:"turns"`
	Images  int64   `json:"images"`
	CostUSD float64 `json:"cost_usd"`
}

// Usage returns the usage counters whose keys start with prefix ("" for all),
// in key order. There are two kinds of key, dated in UTC by when the turn
// finished:
//
//	user/<platform>/<user id>/<YYYY-MM-DD>         per user per day
//	workspace/<platform>/<workspace or ->/<YYYY-MM> per workspace per month
//
// Only turns that end done are counted, each once.
func (db *DB) Usage(ctx context.Context, prefix string) ([]core.UsageRow, error) {
	var rows []core.UsageRow
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			var row usageRow
			if err := json.Unmarshal(v, &row); err != nil {
				return fmt.Errorf("storage: usage %s: %w", k, err)
			}
			rows = append(rows, core.UsageRow{Key: string(k), UsageTotals: core.UsageTotals(row)})
		}
		return nil
	})
	return rows, err
}

// DB keeps the usage counters that quotas are checked against.
var _ core.UsageReader = (*DB)(nil)

// UsageTotals returns the usage counter stored under exactly key (see
// core.UserDayKey and core.WorkspaceMonthKey), or zero totals when there is
// none. Its error is the store's failure to read.
func (db *DB) UsageTotals(ctx context.Context, key string) (core.UsageTotals, error) {
	var row usageRow
	err := db.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsage).Get([]byte(key))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &row); err != nil {
			return fmt.Errorf("storage: usage %s: %w", key, err)
		}
		return nil
	})
	return core.UsageTotals{Turns: row.Turns, Images: row.Images, CostUSD: row.CostUSD}, err
}

// addUsage adds add to the counter it names in usage.
func addUsage(usage *bolt.Bucket, add core.UsageAdd) error {
	var row usageRow
	if v := usage.Get([]byte(add.Key)); v != nil {
		if err := json.Unmarshal(v, &row); err != nil {
			return fmt.Errorf("storage: usage %s: %w", add.Key, err)
		}
	}
	row.Turns += add.Turns
	row.Images += add.Images
	row.CostUSD += add.CostUSD
	v, err := json.Marshal(row)
	if err == nil {
		err = usage.Put([]byte(add.Key), v)
	}
	if err != nil {
		return fmt.Errorf("storage: usage %s: %w", add.Key, err)
	}
	return nil
}
