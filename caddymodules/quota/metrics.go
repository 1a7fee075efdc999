package quota

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/internal/promreg"
)

// Metrics. Labels are bounded by the config: plan is a configured plan's
// name, result and store are fixed sets. Companies never become labels
// (they are in the logs). The collectors are process-wide, so counts go on
// across config reloads; each config registers them on its registry.
var (
	metricDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "quota", Name: "decisions_total",
		Help: "erp_quota decisions by plan, result (allowed, rate_limited, quota_exceeded, shadow_refused, unlimited, redis_down_allowed, redis_down_denied) and store (redis, memory, local, none).",
	}, []string{"plan", "result", "store"})
	metricSwitches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "quota", Name: "redis_switches_total",
		Help: "Switches of erp_quota between Redis and its on_redis_down policy: to=fallback when Redis stopped answering, to=redis when it is back.",
	}, []string{"to"})
	metricFallback = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "erpgate", Subsystem: "quota", Name: "redis_fallback_handlers",
		Help: "erp_quota handlers currently deciding without Redis (by their on_redis_down policy).",
	})
)

func registerMetrics(reg *prometheus.Registry) error {
	return promreg.RegisterProcessWide(reg, metricDecisions, metricSwitches, metricFallback)
}
