package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/internal/promreg"
)

// Metrics. backend is a configured backend's name (bounded by the config),
// result and op fixed sets; companies are never labels. The collectors are
// process-wide (counts go on across reloads); each config registers them.
var (
	metricRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "cache", Name: "requests_total",
		Help: "erp_cache GETs by backend and result (hit, miss, refresh, bypass, error); hit ratio = hit / (hit + miss).",
	}, []string{"backend", "result"})
	metricInvalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "cache", Name: "invalidations_total",
		Help: "Invalidations of a company's entries of a backend after a write through the edge, by backend.",
	}, []string{"backend"})
	metricErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "cache", Name: "store_errors_total",
		Help: "erp_cache store failures by backend and operation (put, invalidate); lookups failing count as result=error in requests_total.",
	}, []string{"backend", "op"})
)

func registerMetrics(reg *prometheus.Registry) error {
	return promreg.RegisterProcessWide(reg, metricRequests, metricInvalidations, metricErrors)
}
