package authsvc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/authsvc/store"
)

// The auth service's Prometheus metrics: process-wide (counts go on across
// config reloads), registered on each config's registry by erp_authsvc
// (Metrics), exported at the admin API's /metrics. Every label has a short
// fixed set of values, each one present (at 0) from the start: never a
// company, user, key id or address.
var (
	metricLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erp_auth_logins_total",
		Help: "First-factor sign-ins by outcome: succeeded (a login token issued, a second factor may follow), failed, throttled, risk_refused.",
	}, []string{"outcome"})
	metricTokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erp_auth_tokens_issued_total",
		Help: "Tokens issued by type: access (company-scoped JWT), login (after a first factor), refresh.",
	}, []string{"type"})
	metricRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erp_auth_refreshes_total",
		Help: "Refresh token exchanges by outcome: rotated, refused (malformed, unknown, expired or ended session), reuse_detected (a rotated token came back; its session family was revoked).",
	}, []string{"outcome"})
	metricReuse = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "erp_auth_refresh_reuse_detected_total",
		Help: "Refresh tokens used a second time (RFC 9700 reuse detection); each revoked a session family.",
	})
	metricMFA = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erp_auth_mfa_total",
		Help: "Second-factor checks by outcome: verified, failed, throttled, recovery_code_used.",
	}, []string{"outcome"})
	metricKeyRotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "erp_auth_key_rotations_total",
		Help: "Signing keys published to succeed the current one (scheduled or `gateway erp keys rotate`), by purpose: access, assertion.",
	}, []string{"purpose"})
)

// Outcomes of the metrics' labels, each exported from the start.
var (
	loginOutcomes   = []string{"succeeded", "failed", "throttled", "risk_refused"}
	tokenTypes      = []string{"access", "login", "refresh"}
	refreshOutcomes = []string{"rotated", "refused", "reuse_detected"}
	mfaOutcomes     = []string{"verified", "failed", "throttled", "recovery_code_used"}
	keyPurposes     = []store.KeyPurpose{store.KeyAccess, store.KeyAssertion}
)

func init() {
	for _, v := range loginOutcomes {
		metricLogins.WithLabelValues(v)
	}
	for _, v := range tokenTypes {
		metricTokensIssued.WithLabelValues(v)
	}
	for _, v := range refreshOutcomes {
		metricRefreshes.WithLabelValues(v)
	}
	for _, v := range mfaOutcomes {
		metricMFA.WithLabelValues(v)
	}
	for _, v := range keyPurposes {
		metricKeyRotations.WithLabelValues(string(v))
	}
}

// Metrics are the auth service's collectors (see the top of this file),
// for a registry.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{metricLogins, metricTokensIssued, metricRefreshes, metricReuse, metricMFA, metricKeyRotations}
}

// auditMetrics maps the audit records that count to their counter; the
// service counts a record when it writes it (record).
var auditMetrics = map[string]prometheus.Counter{
	store.EventLoginSucceeded:   metricLogins.WithLabelValues("succeeded"),
	store.EventLoginFailed:      metricLogins.WithLabelValues("failed"),
	store.EventLoginThrottled:   metricLogins.WithLabelValues("throttled"),
	store.EventLoginRiskRefused: metricLogins.WithLabelValues("risk_refused"),
	store.EventMFAVerified:      metricMFA.WithLabelValues("verified"),
	store.EventMFAFailed:        metricMFA.WithLabelValues("failed"),
	store.EventMFAThrottled:     metricMFA.WithLabelValues("throttled"),
	store.EventMFARecoveryUsed:  metricMFA.WithLabelValues("recovery_code_used"),
	store.EventRefreshRefused:   metricRefreshes.WithLabelValues("refused"),
}

// countAudit counts an audit record of a type auditMetrics names.
func countAudit(typ string) {
	if c, ok := auditMetrics[typ]; ok {
		c.Inc()
	}
}

var (
	issuedAccess  = metricTokensIssued.WithLabelValues("access")
	issuedLogin   = metricTokensIssued.WithLabelValues("login")
	issuedRefresh = metricTokensIssued.WithLabelValues("refresh")
	refreshed     = metricRefreshes.WithLabelValues("rotated")
	reuseDetected = metricRefreshes.WithLabelValues("reuse_detected")
)

// countReuse counts a refresh token reuse (both metrics).
func countReuse() {
	reuseDetected.Inc()
	metricReuse.Inc()
}

// countKeyRotation counts a key published to succeed the current one.
func countKeyRotation(purpose store.KeyPurpose) {
	metricKeyRotations.WithLabelValues(string(purpose)).Inc()
}
