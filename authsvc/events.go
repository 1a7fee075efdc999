package authsvc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/events"
)

// Auth and admin events (issue 15).
//
// Every audit record becomes a CloudEvent on the event stream. The record
// enters the store's events outbox with the change it records (Postgres:
// a trigger on the audit table, in the same transaction; Memory: under the
// same lock), and the relay below — one goroutine per service, woken by
// every append of its store and looking every eventRelayPoll for what
// another instance left — claims a batch (FOR UPDATE SKIP LOCKED: the
// instances share the work), publishes each event with PublishSync (the
// stream's acknowledgement), and removes the batch from the outbox. A
// crash between the commit and the publish loses nothing: the rows stay
// and the next relay publishes them. An event published twice (a crash
// after the publish, before the removal) has the same id, so JetStream
// stores it once within its 2-minute duplicate window; beyond it a
// consumer may see it twice and deduplicates by id.
//
// The event of record r:
//
//	id       audit-<seq>-<first 6 bytes of r's hash, hex>: stable for one record,
//	         never the same for another (a reset store counts seqs from 1 again)
//	source   /erpgate/authsvc
//	type     AuditEventType(r.Type)
//	subject  r.SubjectID
//	time     r.Time
//	companyid r.CompanyID (empty: a platform event, subject token "_")
//	data     {"actor_id","subject_id","ip","user_agent","request_id","details":{…}}
//	         plus "reason" on erp.auth.session.revoked (logout, logout.all or
//	         session.revoked: the record's type)
//
// Nothing else of the record; the audit trail holds no secret, token,
// password or code, so neither do the events.
const (
	eventRelayPoll       = time.Second
	eventRelayBatch      = 256
	eventRelayBackoffMin = 100 * time.Millisecond
	eventRelayBackoffMax = 5 * time.Second
)

// EventPublisher publishes an event and waits for the stream to keep it
// (*events.Engine).
type EventPublisher interface {
	PublishSync(ctx context.Context, ev *events.Event) error
}

// Event types of audit records that are not erp.auth.<record type>.
const (
	EventTypeSessionRevoked = "erp.auth.session.revoked"
	EventTypeTokenReuse     = "erp.auth.token.reuse_detected"
)

// AuditEventType is the event type of an audit record's type:
// session.revoked, logout and logout.all are erp.auth.session.revoked,
// token.refresh_reuse is erp.auth.token.reuse_detected, admin.* is
// erp.admin.*, any other t is erp.auth.<t> (login.succeeded is
// erp.auth.login.succeeded, mfa.verified erp.auth.mfa.verified). A
// character a type may not hold becomes '_'.
func AuditEventType(t string) string {
	switch t {
	case store.EventSessionRevoked, store.EventLogout, store.EventLogoutAll:
		return EventTypeSessionRevoked
	case store.EventRefreshReuse:
		return EventTypeTokenReuse
	}
	t = typeTokens(t)
	if strings.HasPrefix(t, "admin.") {
		return "erp." + t
	}
	return "erp.auth." + t
}

// typeTokens makes t dot-separated tokens of the characters an event type
// allows (the record types are already).
func typeTokens(t string) string {
	if events.ValidType(t) {
		return t
	}
	parts := strings.Split(t, ".")
	for i, p := range parts {
		b := []byte(p)
		for j, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				b[j] = '_'
			}
		}
		if len(b) == 0 {
			b = []byte{'_'}
		}
		parts[i] = string(b)
	}
	return strings.Join(parts, ".")
}

// AuditEventID is the stable id of record e's event.
func AuditEventID(e store.Event) string {
	h := e.Hash
	if len(h) > 6 {
		h = h[:6]
	}
	return "audit-" + strconv.FormatInt(e.Seq, 10) + "-" + hex.EncodeToString(h)
}

// authEventData is the data of an auth or admin event.
type authEventData struct {
	ActorID   string            `json:"actor_id"`
	SubjectID string            `json:"subject_id"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	RequestID string            `json:"request_id"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details"`
}

