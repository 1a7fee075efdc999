package secmon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/events"
)

// ConsumerName is the durable consumer every instance of a deployment
// shares: each auth event is judged by one of them.
const ConsumerName = "security"

// Auth event types the rules read (the outbox maps the auth service's
// audit records to them; see the common event contract).
const (
	TypeLoginFailed    = "erp.auth.login.failed"
	TypeLoginThrottled = "erp.auth.login.throttled"
	TypeLoginSucceeded = "erp.auth.login.succeeded"
	TypeTokenReuse     = "erp.auth.token.reuse_detected"
	TypeAPIKeyUsed     = "erp.auth.api_key.used"
)

// AuthData is the data of an auth event.
type AuthData struct {
	ActorID   string            `json:"actor_id"`
	SubjectID string            `json:"subject_id"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	RequestID string            `json:"request_id"`
	Details   map[string]string `json:"details"`
}

// Finding is the data of an erp.security.<rule> event.
type Finding struct {
	Severity string `json:"severity"`
	Rule     string `json:"rule"`
	IP       string `json:"ip,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	APIKeyID string `json:"api_key_id,omitempty"`
	// Scope says what the count is of: "address", "account", "user", "api_key".
	Scope  string `json:"scope,omitempty"`
	Count  int64  `json:"count"`
	Window string `json:"window"`
	// Action lists what was done, comma-separated ("block_ip" …); Until is
	// the end of a block.
	Action string     `json:"action,omitempty"`
	Until  *time.Time `json:"until,omitempty"`
}

// Actor does what rules ask of the auth service.
type Actor interface {
	// LockAccount refuses the user's logins until an admin unlocks them.
	LockAccount(ctx context.Context, userID, rule string) error
	// RevokeFamily makes sure the session (the family of a reused refresh
	// token) is revoked.
	RevokeFamily(ctx context.Context, userID, sessionID string) error
	// UserCompanies are the companies the user is a member of (a finding
	// about an account goes to each, so their admins see it).
	UserCompanies(ctx context.Context, userID string) ([]string, error)
}

// maxFindingCompanies bounds the copies of one finding.
const maxFindingCompanies = 20

// Publisher publishes events (events.Engine).
type Publisher interface {
	Publish(ev *events.Event) bool
}

// Monitor evaluates the rules over auth events.
type Monitor struct {
	Store     Store
	Blocklist *Blocklist
	Actor     Actor // nil: lock_account and revoke_family are not possible (logged)
	Publisher Publisher
	// Source of the security events (events.EdgeSource of the instance).
	Source string
	Now    func() time.Time
	Logger *zap.Logger
	// Timeout bounds each store and action call. Default: 2s.
	Timeout time.Duration

	rules atomic.Pointer[Rules]

	flaggedMu sync.Mutex
	flagged   map[netip.Addr]flag // addresses of recent findings (Flagged)
}

// flag is a recent finding about an address.
type flag struct {
	rule  string
	until time.Time
}

// maxFlagged bounds the addresses Flagged remembers.
const maxFlagged = 10_000

// Flagged reports whether a rule's finding named ip within the rule's
// window (at least an hour), and which rule: a risk signal for the auth
// service's logins from it. This instance's findings only.
func (m *Monitor) Flagged(ip string) (string, bool) {
	a := addr(ip)
	if !a.IsValid() {
		return "", false
	}
	m.flaggedMu.Lock()
	defer m.flaggedMu.Unlock()
	f, ok := m.flagged[a]
	if !ok || !m.now().Before(f.until) {
		return "", false
	}
	return f.rule, true
}

// flag remembers a finding about ip until the end of its window.
func (m *Monitor) flag(ip, rule string, window time.Duration) {
	a := addr(ip)
	if !a.IsValid() {
		return
	}
	now := m.now()
	m.flaggedMu.Lock()
	defer m.flaggedMu.Unlock()
	if m.flagged == nil {
		m.flagged = map[netip.Addr]flag{}
	}
	if len(m.flagged) >= maxFlagged {
		for k, f := range m.flagged {
			if !now.Before(f.until) || len(m.flagged) >= maxFlagged {
				delete(m.flagged, k)
			}
		}
	}
	m.flagged[a] = flag{rule: rule, until: now.Add(max(window, time.Hour))}
}

