package metrics

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Platform observes one chat adapter: how fast it acknowledges deliveries,
// and what its inbox drops as duplicates and takes up again. It implements
// the Metrics interfaces of bots/slack, bots/discord and bots/inbox.
type Platform struct {
	ack     prometheus.Observer
	replays prometheus.Counter
	dupes   prometheus.Counter
}

// Platform returns the observer of the adapter of platform, such as
// "slack".
func (m *Metrics) Platform(platform string) *Platform {
	return &Platform{
		ack:     m.ackTime.WithLabelValues(platform),
		replays: m.inboxReplays.WithLabelValues(platform),
		dupes:   m.dedupeDrops.WithLabelValues(platform),
	}
}

// Acked observes a delivery acknowledged d after it arrived.
func (p *Platform) Acked(d time.Duration) { p.ack.Observe(d.Seconds()) }

// Duplicate counts a delivery dropped as a duplicate.
func (p *Platform) Duplicate() { p.dupes.Inc() }

// Replayed counts n deliveries taken up again.
func (p *Platform) Replayed(n int) { p.replays.Add(float64(n)) }

// maxFailedRoutes bounds the routes a Transport remembers as failed; past
// it, it forgets them all.
const maxFailedRoutes = 1024

// Transport returns next (http.DefaultTransport if nil) wrapped to count
// the requests made to platform's API: every request, those that failed
// (no answer, or an HTTP error status other than 429), those answered 429,
// the retries (a request to the method and URL path whose last answer was
// 429 or 5xx) and the bytes of the request bodies sent.
func (m *Metrics) Transport(platform string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{
		next:     next,
		requests: m.apiRequests.WithLabelValues(platform),
		errors:   m.apiErrors.WithLabelValues(platform),
		limited:  m.apiRateLimited.WithLabelValues(platform),
		retries:  m.apiRetries.WithLabelValues(platform),
		bytes:    m.uploadedBytes.WithLabelValues(platform),
		failed:   map[string]bool{},
	}
}

// transport is the RoundTripper of Transport.
type transport struct {
	next                                      http.RoundTripper
	requests, errors, limited, retries, bytes prometheus.Counter

	mu     sync.Mutex
	failed map[string]bool // routes whose last answer was 429 or 5xx
}

// RoundTrip counts r and its answer, and sends it on unchanged but for a
// body of unknown length, which is counted as it is read.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	route := r.Method + " " + r.URL.Host + r.URL.Path
	t.requests.Inc()
	if t.settle(route, false) {
		t.retries.Inc()
	}
	switch {
	case r.Body == nil || r.Body == http.NoBody:
	case r.ContentLength > 0:
		t.bytes.Add(float64(r.ContentLength))
	default: // unknown: 0 with a body means so too
		r = r.Clone(r.Context())
		r.Body = &countedBody{ReadCloser: r.Body, bytes: t.bytes}
	}
	resp, err := t.next.RoundTrip(r)
	switch {
	case err != nil:
		t.errors.Inc()
	case resp.StatusCode == http.StatusTooManyRequests:
		t.limited.Inc()
		t.settle(route, true)
	case resp.StatusCode >= 500:
		t.errors.Inc()
		t.settle(route, true)
	case resp.StatusCode >= 400:
		t.errors.Inc()
	}
	return resp, err
}

// settle records whether route's last answer failed, and reports whether
// the answer before did.
func (t *transport) settle(route string, failed bool) (before bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	before = t.failed[route]
	switch {
	case !failed:
		delete(t.failed, route)
	case len(t.failed) >= maxFailedRoutes:
		clear(t.failed)
		fallthrough
	default:
		t.failed[route] = true
	}
	return before
}

// countedBody counts the bytes read from a request body.
type countedBody struct {
	io.ReadCloser
	bytes prometheus.Counter
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.bytes.Add(float64(n))
	return n, err
}
