package version

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/internal/promreg"
)

// Metrics per backend and version. Both labels come from the config, so
// their number is bounded by it; companies never become labels (they are in
// the logs and in the deprecated-call counts). The collectors are process-wide, so
// counts continue across config reloads; each config registers them on its
// own registry.
var (
	metricRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "backend", Name: "requests_total",
		Help: "Requests routed to a backend version by erp_version.",
	}, []string{"backend", "version"})
	metricDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "erpgate", Subsystem: "backend", Name: "request_duration_seconds",
		Help:    "Time from erp_version to the end of the answer, per backend version.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"backend", "version"})
	metricUpstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "backend", Name: "upstream_errors_total",
		Help: "Requests to a backend version that ended in an upstream failure (no connection, timeout, or a 5xx answer).",
	}, []string{"backend", "version"})
	eventsQueued = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "events", Name: "business_queued_total",
		Help: "Business events of writes through a backend handed to the event engine's publisher.",
	})
	eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "events", Name: "business_dropped_total",
		Help: "Business events not published: the event engine was not ready or its buffer was full.",
	})
)

func registerMetrics(reg *prometheus.Registry) error {
	return promreg.RegisterProcessWide(reg, metricRequests, metricDuration, metricUpstreamErrors, eventsQueued, eventsDropped)
}

// versionMetrics are the children of one backend version, resolved once per
// config so the request path does no label lookup.
type versionMetrics struct {
	requests       prometheus.Counter
	duration       prometheus.Observer
	upstreamErrors prometheus.Counter
}

func newVersionMetrics(backend, version string) versionMetrics {
	return versionMetrics{
		requests:       metricRequests.WithLabelValues(backend, version),
		duration:       metricDuration.WithLabelValues(backend, version),
		upstreamErrors: metricUpstreamErrors.WithLabelValues(backend, version),
	}
}
