package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testEngine is an event engine on the test NATS with a stream of its own,
// deleted at the end.
func testEngine(t testing.TB) *events.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := events.NamesFor(testenv.Name())
	eng, err := events.Open(ctx, events.Config{URL: testenv.NATSURL(t), Names: names, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.JetStream().DeleteStream(ctx, names.Stream)
		eng.Close()
	})
	return eng
}

// startManager is a Manager delivering from eng (cfg's zero fields
// defaulted; private targets allowed: receivers are on loopback).
func startManager(t testing.TB, eng *events.Engine, cfg Config) *Manager {
	t.Helper()
	cfg.AllowPrivate = true
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	if cfg.Backoff == nil {
		cfg.Backoff = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	}
	m := newTestManager(t, cfg)
	if err := m.Start(context.Background(), eng); err != nil {
		t.Fatal(err)
	}
	return m
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
	event  events.Event
}

// receiver is a webhook receiver: answer says the status of the n-th
// request (1-based).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int) int
}

func newReceiver(t testing.TB, answer func(n int) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev events.Event
		_ = json.Unmarshal(body, &ev)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, event: ev})
		n := len(r.got)
		r.mu.Unlock()
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(n)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("answer " + http.StatusText(status)))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) setAnswer(f func(int) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publish(t testing.TB, eng *events.Engine, company, typ string) *events.Event {
	t.Helper()
	ev, err := events.New(events.EdgeSource("test"), typ, company, "inv-1", map[string]any{"id": "inv-1", "total": 12.5})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.PublishSync(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func create(t testing.TB, m *Manager, company, url string, patterns ...string) (Endpoint, string) {
	t.Helper()
	ep, secret, err := m.Create(context.Background(), company, EndpointInput{URL: &url, Events: patterns})
	if err != nil {
		t.Fatal(err)
	}
	return ep, secret
}

func TestDeliverySigned(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	m := startManager(t, eng, Config{})
	rcv := newReceiver(t, nil)
	ep, secret := create(t, m, "acme", rcv.srv.URL+"/hook", "erp.invoices.*")
	ev := publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 5*time.Second, "the event arrives", func() bool { return len(rcv.requests()) == 1 })
	got := rcv.requests()[0]
	if got.header.Get("webhook-id") != ev.ID || got.event.ID != ev.ID || got.event.Type != "erp.invoices.created" || got.event.CompanyID != "acme" {
		t.Fatalf("delivered %s: %s", got.header.Get("webhook-id"), got.body)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Fatalf("content type %q", ct)
	}
	if err := Verify(secret, got.header, got.body, 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := independentSignature(t, secret, ev.ID, got.header.Get("webhook-timestamp"), got.body); got.header.Get("webhook-signature") != want {
		t.Fatalf("signature %q, the test's own computation %q", got.header.Get("webhook-signature"), want)
	}
	waitFor(t, 5*time.Second, "the attempt is recorded", func() bool {
		l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 10, "")
		return len(l) == 1
	})
	l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 10, "")
	if d := l[0]; d.Status != StatusSucceeded || d.Attempt != 1 || d.HTTPStatus != 200 || d.EventID != ev.ID ||
		d.EventType != ev.Type || d.Response != "answer OK" || d.NextAttempt != nil || !strings.HasPrefix(d.ID, "whd_") {
		t.Fatalf("delivery %+v", d)
	}
	if _, err := m.Deliveries(t.Context(), "globex", ep.ID, 10, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another company reads the deliveries: %v", err)
	}
}

// The receiver fails twice (500), then succeeds: three attempts, the same
// webhook-id each time, the third succeeded.
func TestDeliveryRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) Store{
		"memory":   func(*testing.T) Store { return NewMemory() },
		"postgres": func(t *testing.T) Store { return postgresStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			retriesThenSucceeds(t, mk(t))
		})
	}
}

