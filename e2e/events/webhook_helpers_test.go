package events

// The webhook_* files: the webhook API (erp_webhooks) and deliveries to
// real receivers, signed per Standard Webhooks, retried, isolated per
// company. Their helpers start with wh.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// whStack is one gateway on Caddyfile.example with its own event stream on
// the shared NATS (its own key prefix, deleted at the end), memory stores,
// and the webhook knobs given.
type whStack struct {
	*stacktest.Instance
	names events.Names
	nats  string
}

// whStart starts the stack; allowPrivate sets ERP_WEBHOOK_ALLOW_PRIVATE=1
// (the receivers are on loopback), backoff ERP_WEBHOOK_BACKOFF.
func whStart(t *testing.T, allowPrivate bool, backoff string) *whStack {
	t.Helper()
	return whStartEnv(t, allowPrivate, backoff, nil)
}

// whStartEnv is whStart with more environment (ERP_POSTGRES_URL, …).
func whStartEnv(t *testing.T, allowPrivate bool, backoff string, extra map[string]string) *whStack {
	t.Helper()
	natsURL := testenv.NATSURL(t)
	prefix := testenv.Name() + ":"
	names := events.NamesFor(prefix)
	env := map[string]string{"ERP_NATS_URL": natsURL, "ERP_KEY_PREFIX": prefix, "ERP_WEBHOOK_BACKOFF": backoff}
	for k, v := range extra {
		env[k] = v
	}
	if allowPrivate {
		env["ERP_WEBHOOK_ALLOW_PRIVATE"] = "1"
	}
	t.Cleanup(func() { whDeleteStream(t, natsURL, names.Stream) })
	in := stacktest.Start(t, stacktest.Options{Env: env})
	return &whStack{Instance: in, names: names, nats: natsURL}
}

func whDeleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && err != jetstream.ErrStreamNotFound {
		t.Logf("cleanup: delete stream %s: %v", stream, err)
	}
}

// whPublish publishes one event into the stack's stream as the edge would
// (through internal/events' engine on the same NATS) and returns it.
func (s *whStack) whPublish(t *testing.T, company, typ, subject string, data any) *events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng, err := events.Open(ctx, events.Config{URL: s.nats, Names: s.names})
	if err != nil {
		t.Fatalf("events engine: %v", err)
	}
	defer eng.Close()
	ev, err := events.New("/erpgate/e2e", typ, company, subject, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.PublishSync(ctx, ev); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ev
}

// whCreateInvoice creates an invoice through the edge (POST /api/v2/invoices,
// the demo backend) as token's company and returns its id: the edge
// publishes erp.invoices.created.
func (s *whStack) whCreateInvoice(t *testing.T, token, customer string) string {
	t.Helper()
	r := httpt.Do(t, "POST", s.URL+"/api/v2/invoices", []byte(`{"customer_id":"`+customer+`","total":{"amount":"12.50","currency":"EUR"}}`), demoauth.Bearer(token))
	var inv struct {
		ID string `json:"id"`
	}
	if r.StatusCode != http.StatusCreated || json.Unmarshal(r.Envelope(t).Data, &inv) != nil || inv.ID == "" {
		t.Fatalf("create invoice: %d %s", r.StatusCode, r.Body)
	}
	return inv.ID
}

// whCall is one API call: status, envelope, data.
type whCall struct {
	status int
	env    *httpt.Envelope
	raw    []byte
}

func (c whCall) data(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(c.env.Data, v); err != nil {
		t.Fatalf("data: %v: %s", err, c.raw)
	}
}

func (s *whStack) whDo(t *testing.T, method, path, body, token string) whCall {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	r := httpt.Do(t, method, s.URL+path, b, demoauth.Bearer(token))
	return whCall{status: r.StatusCode, env: r.Envelope(t), raw: r.Body}
}

