package postgres

// Freeze stops renewing l's leases and slots without freeing them, as a
// process that froze (SIGSTOP, a long pause) would.
func (l *Limits) Freeze() { l.stopRenewing() }
