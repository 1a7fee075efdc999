package webhooks

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/events"
)

// Event types of webhooks (DESIGN.md, "Events").
const (
	TypePing             = "erp.webhooks.ping"
	TypeEndpointDisabled = "erp.webhooks.endpoint_disabled"
)

// Defaults of Config.
var DefaultBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	time.Hour, 6 * time.Hour, 24 * time.Hour}

const (
	DefaultDisableAfter  = 5 * 24 * time.Hour
	DefaultMaxEndpoints  = 50
	DefaultMaxAckPending = 16
	DefaultResync        = 30 * time.Second
	DefaultRetention     = 30 * 24 * time.Hour
	// RotationOverlap is how long the secret before a rotation still signs.
	RotationOverlap = 24 * time.Hour
	maxPatterns     = 32
	maxDescription  = 500
	maxPageSize     = 100
	defaultPageSize = 50
)

// ParseBackoff reads ERP_WEBHOOK_BACKOFF: space-separated Go durations
// ("5s 30s 2m"), each positive, 1 to 20 of them.
func ParseBackoff(s string) ([]time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 20 {
		return nil, errors.New("webhooks: backoff: 1 to 20 space-separated durations")
	}
	out := make([]time.Duration, 0, len(f))
	for _, v := range f {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("webhooks: backoff: %q is not a positive duration", v)
		}
		out = append(out, d)
	}
	return out, nil
}

// Config of a Manager.
type Config struct {
	Store  Store
	Sealer Sealer // seals secrets at rest (authsvc.NewSealer of the master key)
	// Backoff is the pause before each retry (attempt n+1 after
	// Backoff[n-1], ±20% jitter); after the last, the event is given up.
	// Default: DefaultBackoff.
	Backoff []time.Duration
	// AllowPrivate lets endpoints reach loopback, private and link-local
	// addresses (tests, the demo). Default: false.
	AllowPrivate bool
	// DisableAfter: an endpoint whose attempts all failed for this long is
	// disabled (reason "failing"). Default: 5 days.
	DisableAfter time.Duration
	// Timeout bounds one attempt. Default: 10s.
	Timeout time.Duration
	// MaxEndpoints per company. Default: 50.
	MaxEndpoints int
	// MaxAckPending bounds the events of one endpoint in flight or waiting
	// for a retry. Default: 16.
	MaxAckPending int
	// Resync is how often the workers re-read every endpoint. Default: 30s.
	Resync time.Duration
	// Retention: attempts older than this are pruned. Default: 30 days.
	Retention time.Duration
	// PruneConsumers deletes durable wh_ consumers of the stream whose
	// endpoint is not in Store: only when Store is shared by every
	// instance on the stream (Postgres). On an embedded NATS (one process)
	// they are pruned anyway. Default: false.
	PruneConsumers bool
	// Source of the events the webhooks publish (ping,
	// endpoint_disabled). Default: /erpgate/webhooks.
	Source   string
	Resolver Resolver // default: net.DefaultResolver
	Logger   *zap.Logger
	Now      func() time.Time // default: time.Now
}

// Manager is the Service and the delivery engine: workers, once Start has
// an event engine, consume each enabled endpoint's durable consumer.
type Manager struct {
	cfg    Config
	client *http.Client
	log    *zap.Logger
	now    func() time.Time

	engine atomic.Pointer[events.Engine]
	mu     sync.Mutex
	w      *workers // nil until Start
}

var _ Service = (*Manager)(nil)

// New makes a Manager; it serves the API at once, delivers after Start.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("webhooks: a store and a sealer are required")
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxEndpoints <= 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = DefaultMaxAckPending
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Source == "" {
		cfg.Source = "/erpgate/webhooks"
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := newSafeDialer(cfg.AllowPrivate, cfg.Resolver, cfg.Timeout)
	return &Manager{cfg: cfg, client: newClient(d, cfg.Timeout), log: cfg.Logger, now: cfg.Now}, nil
}

// newID is prefix and a UUIDv7's hex: ids made later sort after.
func newID(prefix string) string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	return prefix + hex.EncodeToString(u[:])
}

