package postgres

import "context"

// Freeze stops renewing l's leases and slots without freeing them, as a
// process that froze (SIGSTOP, a long pause) would.
func (l *Limits) Freeze() { l.stopRenewing() }

// Kill closes s's connection and leaves its rows, as a process killed
// outright would.
func (s *Shards) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.Close(context.Background())
	s.conn = nil
}
