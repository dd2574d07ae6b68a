package postgres

import (
	"context"
	"time"
)

// Freeze stops renewing l's leases and slots without freeing them, as a
// process that froze (SIGSTOP, a long pause) would.
func (l *Limits) Freeze() { l.stopRenewing() }

// SetLease makes db's holds of deliveries last d without Limits, for a test
// of a process that froze holding some.
func (db *DB) SetLease(d time.Duration) { db.lease.Store(int64(d)) }

// Die drops db's connections without letting go of anything, as a process
// killed with SIGKILL would.
func (db *DB) Die() {
	db.dropLiveness()
	db.pool.Close()
}

// dropLiveness closes the connection that holds db's liveness lock.
func (db *DB) dropLiveness() {
	db.lifeMu.Lock()
	defer db.lifeMu.Unlock()
	if db.life != nil {
		_ = db.life.Close(context.Background())
		db.life = nil
	}
}

// Kill closes s's connection and its process's liveness lock and leaves
// its rows, as a process killed outright would.
func (s *Shards) Kill() {
	s.l.stopRenewing() // the renewals would take the lock again
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.Close(context.Background())
	s.conn = nil
	s.l.db.dropLiveness()
}

// LoseSlots makes l forget the provider slots it holds while their rows
// stay held, as when freeing them failed.
func (l *Limits) LoseSlots() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slots = nil
}
