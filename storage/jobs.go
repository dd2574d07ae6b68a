package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/easel-bot/easel/core"
)

// job is the jobs bucket's record of one turn.
type job struct {
	Status    core.TurnStatus `json:"status"`
	Kind      core.TurnKind   `json:"kind"`
	User      string          `json:"user"`
	Attempts  int             `json:"attempts"`
	QueuedAt  time.Time       `json:"queued_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// ActiveJobs returns the (session id, turn id) pairs of every pending turn
// (queued, running, or ended but not yet posted), oldest queued first (ties in key order). It reads the
// active index only, not every job ever run.
func (db *DB) ActiveJobs(ctx context.Context) ([]core.JobRef, error) {
	type entry struct {
		ref    core.JobRef
		queued time.Time
	}
	var list []entry
	err := db.view(ctx, func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		return tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
			ref, err := parseJobKey(k)
			if err != nil {
				return err
			}
			var j job
			if err := json.Unmarshal(jobs.Get(k), &j); err != nil {
				return fmt.Errorf("storage: job %s turn %d: %w", ref.SessionID, ref.TurnID, err)
			}
			list = append(list, entry{ref, j.QueuedAt})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// ForEach went in key order; a stable sort keeps it among equal times.
	slices.SortStableFunc(list, func(a, b entry) int { return a.queued.Compare(b.queued) })
	refs := make([]core.JobRef, len(list))
	for i, e := range list {
		refs[i] = e.ref
	}
	return refs, nil
}

// jobKey returns the jobs and active key of a turn: the session id, a NUL
// and the turn id as 8 bytes big-endian, so a session's jobs sort by turn.
func jobKey(session string, turn int) []byte {
	k := make([]byte, 0, len(session)+9)
	k = append(k, session...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(turn))
}

// parseJobKey returns the turn named by a jobKey.
func parseJobKey(k []byte) (core.JobRef, error) {
	n := len(k) - 9
	if n < 0 || k[n] != 0 {
		return core.JobRef{}, fmt.Errorf("storage: bad job key %q", k)
	}
	return core.JobRef{SessionID: string(k[:n]), TurnID: int(binary.BigEndian.Uint64(k[n+1:]))}, nil
}

// turnState is what the job index records of a turn.
type turnState struct {
	status   core.TurnStatus
	attempts int
	posting  bool
}

// turnStates returns the state of each of s's turns, by turn id.
func turnStates(s *core.Session) map[int]turnState {
	m := make(map[int]turnState, len(s.Turns))
	for _, t := range s.Turns {
		m[t.ID] = turnState{t.Status, t.Attempts, t.Posting}
	}
	return m
}

// syncJobs brings the job index and usage counters in step with s's turns,
// given their states before the change (nil for a new session): it rewrites
// the job record of each turn whose state changed, keeps the active index to
// the pending turns (queued, running, or ended but not yet posted), and counts the usage of each turn that has
// just become done.
func syncJobs(tx *bolt.Tx, s *core.Session, before map[int]turnState, now time.Time) error {
	jobs, active, usage := tx.Bucket(bucketJobs), tx.Bucket(bucketActive), tx.Bucket(bucketUsage)
	for i := range s.Turns {
		t := &s.Turns[i]
		old, ok := before[t.ID]
		delete(before, t.ID)
		if !ok && t.Delivery != "" {
			// The delivery that asked for the turn is handled now.
			if err := tx.Bucket(bucketInbox).Delete([]byte(t.Delivery)); err != nil {
				return fmt.Errorf("storage: session %s turn %d: %w", s.ID, t.ID, err)
			}
		}
		if ok && old == (turnState{t.Status, t.Attempts, t.Posting}) {
			continue
		}
		key := jobKey(s.ID, t.ID)
		if err := putJob(jobs, key, t, now); err != nil {
			return err
		}
		var err error
		if t.Pending() {
			err = active.Put(key, []byte{})
		} else {
			err = active.Delete(key)
		}
		if err == nil && t.Status == core.StatusDone && old.status != core.StatusDone {
			err = countUsage(usage, s, t, now)
		}
		if err != nil {
			return fmt.Errorf("storage: session %s turn %d: %w", s.ID, t.ID, err)
		}
	}
	for id := range before { // turns fn removed: they have nothing left to do
		if err := active.Delete(jobKey(s.ID, id)); err != nil {
			return fmt.Errorf("storage: session %s turn %d: %w", s.ID, id, err)
		}
	}
	return nil
}

// putJob stores the job record of turn t under key. A turn without a
// QueuedAt time is taken to be queued now.
func putJob(jobs *bolt.Bucket, key []byte, t *core.Turn, now time.Time) error {
	j := job{Status: t.Status, Kind: t.Kind, User: t.User.ID, Attempts: t.Attempts, QueuedAt: t.QueuedAt, UpdatedAt: now}
	if j.QueuedAt.IsZero() {
		j.QueuedAt = now
	}
	v, err := json.Marshal(j)
	if err == nil {
		err = jobs.Put(key, v)
	}
	return err
}
