package secmon

import "github.com/prometheus/client_golang/prometheus"

// Process-wide counters (registered on each config's registry through
// internal/promreg, as the other modules' are). Labels are bounded: the
// rules, four severities, three actions.
var (
	EventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erpgate_security_events_total",
		Help: "Security events the monitor emitted, by rule and severity.",
	}, []string{"rule", "severity"})
	ActionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erpgate_security_actions_total",
		Help: "Actions the security monitor took (block_ip, lock_account, revoke_family).",
	}, []string{"action"})
	BlockedRequestsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "erpgate_security_blocked_requests_total",
		Help: "Requests refused because their client address is blocked.",
	})
)
