package authsvc_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/testenv"
)

func TestAuditEventType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		store.EventLoginSucceeded:        "erp.auth.login.succeeded",
		store.EventLoginFailed:           "erp.auth.login.failed",
		store.EventSessionRevoked:        "erp.auth.session.revoked",
		store.EventLogout:                "erp.auth.session.revoked",
		store.EventLogoutAll:             "erp.auth.session.revoked",
		store.EventRefreshReuse:          "erp.auth.token.reuse_detected",
		store.EventMFAVerified:           "erp.auth.mfa.verified",
		store.EventMFARecoveryUsed:       "erp.auth.mfa.recovery_code_used",
		store.EventCompanyCreated:        "erp.admin.company.created",
		store.EventMembershipRemoved:     "erp.admin.membership.removed",
		store.EventAPIKeyRotated:         "erp.auth.api_key.rotated",
		store.EventLoginTokenReplayed:    "erp.auth.login_token.replayed",
		store.EventEdgeCredentialRefused: "erp.auth.edge.credential_refused",
		"odd type..x*":                   "erp.auth.odd_type._.x_",
	} {
		got := authsvc.AuditEventType(in)
		if got != want {
			t.Errorf("AuditEventType(%q) = %q, want %q", in, got, want)
		}
		if !events.ValidType(got) {
			t.Errorf("AuditEventType(%q) = %q is not a valid event type", in, got)
		}
	}
}

func sampleRecord() store.Event {
	return store.Event{
		Seq: 42, Time: time.Date(2026, 12, 2, 7, 0, 0, 123456000, time.UTC), Type: store.EventLogoutAll,
		ActorID: "u-1", CompanyID: "acme", SubjectID: "sess-1", IP: "192.0.2.7", UserAgent: "curl/8",
		RequestID: "req-1", Details: map[string]string{"sessions": "3"},
		Hash: []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04},
	}
}

func TestAuditCloudEvent(t *testing.T) {
	t.Parallel()
	r := sampleRecord()
	ev, err := authsvc.AuditCloudEvent(r)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "audit-42-deadbeef0102" || ev.Source != "/erpgate/authsvc" || ev.Type != "erp.auth.session.revoked" ||
		ev.Subject != "sess-1" || ev.CompanyID != "acme" || !ev.Time.Equal(r.Time) || ev.SpecVersion != "1.0" ||
		ev.DataContentType != "application/json" {
		t.Fatalf("event %+v", ev)
	}
	var data map[string]any
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"actor_id": "u-1", "subject_id": "sess-1", "ip": "192.0.2.7", "user_agent": "curl/8",
		"request_id": "req-1", "reason": "logout.all", "details": map[string]any{"sessions": "3"}}
	if len(data) != len(want) {
		t.Fatalf("data %v, want %v", data, want)
	}
	for k, v := range want {
		if b1, _ := json.Marshal(v); string(b1) != string(mustJSON(t, data[k])) {
			t.Fatalf("data.%s = %v, want %v", k, data[k], v)
		}
	}
	// Stable: the same record, the same event; another record (same seq
	// after a store reset), another id.
	again, _ := authsvc.AuditCloudEvent(r)
	if again.ID != ev.ID || string(again.Data) != string(ev.Data) {
		t.Fatal("the same record gave another event")
	}
	r.Hash = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	if other, _ := authsvc.AuditCloudEvent(r); other.ID == ev.ID {
		t.Fatal("two records with one id")
	}
	// Not a revocation: no reason, details empty object rather than null.
	r = sampleRecord()
	r.Type, r.Details, r.CompanyID = store.EventLoginSucceeded, nil, ""
	ev, err = authsvc.AuditCloudEvent(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ev.Data), "reason") || !strings.Contains(string(ev.Data), `"details":{}`) || ev.CompanyID != "" {
		t.Fatalf("login event data %s company %q", ev.Data, ev.CompanyID)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder is an event engine that fails while down is set.
type recorder struct {
	mu    sync.Mutex
	down  bool
	fails int
	got   []*events.Event
	ids   map[string]int
}

func (r *recorder) PublishSync(_ context.Context, ev *events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		r.fails++
		return errors.New("nats: no responders")
	}
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	r.ids[ev.ID]++
	r.got = append(r.got, ev)
	return nil
}

func (r *recorder) set(down bool) { r.mu.Lock(); r.down = down; r.mu.Unlock() }