func retriesThenSucceeds(t *testing.T, st Store) {
	eng := testEngine(t)
	m := startManager(t, eng, Config{Store: st, Backoff: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}})
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep, secret := create(t, m, "acme", rcv.srv.URL, "erp.invoices.*")
	ev := publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 10*time.Second, "three attempts recorded", func() bool {
		l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 10, "")
		return len(l) == 3
	})
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range reqs {
		if r.header.Get("webhook-id") != ev.ID || Verify(secret, r.header, r.body, time.Minute) != nil {
			t.Fatalf("request %d: id %s", i+1, r.header.Get("webhook-id"))
		}
	}
	l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 10, "")
	for i, want := range []struct {
		attempt, status int
		s               string
	}{{3, 200, StatusSucceeded}, {2, 500, StatusFailed}, {1, 500, StatusFailed}} {
		d := l[i]
		if d.Attempt != want.attempt || d.HTTPStatus != want.status || d.Status != want.s || d.EventID != ev.ID {
			t.Fatalf("delivery %d: %+v", i, d)
		}
		if (d.Status == StatusFailed) != (d.NextAttempt != nil) {
			t.Fatalf("delivery %d: next attempt %v", i, d.NextAttempt)
		}
	}
	// Succeeding again cleared the failing mark.
	waitFor(t, 5*time.Second, "failing_since cleared", func() bool {
		e, _ := m.Get(t.Context(), "acme", ep.ID)
		return e.FailingSince == nil && e.Enabled
	})
}

func TestDeliveryGivesUp(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	m := startManager(t, eng, Config{Backoff: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}})
	rcv := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	ep, _ := create(t, m, "acme", rcv.srv.URL, "erp.*")
	publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 10*time.Second, "given up", func() bool {
		l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 10, "")
		return len(l) > 0 && l[0].Status == StatusGaveUp
	})
	time.Sleep(500 * time.Millisecond) // no attempt after the last
	l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 10, "")
	if len(l) != 3 || l[0].Attempt != 3 || l[0].NextAttempt != nil || len(rcv.requests()) != 3 {
		t.Fatalf("%d attempts, %d requests: %+v", len(l), len(rcv.requests()), l[0])
	}
	e, _ := m.Get(t.Context(), "acme", ep.ID)
	if e.FailingSince == nil || !e.Enabled {
		t.Fatalf("endpoint %+v", e)
	}
}

// lastEvent is the newest event of company and typ in the stream.
func lastEvent(t testing.TB, eng *events.Engine, company, typ string) (*events.Event, bool) {
	t.Helper()
	st, err := eng.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(t.Context(), eng.Names().Subject(company, typ))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var ev events.Event
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return &ev, true
}

// 410 disables the endpoint and says so in an event; enabling it again
// delivers what it missed.
func TestDeliveryGoneDisablesAndReenableResumes(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	m := startManager(t, eng, Config{})
	rcv := newReceiver(t, func(int) int { return http.StatusGone })
	ep, _ := create(t, m, "acme", rcv.srv.URL, "erp.invoices.*")
	first := publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 5*time.Second, "disabled", func() bool {
		e, _ := m.Get(t.Context(), "acme", ep.ID)
		return !e.Enabled
	})
	e, _ := m.Get(t.Context(), "acme", ep.ID)
	if e.DisabledReason != ReasonGone {
		t.Fatalf("endpoint %+v", e)
	}
	var disabled *events.Event
	waitFor(t, 5*time.Second, "erp.webhooks.endpoint_disabled published", func() bool {
		var ok bool
		disabled, ok = lastEvent(t, eng, "acme", TypeEndpointDisabled)
		return ok
	})
	var data struct{ EndpointID, Reason string }
	_ = json.Unmarshal(disabled.Data, &struct {
		EndpointID *string `json:"endpoint_id"`
		Reason     *string `json:"reason"`
	}{&data.EndpointID, &data.Reason})
	if data.EndpointID != ep.ID || data.Reason != ReasonGone || disabled.Subject != ep.ID || disabled.CompanyID != "acme" {
		t.Fatalf("event %+v %s", disabled, disabled.Data)
	}
	second := publish(t, eng, "acme", "erp.invoices.updated")
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("%d requests to a disabled endpoint", n)
	}
	rcv.setAnswer(func(int) int { return http.StatusNoContent })
	on := true
	if e, err := m.Update(t.Context(), "acme", ep.ID, EndpointInput{Enabled: &on}); err != nil || !e.Enabled || e.DisabledReason != "" {
		t.Fatalf("re-enable: %+v %v", e, err)
	}
	waitFor(t, 10*time.Second, "both events delivered after re-enabling", func() bool {
		var ids []string
		for _, r := range rcv.requests()[1:] {
			ids = append(ids, r.event.ID)
		}
		return slices.Contains(ids, first.ID) && slices.Contains(ids, second.ID)
	})
}

