package slack

import (
	"log/slog"
	"sync"
	"time"
)

// rejectLogEvery is how often, at most, a run of refused http-mode requests
// is logged after its first.
const rejectLogEvery = time.Minute

// rejectLog logs refused requests at a bounded rate, so that a flood of
// forged requests cannot flood the log: the first of a run at once, then at
// most one line per interval saying how many more were refused in it. A run
// ends with the first interval in which none was refused.
type rejectLog struct {
	log      *slog.Logger
	interval time.Duration
	// after runs f once d has passed; time.AfterFunc but in tests.
	after func(d time.Duration, f func())

	mu      sync.Mutex
	running bool // a run is under way: its next line is scheduled
	count   int  // refused in the current interval, not yet logged
}

func newRejectLog(log *slog.Logger) *rejectLog {
	return &rejectLog{log: log, interval: rejectLogEvery,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// refused records a refused request: its path and why.
func (r *rejectLog) refused(path string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		r.count++
		return
	}
	r.running = true
	r.log.Warn("slack: request with a bad signature rejected", "path", path, "err", err)
	r.after(r.interval, r.tick)
}

// tick ends an interval: it logs how many were refused in it, or ends the
// run if none was.
func (r *rejectLog) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count == 0 {
		r.running = false
		return
	}
	r.log.Warn("slack: more requests with a bad signature rejected", "count", r.count, "in", r.interval)
	r.count = 0
	r.after(r.interval, r.tick)
}
