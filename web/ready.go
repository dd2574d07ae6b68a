package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Checker checks one thing the process needs to do its work, for GET
// /readyz: the store, a chat platform's connection, a provider.
type Checker interface {
	// Check returns nil when what it checks is ready, or an error saying
	// why not, shown as it is in the readiness body: it must name no
	// secret. It must return soon after ctx ends.
	Check(ctx context.Context) error
}

// CheckFunc is a function that is a Checker.
type CheckFunc func(ctx context.Context) error

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) error { return f(ctx) }

// checkTimeout bounds one round of checks: a check still running then
// fails.
const checkTimeout = 2 * time.Second

// maxReason bounds the reason shown for a failed check, in bytes.
const maxReason = 200

// check is a Checker with the name it is listed under.
type check struct {
	name string
	c    Checker
}

// result is the outcome of one check.
type result struct {
	name string
	err  error
}

// readiness runs the checks of GET /readyz. Requests that arrive while a
// round runs wait for it and share its results, so that a flood of probes
// costs the store one read at a time.
type readiness struct {
	mu      sync.Mutex
	checks  []check
	running *round // the round in progress, nil if none
}

// round is one run of every check.
type round struct {
	done    chan struct{} // closed when results is set
	results []result
}

// AddCheck adds c, listed as name, to the checks of GET /readyz. Add
// every check before Run.
func (s *Server) AddCheck(name string, c Checker) {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	s.ready.checks = append(s.ready.checks, check{name: name, c: c})
}

// readyz answers 200 when every check passes and 503 otherwise, with a
// plain text body listing each check, in the style of Kubernetes' own
// /readyz: "[+]name ok" or "[-]name failed: reason", then a summary line.
// The body is the same with or without ?verbose, which Kubernetes' probes
// may send.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	results, ok := s.ready.run(r.Context())
	if !ok {
		return // the client went away
	}
	var b strings.Builder
	failed := false
	for _, res := range results {
		if res.err == nil {
			fmt.Fprintf(&b, "[+]%s ok\n", res.name)
			continue
		}
		failed = true
		fmt.Fprintf(&b, "[-]%s failed: %s\n", res.name, reason(res.err))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		b.WriteString("readyz check failed\n")
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		b.WriteString("readyz check passed\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

// run returns the results of the round in progress, or of a new one, and
// false if ctx ends first.
func (rd *readiness) run(ctx context.Context) ([]result, bool) {
	rd.mu.Lock()
	rn := rd.running
	if rn == nil {
		rn = &round{done: make(chan struct{})}
		rd.running = rn
		go rd.start(rn, rd.checks)
	}
	rd.mu.Unlock()
	select {
	case <-rn.done:
		return rn.results, true
	case <-ctx.Done():
		return nil, false
	}
}

// start runs every check of rn at once, each for at most checkTimeout,
// then publishes the results.
func (rd *readiness) start(rn *round, checks []check) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	results := make([]result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		results[i].name = c.name
		errc := make(chan error, 1)
		go func() { errc <- c.c.Check(ctx) }()
		wg.Go(func() {
			select {
			case results[i].err = <-errc:
			case <-ctx.Done():
				results[i].err = fmt.Errorf("no answer within %s", checkTimeout)
			}
		})
	}
	wg.Wait()
	rd.mu.Lock()
	rd.running = nil
	rd.mu.Unlock()
	rn.results = results
	close(rn.done)
}

// reason returns err's text on one line, what does not print (control and
// format characters, line separators) escaped and cut to maxReason bytes,
// for the readiness body.
func reason(err error) string {
	s := strings.ToValidUTF8(err.Error(), "?")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	if out := b.String(); len(out) > maxReason {
		return strings.ToValidUTF8(out[:maxReason], "") + "…"
	}
	return b.String()
}
