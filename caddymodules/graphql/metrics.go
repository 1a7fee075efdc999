package graphql

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/internal/promreg"
)

// Metrics of erp_graphql. Labels come from a fixed list (outcome) or the
// config (backend); the collectors are process-wide, so counts continue
// across config reloads; each config registers them on its own registry.
var (
	metricRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "graphql", Name: "requests_total",
		Help: "GraphQL requests by outcome: ok (no error), partial (data with errors), refused (4xx before execution), error (5xx, or no data).",
	}, []string{"outcome"})
	metricBackendCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "graphql", Name: "backend_calls_total",
		Help: "Backend calls GraphQL operations made, per backend.",
	}, []string{"backend"})
	metricCost = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "erpgate", Subsystem: "graphql", Name: "cost",
		Help:    "The cost of each GraphQL operation that passed its plan's limits.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000},
	})
)

// Outcomes, resolved once.
var (
	outcomeOK      = metricRequests.WithLabelValues("ok")
	outcomePartial = metricRequests.WithLabelValues("partial")
	outcomeRefused = metricRequests.WithLabelValues("refused")
	outcomeError   = metricRequests.WithLabelValues("error")
)

func registerMetrics(reg *prometheus.Registry) error {
	return promreg.RegisterProcessWide(reg, metricRequests, metricBackendCalls, metricCost)
}