func validID(prefix, id string) bool {
	h, ok := strings.CutPrefix(id, prefix)
	if !ok || len(h) != 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= '0' && h[i] <= '9' || h[i] >= 'a' && h[i] <= 'f') {
			return false
		}
	}
	return true
}

// ConsumerName is the durable JetStream consumer of an endpoint: its id
// (wh_<uuid hex>).
func ConsumerName(endpointID string) string { return endpointID }

func sealKid(endpointID string) string { return "webhook:" + endpointID }

func checkPatterns(p []string) ([]string, error) {
	if len(p) == 0 {
		return nil, invalid("events", "at least one event type pattern, e.g. erp.invoices.*")
	}
	if len(p) > maxPatterns {
		return nil, invalid("events", "at most "+strconv.Itoa(maxPatterns)+" patterns")
	}
	out := make([]string, 0, len(p))
	for _, v := range p {
		if !events.ValidPattern(v) {
			return nil, invalid("events", "not an event type pattern: tokens of letters, digits, '_' and '-' separated by dots, '*' for any token")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func checkCompany(company string) error {
	if company == "" {
		return invalid("company_id", "required")
	}
	return nil
}

func (m *Manager) check(ctx context.Context, in EndpointInput, create bool) error {
	if in.URL != nil || create {
		u := ""
		if in.URL != nil {
			u = *in.URL
		}
		if err := checkURL(ctx, u, m.cfg.AllowPrivate, m.cfg.Resolver); err != nil {
			return err
		}
	}
	if in.Description != nil && len(*in.Description) > maxDescription {
		return invalid("description", "at most "+strconv.Itoa(maxDescription)+" bytes")
	}
	return nil
}

// Create adds an endpoint; its secret is returned this once.
func (m *Manager) Create(ctx context.Context, company string, in EndpointInput) (Endpoint, string, error) {
	if err := checkCompany(company); err != nil {
		return Endpoint{}, "", err
	}
	if err := m.check(ctx, in, true); err != nil {
		return Endpoint{}, "", err
	}
	patterns, err := checkPatterns(in.Events)
	if err != nil {
		return Endpoint{}, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("webhooks: secret: %w", err)
	}
	now := m.now().UTC().Truncate(time.Microsecond) // as Postgres keeps it
	r := Record{Endpoint: Endpoint{
		ID: newID("wh_"), CompanyID: company, URL: *in.URL, Events: patterns,
		Enabled: in.Enabled == nil || *in.Enabled, CreatedAt: now, UpdatedAt: now,
	}}
	if in.Description != nil {
		r.Description = *in.Description
	}
	r.Secret = m.cfg.Sealer.Seal(sealKid(r.ID), []byte(secret))
	if err := m.cfg.Store.CreateEndpoint(ctx, r, m.cfg.MaxEndpoints); err != nil {
		return Endpoint{}, "", err
	}
	m.changed(ctx, r.CompanyID, r.ID, false)
	return r.Endpoint, secret, nil
}

// List is the company's endpoints, oldest first.
func (m *Manager) List(ctx context.Context, company string) ([]Endpoint, error) {
	rs, err := m.cfg.Store.ListEndpoints(ctx, company)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, len(rs))
	for i := range rs {
		out[i] = rs[i].Endpoint
	}
	return out, nil
}

// Get is one of the company's endpoints.
func (m *Manager) Get(ctx context.Context, company, id string) (Endpoint, error) {
	if !validID("wh_", id) {
		return Endpoint{}, ErrNotFound
	}
	r, err := m.cfg.Store.GetEndpoint(ctx, company, id)
	return r.Endpoint, err
}

// Update changes what in gives; Enabled true re-enables a disabled
// endpoint (its consumer resumes where it stopped), false disables it.
func (m *Manager) Update(ctx context.Context, company, id string, in EndpointInput) (Endpoint, error) {
	if !validID("wh_", id) {
		return Endpoint{}, ErrNotFound
	}
	if err := m.check(ctx, in, false); err != nil {
		return Endpoint{}, err
	}
	var patterns []string
	if in.Events != nil {
		var err error
		if patterns, err = checkPatterns(in.Events); err != nil {
			return Endpoint{}, err
		}
	}
	now := m.now().UTC().Truncate(time.Microsecond)
	r, err := m.cfg.Store.UpdateEndpoint(ctx, company, id, func(r *Record) error {
		if in.URL != nil {
			r.URL = *in.URL
		}
		if patterns != nil {
			r.Events = patterns
		}
		if in.Description != nil {
			r.Description = *in.Description
		}
		if in.Enabled != nil {
			r.Enabled = *in.Enabled
			r.DisabledReason = ""
			if r.Enabled {
				r.FailingSince = nil
			}
		}
		r.UpdatedAt = now
		return nil
	})
	if err != nil {
		return Endpoint{}, err
	}
	m.changed(ctx, company, id, false)
	return r.Endpoint, nil
}

// Delete removes the endpoint, its attempts and its durable consumer.
func (m *Manager) Delete(ctx context.Context, company, id string) error {
	if !validID("wh_", id) {
		return ErrNotFound
	}
	if err := m.cfg.Store.DeleteEndpoint(ctx, company, id); err != nil {
		return err
	}
	m.changed(ctx, company, id, true)
	return nil
}

// RotateSecret makes a new secret; the current one keeps signing, beside
// it, for RotationOverlap (a second rotation within it drops the oldest).
func (m *Manager) RotateSecret(ctx context.Context, company, id string) (string, error) {
	if !validID("wh_", id) {
		return "", ErrNotFound
	}
	secret, err := NewSecret()
	if err != nil {
		return "", fmt.Errorf("webhooks: secret: %w", err)
	}
	now := m.now().UTC().Truncate(time.Microsecond)
	sealed := m.cfg.Sealer.Seal(sealKid(id), []byte(secret))
	_, err = m.cfg.Store.UpdateEndpoint(ctx, company, id, func(r *Record) error {
		exp := now.Add(RotationOverlap)
		r.OldSecret, r.OldSecretExpires = r.Secret, &exp
		r.Secret = sealed
		r.UpdatedAt = now
		return nil
	})
	if err != nil {
		return "", err
	}
	m.changed(ctx, company, id, false)
	return secret, nil
}

// keys are the HMAC keys that sign for r now: the current secret's, then
// the previous one's while it overlaps.
func (m *Manager) keys(r *Record) ([][]byte, error) {
	open := func(sealed []byte) ([]byte, error) {
		s, err := m.cfg.Sealer.Open(sealKid(r.ID), sealed)
		if err != nil {
			return nil, fmt.Errorf("webhooks: endpoint %s: secret does not open (master key changed?)", r.ID)
		}
		return secretKey(string(s))
	}
	k, err := open(r.Secret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{k}
	if r.OldSecret != nil && r.OldSecretExpires != nil && m.now().Before(*r.OldSecretExpires) {
		if old, err := open(r.OldSecret); err == nil {
			keys = append(keys, old)
		}
	}
	return keys, nil
}

// Test sends a ping event to the endpoint now (enabled or not) and records
// the attempt.
func (m *Manager) Test(ctx context.Context, company, id string) (Delivery, error) {
	if !validID("wh_", id) {
		return Delivery{}, ErrNotFound
	}
	r, err := m.cfg.Store.GetEndpoint(ctx, company, id)
	if err != nil {
		return Delivery{}, err
	}
	ev, err := m.ping(company, id, "")
	if err != nil {
		return Delivery{}, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Delivery{}, err
	}
	return m.attemptNow(ctx, &r, ev.ID, ev.Type, body, 0, "test")
}

func (m *Manager) ping(company, endpointID, id string) (*events.Event, error) {
	ev, err := events.New(m.cfg.Source, TypePing, company, endpointID, map[string]string{"endpoint_id": endpointID})
	if err != nil {
		return nil, err
	}
	if id != "" {
		ev.ID = id // a retried ping keeps its id
	}
	return ev, nil
}

// attemptNow delivers body once, outside the consumer (Test, Retry), and
// records the attempt: failed or succeeded, never retried by itself.
func (m *Manager) attemptNow(ctx context.Context, r *Record, eventID, eventType string, body []byte, seq uint64, kind string) (Delivery, error) {
	keys, err := m.keys(r)
	if err != nil {
		return Delivery{}, err
	}
	actx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	o := post(actx, m.client, r.URL, eventID, keys, body, m.now())
	status := StatusFailed
	if o.ok() {
		status = StatusSucceeded
	}
	d := m.delivery(r, eventID, eventType, seq, status, o, nil)
	observe(status, kind, o)
	n, err := m.cfg.Store.AddDelivery(ctx, d)
	if err != nil {
		return Delivery{}, err
	}
	d.Attempt = n
	return d.Delivery, nil
}

func observe(status, kind string, o outcome) {
	metricDeliveries.WithLabelValues(status, kind).Inc()
	metricDuration.Observe(o.duration.Seconds())
}

func (m *Manager) delivery(r *Record, eventID, eventType string, seq uint64, status string, o outcome, next *time.Time) DeliveryRecord {
	return DeliveryRecord{
		Delivery: Delivery{
			ID: newID("whd_"), EndpointID: r.ID, EventID: eventID, EventType: eventType, Status: status,
			HTTPStatus: o.status, Error: o.errText, DurationMS: o.duration.Milliseconds(), Response: o.response,
			At: m.now().UTC().Truncate(time.Microsecond), NextAttempt: next,
		},
		CompanyID: r.CompanyID, StreamSeq: seq,
	}
}

// Deliveries lists the endpoint's attempts, newest first (limit 1..100,
// default 50).
func (m *Manager) Deliveries(ctx context.Context, company, id string, limit int, before string) ([]Delivery, error) {
	if !validID("wh_", id) {
		return nil, ErrNotFound
	}
	if limit <= 0 {
		limit = defaultPageSize
	}
	if limit > maxPageSize {
		return nil, invalid("limit", "at most "+strconv.Itoa(maxPageSize))
	}
	if before != "" && !validID("whd_", before) {
		return nil, invalid("before", "not a delivery id")
	}
	return m.cfg.Store.Deliveries(ctx, company, id, limit, before)
}

// Retry sends the event of a delivery again now (read back from the
// stream by its sequence; a ping is sent again with its id).
func (m *Manager) Retry(ctx context.Context, company, id, deliveryID string) (Delivery, error) {
	if !validID("wh_", id) || !validID("whd_", deliveryID) {
		return Delivery{}, ErrNotFound
	}
	r, err := m.cfg.Store.GetEndpoint(ctx, company, id)
	if err != nil {
		return Delivery{}, err
	}
	d, err := m.cfg.Store.GetDelivery(ctx, company, id, deliveryID)
	if err != nil {
		return Delivery{}, err
	}
	if d.StreamSeq == 0 {
		ev, err := m.ping(company, id, d.EventID)
		if err != nil {
			return Delivery{}, err
		}
		body, err := json.Marshal(ev)
		if err != nil {
			return Delivery{}, err
		}
		return m.attemptNow(ctx, &r, ev.ID, ev.Type, body, 0, "retry")
	}
	eng := m.engine.Load()
	if eng == nil {
		return Delivery{}, ErrNotReady
	}
	msg, err := eng.JetStream().Stream(ctx, eng.Names().Stream)
	if err != nil {
		return Delivery{}, fmt.Errorf("webhooks: stream: %w", err)
	}
	raw, err := msg.GetMsg(ctx, d.StreamSeq)
	if err != nil {
		return Delivery{}, ErrEventGone
	}
	var head eventHead
	if json.Unmarshal(raw.Data, &head) != nil || head.ID != d.EventID || head.CompanyID != company {
		return Delivery{}, ErrEventGone // the stream was purged and its sequences reused
	}
	return m.attemptNow(ctx, &r, head.ID, head.Type, raw.Data, d.StreamSeq, "retry")
}

// eventHead is what the engine reads of an event it delivers.
type eventHead struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	CompanyID string `json:"companyid"`
}

// jitter is d ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