// whEndpoint is an endpoint as the API shows it (secret only on create).
type whEndpoint struct {
	ID             string   `json:"id"`
	CompanyID      string   `json:"company_id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	Enabled        bool     `json:"enabled"`
	DisabledReason string   `json:"disabled_reason"`
	Secret         string   `json:"secret"`
}

type whDelivery struct {
	ID         string `json:"id"`
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	Attempt    int    `json:"attempt"`
	Status     string `json:"status"`
	HTTPStatus int    `json:"http_status"`
	Error      string `json:"error"`
	DurationMS *int64 `json:"duration_ms"`
	Response   string `json:"response"`
	At         string `json:"at"`
}

// whCreate creates an endpoint and fails the test unless it is 201.
func (s *whStack) whCreate(t *testing.T, token, url string, patterns ...string) whEndpoint {
	t.Helper()
	c := s.whDo(t, "POST", "/api/v1/webhooks", string(httpt.JSON(t, map[string]any{"url": url, "events": patterns, "description": "e2e"})), token)
	if c.status != http.StatusCreated {
		t.Fatalf("create: %d %s", c.status, c.raw)
	}
	var ep whEndpoint
	c.data(t, &ep)
	if !strings.HasPrefix(ep.Secret, "whsec_") || !strings.HasPrefix(ep.ID, "wh_") {
		t.Fatalf("create: %s", c.raw)
	}
	return ep
}

// whDeliveries lists an endpoint's attempts (one page of 100).
func (s *whStack) whDeliveries(t *testing.T, token, id string) []whDelivery {
	t.Helper()
	c := s.whDo(t, "GET", "/api/v1/webhooks/"+id+"/deliveries?limit=100", "", token)
	if c.status != 200 {
		t.Fatalf("deliveries: %d %s", c.status, c.raw)
	}
	var page struct {
		Deliveries []whDelivery `json:"deliveries"`
	}
	c.data(t, &page)
	return page.Deliveries
}

// whReceived is one request a receiver got.
type whReceived struct {
	at     time.Time
	header http.Header
	body   []byte
}

// whReceiver is a webhook receiver: a real HTTP server on loopback that
// answers each request with the next status of its script (the last one
// repeating) and keeps every request.
type whReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []whReceived
	script []int
	notify chan struct{}
}

func whNewReceiver(t *testing.T, script ...int) *whReceiver {
	rc := &whReceiver{script: script, notify: make(chan struct{}, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, whReceived{at: time.Now(), header: r.Header.Clone(), body: body})
		status := 200
		if len(rc.script) > 0 {
			status = rc.script[min(n, len(rc.script)-1)]
		}
		rc.mu.Unlock()
		rc.notify <- struct{}{}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "receiver answer "+strconv.Itoa(n+1))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *whReceiver) requests() []whReceived {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]whReceived(nil), rc.got...)
}

// whWaitFor waits until the receiver has n requests, or fails after d.
func (rc *whReceiver) whWaitFor(t *testing.T, n int, d time.Duration) []whReceived {
	t.Helper()
	deadline := time.After(d)
	for {
		if got := rc.requests(); len(got) >= n {
			return got
		}
		select {
		case <-rc.notify:
		case <-deadline:
			t.Fatalf("receiver got %d requests in %s, want %d", len(rc.requests()), d, n)
		}
	}
}

// whVerify is a Standard Webhooks verification written from the spec, not
// from internal/webhooks: the signed content is "<webhook-id>.<webhook-timestamp>.<body>",
// the key the base64 after "whsec_", webhook-signature a space-separated
// list of "v1,<base64 HMAC-SHA256>". It reports whether one of the
// signatures is secret's, and checks the timestamp is within 5 minutes.
func whVerify(t *testing.T, secret string, rq whReceived) bool {
	t.Helper()
	id, ts, sigs := rq.header.Get("webhook-id"), rq.header.Get("webhook-timestamp"), rq.header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		t.Fatalf("delivery without Standard Webhooks headers: %v", rq.header)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Fatalf("webhook-timestamp %q is not now", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret %q is not whsec_ base64", secret[:8])
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(rq.body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// whEvent decodes a delivery's body: a CloudEvents 1.0 structured event.
func whEvent(t *testing.T, rq whReceived) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(rq.body, &ev); err != nil {
		t.Fatalf("delivery body is not JSON: %v: %.300s", err, rq.body)
	}
	if ev["specversion"] != "1.0" {
		t.Fatalf("not a CloudEvent: %.300s", rq.body)
	}
	return ev
}
