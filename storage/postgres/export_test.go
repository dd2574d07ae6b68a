package postgres

import "time"

// Freeze stops renewing l's leases and slots without freeing them, as a
// process that froze (SIGSTOP, a long pause) would.
func (l *Limits) Freeze() { l.stopRenewing() }

// SetLease makes db's holds of deliveries last d without Limits, for a test
// of a process that froze holding some.
func (db *DB) SetLease(d time.Duration) { db.lease.Store(int64(d)) }
