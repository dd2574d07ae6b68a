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

// applyEffects writes fx, the effects of storing a session (see
// core.EffectsOf), in tx: job records and the pending index, usage
// counters, and the inbox entries now handled. It decides nothing itself.
func applyEffects(tx *bolt.Tx, fx core.Effects, now time.Time) error {
	jobs, active, usage, inbox := tx.Bucket(bucketJobs), tx.Bucket(bucketActive), tx.Bucket(bucketUsage), tx.Bucket(bucketInbox)
	for _, key := range fx.Handled {
		if inbox.Get([]byte(key)) == nil {
			return core.ErrDeliveryTaken // its turn was recorded, or it was handled otherwise
		}
		if err := inbox.Delete([]byte(key)); err != nil {
			return fmt.Errorf("storage: inbox %s: %w", key, err)
		}
	}
	for _, j := range fx.Jobs {
		key := jobKey(j.Ref.SessionID, j.Ref.TurnID)
		err := putJob(jobs, key, j, now)
		if err == nil && j.Pending {
			err = active.Put(key, []byte{})
		} else if err == nil {
			err = active.Delete(key)
		}
		if err != nil {
			return fmt.Errorf("storage: session %s turn %d: %w", j.Ref.SessionID, j.Ref.TurnID, err)
		}
	}
	for _, ref := range fx.Dropped {
		if err := active.Delete(jobKey(ref.SessionID, ref.TurnID)); err != nil {
			return fmt.Errorf("storage: session %s turn %d: %w", ref.SessionID, ref.TurnID, err)
		}
	}
	for _, add := range fx.Usage {
		if err := addUsage(usage, add); err != nil {
			return err
		}
	}
	return nil
}

// putJob stores the job record j under key, stamped with now.
func putJob(jobs *bolt.Bucket, key []byte, j core.Job, now time.Time) error {
	v, err := json.Marshal(job{Status: j.Status, Kind: j.Kind, User: j.User, Attempts: j.Attempts, QueuedAt: j.QueuedAt, UpdatedAt: now})
	if err == nil {
		err = jobs.Put(key, v)
	}
	return err
}