// of waits (at most 10s) for an event of typ matching ok.
func (r *recorder) of(t *testing.T, typ string, ok func(*events.Event, map[string]any) bool) *events.Event {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		for _, ev := range r.got {
			var data map[string]any
			if ev.Type == typ && json.Unmarshal(ev.Data, &data) == nil && ok(ev, data) {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
	}
	t.Fatalf("no %s event within 10s", typ)
	return nil
}

func TestEventRelay(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var mu sync.Mutex
	var engine authsvc.EventPublisher // nil: the engine has not started
	e := newEnv(t, envOpts{events: func() authsvc.EventPublisher { mu.Lock(); defer mu.Unlock(); return engine }})

	// Before the engine starts, the records wait.
	sel := e.session(t, "alice@acme.test", "acme")
	time.Sleep(300 * time.Millisecond)
	if n, _ := e.svc.Store().EventBacklog(context.Background()); n == 0 {
		t.Fatal("the outbox is empty although no engine published it")
	}
	mu.Lock()
	engine = rec
	mu.Unlock()
	u, err := e.svc.Store().GetUserByEmail(context.Background(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	userID := u.ID
	login := rec.of(t, "erp.auth.login.succeeded", func(ev *events.Event, d map[string]any) bool { return d["actor_id"] == userID })
	if login.CompanyID != "" || login.Source != events.SourceAuthsvc || !strings.HasPrefix(login.ID, "audit-") {
		t.Fatalf("login event %+v", login)
	}
	rec.of(t, "erp.auth.company.selected", func(ev *events.Event, d map[string]any) bool {
		return ev.CompanyID == "acme" && d["actor_id"] == userID
	})
	rec.of(t, "erp.admin.company.created", func(ev *events.Event, d map[string]any) bool { return ev.Subject == "acme" })

	// NATS down: a refresh-token reuse waits in the outbox, and arrives
	// once NATS is back; nothing is lost.
	rec.set(true)
	if r := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": sel.str("refresh_token")}}); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Raw)
	}
	if r := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": sel.str("refresh_token")}}); r.Status != 401 {
		t.Fatalf("reuse: %d %s", r.Status, r.Raw)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec.mu.Lock()
		fails := rec.fails
		rec.mu.Unlock()
		if fails >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay did not retry while NATS was down")
		}
	}
	rec.set(false)
	reuse := rec.of(t, "erp.auth.token.reuse_detected", func(ev *events.Event, d map[string]any) bool { return ev.CompanyID == "acme" })
	if strings.Contains(string(reuse.Data), sel.str("refresh_token")) || strings.Contains(string(reuse.Data), authsvc.DemoPassword) {
		t.Fatalf("a secret in the event: %s", reuse.Data)
	}
	rec.of(t, "erp.auth.token.refreshed", func(ev *events.Event, d map[string]any) bool { return ev.CompanyID == "acme" })

	// Every record of the trail is published, each under its own id.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := e.svc.Store().EventBacklog(context.Background()); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the outbox did not drain")
		}
	}
	trail, total, err := e.svc.Store().ListAudit(context.Background(), store.AuditFilter{}, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if int64(len(rec.ids)) != total {
		t.Fatalf("%d distinct events published for %d audit records", len(rec.ids), total)
	}
	for _, r := range trail {
		if rec.ids[authsvc.AuditEventID(r)] == 0 {
			t.Fatalf("record %d (%s) was not published", r.Seq, r.Type)
		}
	}
	for _, ev := range rec.got {
		for _, secret := range []string{authsvc.DemoPassword, sel.str("refresh_token"), sel.str("access_token")} {
			if secret != "" && strings.Contains(string(ev.Data), secret) {
				t.Fatalf("event %s holds a secret", ev.Type)
			}
		}
	}
}

func BenchmarkAuditCloudEvent(b *testing.B) {
	r := sampleRecord()
	b.ReportAllocs()
	for b.Loop() {
		ev, err := authsvc.AuditCloudEvent(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(ev); err != nil { // as PublishSync sends it
			b.Fatal(err)
		}
	}
}

// BenchmarkEventOutbox: auth events through the outbox on Postgres and the
// external NATS. append: b.N records appended in parallel (as requests do)
// while the relay publishes them, the time ending when the outbox is empty;
// append_no_relay: the same appends with no relay (what the outbox costs
// the requests is the difference); drain: b.N records waiting (NATS was
// away), then published by one relay: its throughput.
func BenchmarkEventOutbox(b *testing.B) {
	b.Run("append", func(b *testing.B) { benchOutbox(b, "append") })
	b.Run("append_no_relay", func(b *testing.B) { benchOutbox(b, "no_relay") })
	b.Run("drain", func(b *testing.B) { benchOutbox(b, "drain") })
}

func benchOutbox(b *testing.B, mode string) {
	ctx := context.Background()
	prefix := testenv.Name() + ":"
	engine, err := events.Open(ctx, events.Config{URL: testenv.NATSURL(b), Names: events.NamesFor(prefix)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = engine.JetStream().DeleteStream(context.Background(), engine.Names().Stream)
		engine.Close()
	})
	var up atomic.Bool // NATS "reachable" for the relay
	up.Store(mode != "drain")
	o := envOpts{external: true}
	if mode != "no_relay" {
		o.events = func() authsvc.EventPublisher {
			if up.Load() {
				return engine
			}
			return nil
		}
	}
	e := newEnv(b, o)
	if err := e.svc.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	backlog := func() int64 {
		n, err := e.svc.Store().EventBacklog(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	drained := func() {
		for backlog() != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if mode == "append" {
		drained() // the demo seed's
	}
	appendAll := func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := e.svc.Record(ctx, store.Event{Type: store.EventLoginFailed, IP: "192.0.2.9", RequestID: "bench",
					Details: map[string]string{"reason": "bad_password", "email": "x@example.test"}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	before := engine.Stats().Published
	b.ReportAllocs()
	if mode == "drain" {
		appendAll()
		b.ResetTimer()
		up.Store(true)
		drained()
	} else {
		b.ResetTimer()
		appendAll()
		if mode == "append" {
			drained()
		}
	}
	b.StopTimer()
	if got := engine.Stats().Published - before; mode != "no_relay" && got < uint64(b.N) {
		b.Fatalf("%d events published for %d records", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
