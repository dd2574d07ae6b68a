// Package metrics is Easel's Prometheus metrics: a registry of its own
// (with the Go runtime and process collectors), the observers the engine
// and the chat adapters call, an http.RoundTripper that counts the calls
// made to a platform's API, and the handler that serves them all in the
// Prometheus text format.
//
// Every label takes few values: turn kinds and statuses, provider and
// platform names, refusal reasons. None names a user, a session or a
// prompt.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/easel-bot/easel/core"
)

// Histogram buckets, in seconds.
var (
	// providerBuckets span an image's render: seconds to minutes.
	providerBuckets = []float64{0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300}
	// partialBuckets span the wait for a first partial image.
	partialBuckets = []float64{0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60}
	// ackBuckets span an acknowledgement, within the 3 s Slack and
	// Discord allow.
	ackBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5}
)

// maxScrapes bounds the scrapes served at once; more are answered 503.
const maxScrapes = 4

// Metrics holds Easel's metrics. It implements core.Metrics; Platform
// returns the observer of one chat adapter, and Transport counts a
// platform's API calls. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	turns          *prometheus.CounterVec
	turnTime       *prometheus.HistogramVec
	providerTime   *prometheus.HistogramVec
	firstPartial   *prometheus.HistogramVec
	accessRefusals *prometheus.CounterVec
	quotaRefusals  *prometheus.CounterVec

	apiRequests    *prometheus.CounterVec
	apiErrors      *prometheus.CounterVec
	apiRateLimited *prometheus.CounterVec
	apiRetries     *prometheus.CounterVec
	uploadedBytes  *prometheus.CounterVec
	ackTime        *prometheus.HistogramVec
	inboxReplays   *prometheus.CounterVec
	dedupeDrops    *prometheus.CounterVec
}

// New returns Easel's metrics, registered with the Go and process
// collectors in a registry of their own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		turns: f.counter("easel_turns_total",
			"Turns ended, by kind, final status and provider.", "kind", "status", "provider"),
		turnTime: f.histogram("easel_turn_duration_seconds",
			"Time from a turn's start to its end, waiting for a provider slot included, by provider and final status.", providerBuckets, "provider", "status"),
		providerTime: f.histogram("easel_provider_duration_seconds",
			"Time a provider took to answer a turn, retries included, by provider and outcome.", providerBuckets, "provider", "outcome"),
		firstPartial: f.histogram("easel_provider_first_partial_seconds",
			"Time from a provider call's start to its first partial image, by provider.", partialBuckets, "provider"),
		accessRefusals: f.counter("easel_access_refusals_total",
			"Messages refused by the access rules, by the rule that refused them.", "reason"),
		quotaRefusals: f.counter("easel_quota_refusals_total",
			"Messages refused by a quota, by the quota that refused them.", "reason"),
		apiRequests: f.counter("easel_platform_api_requests_total",
			"HTTP requests made to a chat platform's API, by platform.", "platform"),
		apiErrors: f.counter("easel_platform_api_errors_total",
			"Platform API requests that failed: no answer, or an HTTP error status other than 429, by platform.", "platform"),
		apiRateLimited: f.counter("easel_platform_api_rate_limited_total",
			"Platform API requests answered 429 Too Many Requests, by platform.", "platform"),
		apiRetries: f.counter("easel_platform_api_retries_total",
			"Platform API requests repeating one whose last answer was 429 or 5xx, by platform.", "platform"),
		uploadedBytes: f.counter("easel_platform_uploaded_bytes_total",
			"Bytes of request bodies sent to a platform's API (images, mostly), by platform.", "platform"),
		ackTime: f.histogram("easel_platform_ack_duration_seconds",
			"Time from a delivery's arrival to its acknowledgement, by platform.", ackBuckets, "platform"),
		inboxReplays: f.counter("easel_inbox_replays_total",
			"Deliveries taken up again after a process stopped before handling them, by platform.", "platform"),
		dedupeDrops: f.counter("easel_inbox_duplicates_total",
			"Deliveries dropped as duplicates of one recorded before, by platform.", "platform"),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// factory makes metrics registered in one registry.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// Loader reports how much work the engine holds; *core.Engine implements
// it.
type Loader interface {
	Load() core.Load
}

// WatchLoad exports l's load as the gauges easel_turns_queued and
// easel_turns_in_flight, read at each scrape. Call it once.
func (m *Metrics) WatchLoad(l Loader) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "easel_turns_queued",
			Help: "Turns admitted and not yet running: behind others in their session, or waiting for a provider slot."},
			func() float64 { return float64(l.Load().Queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "easel_turns_in_flight",
			Help: "Turns running now, each holding a provider slot."},
			func() float64 { return float64(l.Load().Running) }),
	)
}

// Handler serves the metrics in the Prometheus text format (or another
// format a scraper asks for), at most maxScrapes at once.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             10 * time.Second,
	})
}

// TurnEnded counts a turn that ended, and observes how long it ran (see
// core.Metrics).
func (m *Metrics) TurnEnded(kind core.TurnKind, status core.TurnStatus, provider string, d time.Duration) {
	provider = or(provider, "none")
	m.turns.WithLabelValues(or(string(kind), "unknown"), string(status), provider).Inc()
	m.turnTime.WithLabelValues(provider, string(status)).Observe(d.Seconds())
}

// ProviderCalled observes a provider call (see core.Metrics).
func (m *Metrics) ProviderCalled(provider string, failed bool, d time.Duration) {
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.providerTime.WithLabelValues(provider, outcome).Observe(d.Seconds())
}

// FirstPartial observes the wait for a first partial image (see
// core.Metrics).
func (m *Metrics) FirstPartial(provider string, d time.Duration) {
	m.firstPartial.WithLabelValues(provider).Observe(d.Seconds())
}

// AccessRefused counts a refusal by the access rules (see core.Metrics).
func (m *Metrics) AccessRefused(reason string) { m.accessRefusals.WithLabelValues(reason).Inc() }

// QuotaRefused counts a refusal by a quota (see core.Metrics).
func (m *Metrics) QuotaRefused(reason string) { m.quotaRefusals.WithLabelValues(reason).Inc() }

// or returns s, or def if s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var _ core.Metrics = (*Metrics)(nil)
