package authsvc

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
)

// EventAuditPruned records a retention cut of the audit trail (Details:
// removed, before). It is appended after the cut, so it is never removed
// by the cut it records.
const EventAuditPruned = "audit.pruned"

// Retention is the schedule of the retention job. Every Interval, each
// instance deletes the sessions (with their refresh tokens) and trusted
// devices that ended more than Grace ago and the refresh tokens that
// expired more than Grace ago, and — when Audit is set — the audit records
// older than Audit, behind a signed checkpoint per chain. Instances may run
// it at once: purges skip rows another holds (SKIP LOCKED) and each
// chain's cut is made under its checkpoint's row lock.
//
// What expires elsewhere is not its work: login tokens' use marks, attempt
// counters, one-time codes, magic links, WebAuthn and SSO ceremonies, and
// the edge's idempotency records live in Redis (or in process) with a TTL.
type Retention struct {
	// Off turns the job off.
	Off bool
	// Interval between runs. Default: 1h.
	Interval time.Duration
	// Grace keeps ended sessions and devices this long (a refresh of an
	// ended session is refused as ended, not unknown, meanwhile). At least
	// the access-token lifetime. Default: 24h.
	Grace time.Duration
	// Audit is how long audit records are kept. 0: for ever.
	Audit time.Duration
	// Batch is the most rows of one kind deleted per statement. Default: 1000.
	Batch int
}

func (r *Retention) setDefaults(accessTTL time.Duration) {
	if r.Interval <= 0 {
		r.Interval = time.Hour
	}
	if r.Grace <= 0 {
		r.Grace = 24 * time.Hour
	}
	r.Grace = max(r.Grace, accessTTL)
	if r.Batch <= 0 {
		r.Batch = 1000
	}
}

// maxRetentionRounds bounds one run: at most this many batches of each
// kind; what is left waits for the next run.
const maxRetentionRounds = 100

// RetentionReport is what one run removed.
type RetentionReport struct {
	Purged       store.PurgeCounts
	AuditRemoved int64
}

// RunRetention runs the retention job once, now.
func (s *Service) RunRetention(ctx context.Context) (RetentionReport, error) {
	var rep RetentionReport
	if err := s.Ready(ctx); err != nil {
		return rep, err
	}
	r := s.cfg.Retention
	now := s.clock.Now()
	for range maxRetentionRounds {
		c, err := s.store.PurgeExpired(ctx, now.Add(-r.Grace), r.Batch)
		if err != nil {
			return rep, err
		}
		rep.Purged.Sessions += c.Sessions
		rep.Purged.RefreshTokens += c.RefreshTokens
		rep.Purged.TrustedDevices += c.TrustedDevices
		if max(c.Sessions, c.RefreshTokens, c.TrustedDevices) < int64(r.Batch) {
			break
		}
	}
	if r.Audit > 0 {
		before := now.Add(-r.Audit)
		for range maxRetentionRounds {
			n, err := s.store.PruneAudit(ctx, before, r.Batch, s.auditKey, now)
			if err != nil {
				return rep, err
			}
			rep.AuditRemoved += n
			if n < int64(r.Batch) {
				break
			}
		}
		if rep.AuditRemoved > 0 {
			ev := s.systemEvent(EventAuditPruned, "", map[string]string{
				"removed": strconv.FormatInt(rep.AuditRemoved, 10), "before": before.UTC().Format(time.RFC3339)})
			if err := s.record(ctx, ev); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// retentionLoop runs the job every Interval until the service ends.
func (s *Service) retentionLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.Retention.Interval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		// A run is bounded by its rounds; the timeout stops a stuck store.
		ctx, cancel := context.WithTimeout(s.ctx, max(time.Minute, s.cfg.Timeout))
		rep, err := s.RunRetention(ctx)
		cancel()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			s.logger.Warn("retention run failed", zap.Error(err))
		case rep.Purged.Total() > 0 || rep.AuditRemoved > 0:
			s.logger.Info("retention run", zap.Int64("sessions", rep.Purged.Sessions), zap.Int64("refresh_tokens", rep.Purged.RefreshTokens),
				zap.Int64("trusted_devices", rep.Purged.TrustedDevices), zap.Int64("audit_records", rep.AuditRemoved))
		}
	}
}