// SetRules replaces the rules (a config reload); they must be valid.
func (m *Monitor) SetRules(rs Rules) { m.rules.Store(&rs) }

// Rules are the rules in force.
func (m *Monitor) Rules() Rules {
	if p := m.rules.Load(); p != nil {
		return *p
	}
	return DefaultRules()
}

func (m *Monitor) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Monitor) log() *zap.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return zap.NewNop()
}

// Run reads the durable consumer of every company's auth events on the
// engine until ctx ends, retrying when NATS is away.
func (m *Monitor) Run(ctx context.Context, eng *events.Engine) {
	for ctx.Err() == nil {
		err := m.consume(ctx, eng)
		if ctx.Err() != nil {
			return
		}
		m.log().Warn("security monitor: consumer stopped; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (m *Monitor) consume(ctx context.Context, eng *events.Engine) error {
	names := eng.Names()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := eng.JetStream().CreateOrUpdateConsumer(cctx, names.Stream, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "erpgate security monitor (shared by the edge instances)",
		FilterSubject: names.AllFilter("erp.auth.*"),
		DeliverPolicy: jetstream.DeliverNewPolicy, // on creation: from now on, not the stream's history
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    5,
		MaxAckPending: 1024,
	})
	cancel()
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		m.handleMsg(ctx, msg)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			select {
			case errc <- err:
			default:
			}
		}
	}))
	if err != nil {
		return err
	}
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	case <-cc.Closed():
		return errors.New("consumer closed")
	}
}

func (m *Monitor) handleMsg(ctx context.Context, msg jetstream.Msg) {
	var ev events.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		_ = msg.Term() // never valid: don't redeliver
		return
	}
	if err := m.Handle(ctx, &ev); err != nil && ctx.Err() == nil {
		m.log().Warn("security monitor: event not judged; redelivering", zap.String("event_id", ev.ID), zap.String("type", ev.Type), zap.Error(err))
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

// Handle judges one auth event: it updates the rules' state and emits (and
// acts on) what fires. An error means the state could not be updated (the
// event should come again).
func (m *Monitor) Handle(ctx context.Context, ev *events.Event) error {
	var d AuthData
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil // not an auth event's data: nothing to judge
		}
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rules := m.Rules()
	switch ev.Type {
	case TypeLoginFailed, TypeLoginThrottled:
		return m.failedLogin(ctx, rules, ev, &d)
	case TypeLoginSucceeded:
		return m.succeededLogin(ctx, rules, ev, &d)
	case TypeTokenReuse:
		return m.tokenReuse(ctx, rules, ev, &d)
	case TypeAPIKeyUsed:
		return m.apiKeyUsed(ctx, rules, ev, &d)
	}
	return nil
}

// account is who a failed login was for: the user id when the account
// exists, else the email tried (hashed: the key must not hold it).
func account(d *AuthData) string {
	if d.ActorID != "" {
		return "u:" + d.ActorID
	}
	if e := d.Details["email"]; e != "" {
		return "e:" + short(strings.ToLower(e))
	}
	return ""
}

func short(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}

