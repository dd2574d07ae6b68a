package storage

import (
	"context"
	"fmt"
)

// Check runs bbolt's consistency check over the whole database and returns
// the first problem found (saying how many more there are), or nil. It reads
// every page, holding the write lock so no update interferes: on a large
// database it is slow and updates wait.
func (db *DB) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return fmt.Errorf("storage: check: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var first error
	n := 0
	for err := range tx.Check() { // drain: the checker stops only at the end
		if first == nil {
			first = err
		}
		n++
	}
	switch {
	case n == 1:
		return fmt.Errorf("storage: check %s: %w", db.bolt.Path(), first)
	case n > 1:
		return fmt.Errorf("storage: check %s: %w (and %d more problems)", db.bolt.Path(), first, n-1)
	}
	return nil
}