// AuditCloudEvent is the event of audit record e (see the top of this file).
func AuditCloudEvent(e store.Event) (*events.Event, error) {
	d := authEventData{ActorID: e.ActorID, SubjectID: e.SubjectID, IP: e.IP, UserAgent: e.UserAgent,
		RequestID: e.RequestID, Details: e.Details}
	if d.Details == nil {
		d.Details = map[string]string{}
	}
	typ := AuditEventType(e.Type)
	if typ == EventTypeSessionRevoked {
		d.Reason = e.Type
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	ev := &events.Event{
		SpecVersion: events.SpecVersion, ID: AuditEventID(e), Source: events.SourceAuthsvc, Type: typ,
		Subject: e.SubjectID, Time: e.Time.UTC(), DataContentType: "application/json", CompanyID: e.CompanyID,
		Data: data,
	}
	return ev, ev.Validate()
}

// Metrics of the relay: process-wide (they count across config reloads);
// the erp app registers them on each config's registry (EventMetrics).
var (
	metricOutboxBacklog = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "erpgate", Subsystem: "events", Name: "outbox_backlog",
		Help: "Audit records in the auth service's events outbox not yet published to the event stream (as last counted by a relay).",
	})
	metricOutboxPublished = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "events", Name: "outbox_published_total",
		Help: "Auth and admin events the outbox relay published (acknowledged by the stream).",
	})
	metricOutboxFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "erpgate", Subsystem: "events", Name: "outbox_failed_total",
		Help: "Failed outbox relay rounds (NATS or the store did not answer; the records stay and are retried).",
	})
)

// EventMetrics are the relay's Prometheus collectors (process-wide).
func EventMetrics() []prometheus.Collector {
	return []prometheus.Collector{metricOutboxBacklog, metricOutboxPublished, metricOutboxFailed}
}

// publisher is the event engine, once it started (nil before, or without one).
func (s *Service) publisher() EventPublisher {
	if s.events == nil {
		return nil
	}
	return s.events()
}

// eventRelay publishes the events outbox until the service ends (see the
// top of this file).
func (s *Service) eventRelay() {
	defer s.wg.Done()
	kick := make(chan struct{}, 1)
	s.store.NotifyAppends(s.ctx, func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	t := time.NewTimer(0) // at start: what a previous process left
	defer t.Stop()
	var backoff time.Duration
	var counted time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-kick:
			if backoff > 0 {
				continue // failing or waiting for the engine: the timer retries
			}
		}
		if now := time.Now(); now.Sub(counted) >= eventRelayPoll {
			s.countBacklog()
			counted = now
		}
		pub := s.publisher()
		if r, ok := pub.(interface{ Ready() bool }); ok && !r.Ready() {
			pub = nil // NATS is away: no publish that would wait for it (holding the rows) until the timeout
		}
		if pub == nil { // the engine has not started (yet) or NATS is away: the records wait
			backoff = eventRelayBackoffMin
			t.Reset(backoff)
			continue
		}
		more, n, err := s.relayEvents(pub)
		switch {
		case err != nil && s.ctx.Err() != nil:
			return
		case err != nil:
			metricOutboxFailed.Inc()
			if backoff < eventRelayBackoffMin*2 {
				s.logger.Warn("auth events recorded but not yet published; retrying", zap.Int("published", n), zap.Error(err))
				backoff = eventRelayBackoffMin * 2
			} else {
				backoff = min(2*backoff, eventRelayBackoffMax)
			}
			t.Reset(backoff)
		default:
			if backoff > eventRelayBackoffMin {
				s.logger.Info("auth events published after retrying", zap.Int("published", n))
			}
			backoff = 0
			if more {
				t.Reset(0)
			} else {
				t.Reset(eventRelayPoll)
			}
		}
	}
}

// relayEvents publishes one batch of the outbox. more: the batch was full.
func (s *Service) relayEvents(pub EventPublisher) (more bool, n int, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	claimed, n, err := s.store.RelayEvents(ctx, eventRelayBatch, func(recs []store.Event) (int, error) {
		for i, r := range recs {
			ev, err := AuditCloudEvent(r)
			if err != nil { // cannot be published, ever: logged, and not retried
				s.logger.Error("audit record not published as an event: invalid", zap.Int64("seq", r.Seq), zap.String("type", r.Type), zap.Error(err))
				continue
			}
			if err := pub.PublishSync(ctx, ev); err != nil {
				return i, err
			}
		}
		return len(recs), nil
	})
	metricOutboxPublished.Add(float64(n))
	return claimed == eventRelayBatch && err == nil, n, err
}

// countBacklog sets the backlog gauge from the store's count.
func (s *Service) countBacklog() {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	if n, err := s.store.EventBacklog(ctx); err == nil {
		metricOutboxBacklog.Set(float64(n))
	}
}