func TestDeliveryFailingDisables(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	m := startManager(t, eng, Config{DisableAfter: 300 * time.Millisecond,
		Backoff: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond,
			100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}})
	rcv := newReceiver(t, func(int) int { return http.StatusInternalServerError })
	ep, _ := create(t, m, "acme", rcv.srv.URL, "erp.invoices.*")
	publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 10*time.Second, "disabled as failing", func() bool {
		e, _ := m.Get(t.Context(), "acme", ep.ID)
		return !e.Enabled && e.DisabledReason == ReasonFailing
	})
	waitFor(t, 5*time.Second, "erp.webhooks.endpoint_disabled published", func() bool {
		ev, ok := lastEvent(t, eng, "acme", TypeEndpointDisabled)
		return ok && strings.Contains(string(ev.Data), `"reason":"failing"`) && strings.Contains(string(ev.Data), `"failing_since"`)
	})
	n := len(rcv.requests())
	time.Sleep(500 * time.Millisecond)
	if len(rcv.requests()) != n {
		t.Fatal("attempts go on after the endpoint was disabled")
	}
}

// Another company's events never reach the endpoint, nor types its
// patterns don't name.
func TestDeliveryCompanyAndTypeScoped(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	m := startManager(t, eng, Config{})
	rcv := newReceiver(t, nil)
	create(t, m, "acme", rcv.srv.URL, "erp.invoices.*")
	other := newReceiver(t, nil)
	create(t, m, "globex", other.srv.URL, "erp.*")
	var foreign []string
	for range 3 {
		foreign = append(foreign, publish(t, eng, "globex", "erp.invoices.created").ID)
	}
	publish(t, eng, "acme", "erp.orders.created")
	mine := publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 5*time.Second, "acme's invoice event", func() bool { return len(rcv.requests()) >= 1 })
	waitFor(t, 5*time.Second, "globex's events at globex", func() bool { return len(other.requests()) == 3 })
	time.Sleep(300 * time.Millisecond)
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].event.ID != mine.ID {
		var got []string
		for _, r := range reqs {
			got = append(got, r.event.Type+"/"+r.event.CompanyID)
		}
		t.Fatalf("acme's endpoint got %v", got)
	}
	for _, r := range other.requests() {
		if !slices.Contains(foreign, r.event.ID) {
			t.Fatalf("globex's endpoint got %s of %s", r.event.Type, r.event.CompanyID)
		}
	}
}

