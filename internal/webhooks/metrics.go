package webhooks

import "github.com/prometheus/client_golang/prometheus"

// Process-wide collectors (counts go on across config reloads); the erp app
// registers them on each config's registry (promreg.RegisterProcessWide).
var (
	metricDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "webhook", Name: "deliveries_total",
		Help: "Webhook delivery attempts by result (succeeded, failed, gave_up) and kind (stream, test, retry).",
	}, []string{"result", "kind"})
	metricDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "erpgate", Subsystem: "webhook", Name: "attempt_duration_seconds",
		Help:    "Duration of webhook delivery attempts, connect to answer read.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	metricDisabled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "webhook", Name: "endpoints_disabled_total",
		Help: "Webhook endpoints disabled by the engine, by reason (gone: a 410 answer; failing: failed for disable_after).",
	}, []string{"reason"})
	metricEndpoints = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "erpgate", Subsystem: "webhook", Name: "endpoints",
		Help: "Webhook endpoints of every company by state (enabled, disabled), as of the last resync.",
	}, []string{"state"})
)

// Collectors are the package's Prometheus collectors.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{metricDeliveries, metricDuration, metricDisabled, metricEndpoints}
}