func (m *Monitor) failedLogin(ctx context.Context, rules Rules, ev *events.Event, d *AuthData) error {
	now := m.now()
	acct := account(d)
	ip := addr(d.IP)
	if r := rules[RulePasswordGuessing]; !r.Off {
		if ip.IsValid() {
			n, err := m.Store.Window(ctx, "pg:ip:"+ip.String(), ev.ID, now, r.Window)
			if err != nil {
				return err
			}
			if n >= int64(r.Threshold) {
				if err := m.fire(ctx, r, RulePasswordGuessing, "ip:"+ip.String(), ev, Finding{IP: ip.String(), UserID: d.ActorID, Scope: "address", Count: n}, ip, ""); err != nil {
					return err
				}
			}
		}
		if acct != "" {
			n, err := m.Store.Window(ctx, "pg:acct:"+acct, ev.ID, now, r.Window)
			if err != nil {
				return err
			}
			if n >= int64(r.AccountThreshold) {
				if err := m.fire(ctx, r, RulePasswordGuessing, "acct:"+acct, ev, Finding{IP: ip.String(), UserID: d.ActorID, Scope: "account", Count: n}, netip.Addr{}, d.ActorID); err != nil {
					return err
				}
			}
		}
	}
	if r := rules[RuleCredentialStuffing]; !r.Off && ip.IsValid() && acct != "" {
		n, err := m.Store.Window(ctx, "cs:ip:"+ip.String(), acct, now, r.Window)
		if err != nil {
			return err
		}
		if n >= int64(r.Threshold) {
			if err := m.fire(ctx, r, RuleCredentialStuffing, "ip:"+ip.String(), ev, Finding{IP: ip.String(), Scope: "address", Count: n}, ip, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Monitor) succeededLogin(ctx context.Context, rules Rules, ev *events.Event, d *AuthData) error {
	user := d.ActorID
	if user == "" {
		user = d.SubjectID
	}
	if user == "" {
		return nil
	}
	now := m.now()
	if r := rules[RuleNewDevice]; !r.Off && d.UserAgent != "" {
		known, others, err := m.Store.Seen(ctx, "dev:"+user, short(d.UserAgent), now, r.Window)
		if err != nil {
			return err
		}
		if !known && others { // a user's first login is no news
			if err := m.emit(ctx, r, RuleNewDevice, ev, Finding{IP: d.IP, UserID: user, Scope: "user", Count: 1}, netip.Addr{}, user); err != nil {
				return err
			}
		}
	}
	if r := rules[RuleNewNetwork]; !r.Off {
		if nw, ok := network(d.IP); ok {
			known, others, err := m.Store.Seen(ctx, "net:"+user, nw, now, r.Window)
			if err != nil {
				return err
			}
			if !known && others {
				if err := m.emit(ctx, r, RuleNewNetwork, ev, Finding{IP: d.IP, UserID: user, Scope: "user", Count: 1}, netip.Addr{}, user); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (m *Monitor) tokenReuse(ctx context.Context, rules Rules, ev *events.Event, d *AuthData) error {
	r := rules[RuleRefreshTokenReuse]
	if r.Off {
		return nil
	}
	// One finding per session, however often the event comes again.
	first, err := m.Store.Once(ctx, "rtr:"+ev.ID, m.now(), 24*time.Hour)
	if err != nil || !first {
		return err
	}
	f := Finding{IP: d.IP, UserID: d.ActorID, Scope: "user", Count: 1}
	var acted []string
	if _, ok := r.action(ActionRevokeFamily); ok && m.Actor != nil && d.SubjectID != "" {
		if err := m.Actor.RevokeFamily(ctx, d.ActorID, d.SubjectID); err != nil {
			m.log().Warn("security monitor: revoke_family failed", zap.String("session_id", d.SubjectID), zap.Error(err))
		} else {
			acted = append(acted, ActionRevokeFamily)
			ActionsTotal.WithLabelValues(ActionRevokeFamily).Inc()
		}
	}
	return m.emitActed(ctx, r, RuleRefreshTokenReuse, ev, f, acted)
}

func (m *Monitor) apiKeyUsed(ctx context.Context, rules Rules, ev *events.Event, d *AuthData) error {
	r := rules[RuleAPIKeyNewNetwork]
	key := ev.Subject
	if key == "" {
		key = d.SubjectID
	}
	if r.Off || key == "" {
		return nil
	}
	nw, ok := network(d.IP)
	if !ok {
		return nil
	}
	known, others, err := m.Store.Seen(ctx, "key:"+key, nw, m.now(), r.Window)
	if err != nil || known || !others {
		return err
	}
	return m.emit(ctx, r, RuleAPIKeyNewNetwork, ev, Finding{IP: d.IP, APIKeyID: key, Scope: "api_key", Count: 1}, netip.Addr{}, "")
}

// fire emits a counting rule's finding once per subject and window (the
// first instance to mark it), with the rule's actions.
func (m *Monitor) fire(ctx context.Context, r Rule, rule, subject string, ev *events.Event, f Finding, ip netip.Addr, user string) error {
	first, err := m.Store.Once(ctx, "fired:"+rule+":"+subject, m.now(), r.Window)
	if err != nil || !first {
		return err
	}
	return m.emit(ctx, r, rule, ev, f, ip, user)
}

// emit acts (block_ip on ip when set, lock_account on user when set) and
// publishes the finding.
func (m *Monitor) emit(ctx context.Context, r Rule, rule string, ev *events.Event, f Finding, ip netip.Addr, user string) error {
	var acted []string
	if a, ok := r.action(ActionBlockIP); ok && ip.IsValid() && m.Blocklist != nil {
		until, err := m.Blocklist.Block(ctx, ip, a.Duration)
		switch {
		case errors.Is(err, ErrNotBlockable):
			m.log().Info("security monitor: address not blocked (loopback)", zap.String("rule", rule), zap.String("ip", ip.String()))
		case err != nil:
			m.log().Warn("security monitor: block_ip not shared", zap.String("ip", ip.String()), zap.Error(err))
			fallthrough // blocked here all the same
		default:
			acted = append(acted, ActionBlockIP)
			f.Until = &until
			ActionsTotal.WithLabelValues(ActionBlockIP).Inc()
		}
	}
	if _, ok := r.action(ActionLockAccount); ok && user != "" {
		if m.Actor == nil {
			m.log().Warn("security monitor: lock_account without an auth service", zap.String("user_id", user))
		} else if err := m.Actor.LockAccount(ctx, user, rule); err != nil {
			m.log().Warn("security monitor: lock_account failed", zap.String("user_id", user), zap.Error(err))
		} else {
			acted = append(acted, ActionLockAccount)
			ActionsTotal.WithLabelValues(ActionLockAccount).Inc()
		}
	}
	return m.emitActed(ctx, r, rule, ev, f, acted)
}

// emitActed publishes the finding of rule about ev, with what was done, in
// ev's company (the session's for a token reuse, the key's for an API
// key). Login events carry none: a finding about a known account goes to
// each company the user is a member of, any other to the platform's "_",
// which no company's stream or webhook sees.
func (m *Monitor) emitActed(ctx context.Context, r Rule, rule string, ev *events.Event, f Finding, acted []string) error {
	f.Rule, f.Severity = rule, r.Severity
	f.Window = r.Window.String()
	if r.Window == 0 {
		f.Window = "0s"
	}
	f.Action = strings.Join(acted, ",")
	if f.IP != "" && f.Scope == "address" {
		m.flag(f.IP, rule, r.Window)
	}
	companies := []string{ev.CompanyID}
	if ev.CompanyID == "" && f.UserID != "" && m.Actor != nil {
		if cs, err := m.Actor.UserCompanies(ctx, f.UserID); err != nil {
			m.log().Warn("security monitor: the account's companies are unknown; the finding goes to the platform", zap.String("user_id", f.UserID), zap.Error(err))
		} else if len(cs) > 0 {
			companies = cs[:min(len(cs), maxFindingCompanies)]
		}
	}
	outs := make([]*events.Event, 0, len(companies))
	for _, c := range companies {
		out, err := events.New(m.Source, "erp.security."+rule, c, f.UserID, f)
		if err != nil {
			return err
		}
		outs = append(outs, out)
	}
	EventsTotal.WithLabelValues(rule, r.Severity).Inc()
	m.log().Warn("security event", zap.String("rule", rule), zap.String("severity", r.Severity),
		zap.String("ip", f.IP), zap.String("user_id", f.UserID), zap.Int64("count", f.Count), zap.String("action", f.Action))
	for _, out := range outs {
		if m.Publisher != nil && !m.Publisher.Publish(out) {
			m.log().Warn("security event dropped: publish queue full", zap.String("rule", rule))
		}
	}
	return nil
}

func addr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// network is ip's /24 (IPv4) or /64 (IPv6).
func network(ip string) (string, bool) {
	a := addr(ip)
	if !a.IsValid() {
		return "", false
	}
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return "", false
	}
	return p.String(), true
}