func TestDeliveryRotation(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	var skew atomic.Int64
	m := startManager(t, eng, Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	rcv := newReceiver(t, nil)
	ep, old := create(t, m, "acme", rcv.srv.URL, "erp.*")
	fresh, err := m.RotateSecret(t.Context(), "acme", ep.ID)
	if err != nil || fresh == old || !strings.HasPrefix(fresh, "whsec_") {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := m.RotateSecret(t.Context(), "globex", ep.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another company rotates: %v", err)
	}
	ev := publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 5*time.Second, "delivered", func() bool { return len(rcv.requests()) == 1 })
	r := rcv.requests()[0]
	sigs := strings.Fields(r.header.Get("webhook-signature"))
	ts := r.header.Get("webhook-timestamp")
	if len(sigs) != 2 || sigs[0] != independentSignature(t, fresh, ev.ID, ts, r.body) || sigs[1] != independentSignature(t, old, ev.ID, ts, r.body) {
		t.Fatalf("signatures %q", sigs)
	}
	for _, s := range []string{fresh, old} {
		if err := Verify(s, r.header, r.body, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// After the overlap only the new secret signs.
	skew.Store(int64(RotationOverlap + time.Minute))
	d, err := m.Test(t.Context(), "acme", ep.ID)
	if err != nil || d.Status != StatusSucceeded {
		t.Fatalf("test: %+v %v", d, err)
	}
	last := rcv.requests()[1]
	if sigs := strings.Fields(last.header.Get("webhook-signature")); len(sigs) != 1 {
		t.Fatalf("after the overlap: %q", sigs)
	}
	if err := verifyAt(old, last.header, last.body, 0, time.Now()); !errors.Is(err, ErrNoValidSignature) {
		t.Fatalf("the old secret after the overlap: %v", err)
	}
}

func TestTestAndRetry(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) Store{
		"memory":   func(*testing.T) Store { return NewMemory() },
		"postgres": func(t *testing.T) Store { return postgresStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testAndRetry(t, mk(t))
		})
	}
}

func testAndRetry(t *testing.T, st Store) {
	eng := testEngine(t)
	m := startManager(t, eng, Config{Store: st})
	rcv := newReceiver(t, nil)
	ep, secret := create(t, m, "acme", rcv.srv.URL, "erp.invoices.*")
	ping, err := m.Test(t.Context(), "acme", ep.ID)
	if err != nil || ping.Status != StatusSucceeded || ping.EventType != TypePing || ping.Attempt != 1 {
		t.Fatalf("test: %+v %v", ping, err)
	}
	r := rcv.requests()[0]
	if r.event.Type != TypePing || r.event.CompanyID != "acme" || Verify(secret, r.header, r.body, time.Minute) != nil {
		t.Fatalf("ping %s", r.body)
	}
	again, err := m.Retry(t.Context(), "acme", ep.ID, ping.ID)
	if err != nil || again.Attempt != 2 || again.EventID != ping.EventID || rcv.requests()[1].event.ID != ping.EventID {
		t.Fatalf("retried ping: %+v %v", again, err)
	}
	ev := publish(t, eng, "acme", "erp.invoices.created")
	var first Delivery
	waitFor(t, 5*time.Second, "delivered", func() bool {
		l, _ := m.Deliveries(t.Context(), "acme", ep.ID, 1, "")
		if len(l) == 1 && l[0].EventID == ev.ID {
			first = l[0]
			return true
		}
		return false
	})
	retried := counterValue(t, StatusSucceeded, "retry")
	d, err := m.Retry(t.Context(), "acme", ep.ID, first.ID)
	if counterValue(t, StatusSucceeded, "retry") < retried+1 {
		t.Error("the retry was not counted")
	}
	if err != nil || d.Attempt != 2 || d.EventID != ev.ID || d.Status != StatusSucceeded || d.ID == first.ID {
		t.Fatalf("retry: %+v %v", d, err)
	}
	reqs := rcv.requests()
	lastReq := reqs[len(reqs)-1]
	if lastReq.event.ID != ev.ID || Verify(secret, lastReq.header, lastReq.body, time.Minute) != nil {
		t.Fatalf("retried event %s", lastReq.body)
	}
	if string(lastReq.body) != string(reqs[len(reqs)-2].body) {
		t.Fatal("the retry's body differs from the first delivery's")
	}
	for name, call := range map[string]func() error{
		"another company":  func() error { _, err := m.Retry(t.Context(), "globex", ep.ID, first.ID); return err },
		"unknown delivery": func() error { _, err := m.Retry(t.Context(), "acme", ep.ID, newID("whd_")); return err },
		"malformed id":     func() error { _, err := m.Retry(t.Context(), "acme", ep.ID, "whd_x"); return err },
		"test elsewhere":   func() error { _, err := m.Test(t.Context(), "globex", ep.ID); return err },
	} {
		if err := call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The event left the stream: Retry says so.
	stream, _ := eng.Stream(t.Context())
	if err := stream.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Retry(t.Context(), "acme", ep.ID, first.ID); !errors.Is(err, ErrEventGone) {
		t.Fatalf("retry of a purged event: %v", err)
	}
	// Paging: newest first, "before" continues.
	all, _ := m.Deliveries(t.Context(), "acme", ep.ID, 100, "")
	page1, _ := m.Deliveries(t.Context(), "acme", ep.ID, 2, "")
	page2, _ := m.Deliveries(t.Context(), "acme", ep.ID, 2, page1[1].ID)
	if len(all) != 4 || page1[0].ID != all[0].ID || page2[0].ID != all[2].ID || page2[1].ID != all[3].ID {
		t.Fatalf("paging: %d", len(all))
	}
	var ve *ValidationError
	if _, err := m.Deliveries(t.Context(), "acme", ep.ID, 101, ""); !errors.As(err, &ve) {
		t.Errorf("limit 101: %v", err)
	}
	if _, err := m.Deliveries(t.Context(), "acme", ep.ID, 10, "nope"); !errors.As(err, &ve) {
		t.Errorf("bad cursor: %v", err)
	}
}

// embeddedEngine is an engine on an in-process nats-server of the
// module's version (several filter subjects per consumer, filter updates).
func embeddedEngine(t testing.TB) *events.Engine {
	t.Helper()
	eng, err := events.Open(context.Background(), events.Config{StoreDir: t.TempDir(), Names: events.NamesFor(testenv.Name())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	return eng
}

func TestDeliveryOverlappingPatternsAndUpdate(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(testing.TB) *events.Engine{"external": testEngine, "embedded": embeddedEngine} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			overlappingPatternsAndUpdate(t, mk(t))
		})
	}
}

func overlappingPatternsAndUpdate(t *testing.T, eng *events.Engine) {
	m := startManager(t, eng, Config{})
	rcv := newReceiver(t, nil)
	ep, _ := create(t, m, "acme", rcv.srv.URL, "erp.invoices.*", "erp.*.created")
	publish(t, eng, "acme", "erp.invoices.created")
	publish(t, eng, "acme", "erp.orders.created")
	publish(t, eng, "acme", "erp.orders.deleted")
	publish(t, eng, "acme", "erp.invoices.deleted")
	waitFor(t, 5*time.Second, "three events", func() bool { return len(rcv.requests()) >= 3 })
	time.Sleep(300 * time.Millisecond)
	var types []string
	for _, r := range rcv.requests() {
		types = append(types, r.event.Type)
	}
	if !slices.Equal(types, []string{"erp.invoices.created", "erp.orders.created", "erp.invoices.deleted"}) {
		t.Fatalf("delivered %v", types)
	}
	// New patterns apply to the next events.
	if _, err := m.Update(t.Context(), "acme", ep.ID, EndpointInput{Events: []string{"erp.orders.*"}}); err != nil {
		t.Fatal(err)
	}
	publish(t, eng, "acme", "erp.invoices.created")
	last := publish(t, eng, "acme", "erp.orders.updated")
	waitFor(t, 5*time.Second, "the order event", func() bool {
		r := rcv.requests()
		return r[len(r)-1].event.ID == last.ID
	})
	if n := len(rcv.requests()); n != 4 {
		t.Fatalf("%d requests: the invoice event came through after the update", n)
	}
	// Two disjoint patterns: two filters where the server takes several.
	if _, err := m.Update(t.Context(), "acme", ep.ID, EndpointInput{Events: []string{"erp.orders.*", "erp.invoices.created"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := eng.JetStream().Consumer(t.Context(), eng.Names().Stream, ConsumerName(ep.ID))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	if w := m.workers(); w.multiFilter() && len(cfg.FilterSubjects) != 2 || !w.multiFilter() && cfg.FilterSubject != eng.Names().CompanyFilter("acme", "*") {
		t.Fatalf("server %s: filters %q %q", eng.Conn().ConnectedServerVersion(), cfg.FilterSubject, cfg.FilterSubjects)
	}
	publish(t, eng, "acme", "erp.invoices.deleted")
	publish(t, eng, "acme", "erp.invoices.created")
	last = publish(t, eng, "acme", "erp.orders.deleted")
	waitFor(t, 5*time.Second, "the order event", func() bool {
		r := rcv.requests()
		return r[len(r)-1].event.ID == last.ID
	})
	if r := rcv.requests(); len(r) != 6 || r[4].event.Type != "erp.invoices.created" {
		t.Fatalf("%d requests", len(r))
	}
	// Delete removes the durable consumer.
	if err := m.Delete(t.Context(), "acme", ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.JetStream().Consumer(t.Context(), eng.Names().Stream, ConsumerName(ep.ID)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer after delete: %v", err)
	}
	if _, err := m.Get(t.Context(), "acme", ep.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

// Two instances (own NATS connections, one store) share an endpoint's
// consumer: every event is delivered, none twice.
func TestDeliverySharedByInstances(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	eng2, err := events.Open(t.Context(), events.Config{URL: testenv.NATSURL(t), Names: eng.Names(), MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng2.Close)
	st := NewMemory()
	m1 := startManager(t, eng, Config{Store: st})
	m2 := startManager(t, eng2, Config{Store: st})
	rcv := newReceiver(t, nil)
	ep, _ := create(t, m1, "acme", rcv.srv.URL, "erp.*")
	waitFor(t, 5*time.Second, "the second instance subscribes", func() bool {
		w := m2.workers()
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.subs[ep.ID] != nil
	})
	var ids []string
	for range 30 {
		ids = append(ids, publish(t, eng, "acme", "erp.invoices.created").ID)
	}
	waitFor(t, 10*time.Second, "30 events", func() bool { return len(rcv.requests()) >= 30 })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range rcv.requests() {
		seen[r.event.ID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("event %s delivered %d times", id, seen[id])
		}
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	n := events.NamesFor("p")
	for _, c := range []struct {
		patterns []string
		want     []string
	}{
		{[]string{"erp.invoices.*"}, []string{"p.ev.acme.erp.invoices.>"}},
		{[]string{"erp.invoices.*", "erp.*"}, []string{"p.ev.acme.erp.>"}},
		{[]string{"erp.invoices.created", "erp.invoices.*"}, []string{"p.ev.acme.erp.invoices.>"}},
		{[]string{"erp.invoices.created", "erp.orders.created"}, []string{"p.ev.acme.erp.invoices.created", "p.ev.acme.erp.orders.created"}},
		{[]string{"erp.invoices.*", "erp.*.created"}, []string{"p.ev.acme.>"}},
		{[]string{"*", "erp.auth.*"}, []string{"p.ev.acme.>"}},
		{[]string{"erp.*.created", "erp.*.deleted"}, []string{"p.ev.acme.erp.*.created", "p.ev.acme.erp.*.deleted"}},
	} {
		if got := filters(n, "acme", c.patterns); !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.patterns, got, c.want)
		}
	}
}

func TestRetryNeedsTheEngine(t *testing.T) {
	t.Parallel()
	st := NewMemory()
	m := newTestManager(t, Config{Store: st, AllowPrivate: true})
	ep, _ := create(t, m, "acme", "http://127.0.0.1:9/x", "erp.*")
	d := DeliveryRecord{Delivery: Delivery{ID: newID("whd_"), EndpointID: ep.ID, EventID: "e1", EventType: "erp.x", Status: StatusFailed,
		At: time.Now()}, CompanyID: "acme", StreamSeq: 7}
	if _, err := st.AddDelivery(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Retry(t.Context(), "acme", ep.ID, d.ID); !errors.Is(err, ErrNotReady) {
		t.Fatalf("retry without an engine: %v", err)
	}
}

func counterValue(t testing.TB, labels ...string) float64 {
	var m dto.Metric
	if err := metricDeliveries.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A consumer deleted under the workers (by an operator, or a stream made
// again) is made again by the next resync, and deliveries go on.
func TestDeliveryConsumerMadeAgain(t *testing.T) {
	t.Parallel()
	eng := embeddedEngine(t)
	m := startManager(t, eng, Config{Resync: 200 * time.Millisecond})
	rcv := newReceiver(t, nil)
	ep, _ := create(t, m, "acme", rcv.srv.URL, "erp.*")
	publish(t, eng, "acme", "erp.invoices.created")
	waitFor(t, 5*time.Second, "first event", func() bool { return len(rcv.requests()) == 1 })
	if err := eng.JetStream().DeleteConsumer(t.Context(), eng.Names().Stream, ConsumerName(ep.ID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the consumer made again", func() bool {
		_, err := eng.JetStream().Consumer(t.Context(), eng.Names().Stream, ConsumerName(ep.ID))
		return err == nil
	})
	ev := publish(t, eng, "acme", "erp.invoices.updated")
	waitFor(t, 10*time.Second, "the event after the consumer came back", func() bool {
		r := rcv.requests()
		return r[len(r)-1].event.ID == ev.ID
	})
}
