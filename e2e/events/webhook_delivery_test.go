package events

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestWebhookDeliveryRetries: acme's receiver gets erp.invoices.created
// within 2 s of POST /api/v2/invoices through the edge, signed (verified
// here from the spec);
// it answers 500 and 503, then 200, so the event arrives three times, and
// the deliveries show the three attempts, newest first, with status, HTTP
// status, duration and the answer's first bytes. globex's invoice and
// acme's customer (a type the endpoint did not ask for) never reach it.
func TestWebhookDeliveryRetries(t *testing.T) {
	t.Parallel()
	s := whStart(t, true, "200ms 400ms")
	alice := demoauth.Login(t, s.URL, "alice@acme.test", "acme")
	rc := whNewReceiver(t, 500, 503, 200)
	ep := s.whCreate(t, alice.Access, rc.URL+"/hook?tenant=acme", "erp.invoices.*")

	bob := demoauth.Login(t, s.URL, "bob@globex.test", "globex")
	s.whCreateInvoice(t, bob.Access, "cus_globex_001")
	s.whPublish(t, "acme", "erp.customers.created", "cus-1", map[string]any{"id": "cus-1"})
	start := time.Now()
	inv := s.whCreateInvoice(t, alice.Access, "cus_acme_001")

	got := rc.whWaitFor(t, 1, 10*time.Second)
	lat := got[0].at.Sub(start)
	if lat > 2*time.Second {
		t.Errorf("first attempt %s after the POST, want within 2 s", lat)
	}
	t.Logf("POST /api/v2/invoices → first delivery attempt: %s", lat)
	got = rc.whWaitFor(t, 3, 30*time.Second)
	for i, rq := range got {
		if !whVerify(t, ep.Secret, rq) {
			t.Fatalf("attempt %d: signature does not verify with the endpoint's secret", i+1)
		}
		e := whEvent(t, rq)
		if e["id"] != whEvent(t, got[0])["id"] || e["type"] != "erp.invoices.created" || e["companyid"] != "acme" || e["subject"] != inv {
			t.Fatalf("attempt %d: %s", i+1, rq.body)
		}
		if data, _ := e["data"].(map[string]any); data["id"] != inv {
			t.Fatalf("attempt %d: data is not the invoice: %s", i+1, rq.body)
		}
		if rq.header.Get("webhook-id") != e["id"] {
			t.Fatalf("attempt %d: webhook-id %q, want the event id (the same on every retry)", i+1, rq.header.Get("webhook-id"))
		}
	}
	if gap := got[1].at.Sub(got[0].at); gap < 100*time.Millisecond {
		t.Errorf("second attempt %s after the first: no backoff", gap)
	}

	// the three attempts, as the API shows them (the last may be recorded
	// a moment after the receiver answered)
	var ds []whDelivery
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ds = s.whDeliveries(t, alice.Access, ep.ID)
		if len(ds) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(ds) != 3 {
		t.Fatalf("deliveries: %d, want 3: %+v", len(ds), ds)
	}
	for i, want := range []struct {
		attempt, http int
		status        string
	}{{3, 200, "succeeded"}, {2, 503, "failed"}, {1, 500, "failed"}} {
		d := ds[i]
		if d.Attempt != want.attempt || d.HTTPStatus != want.http || d.Status != want.status || d.EventID != whEvent(t, got[0])["id"] ||
			d.EventType != "erp.invoices.created" || d.EndpointID != ep.ID || d.DurationMS == nil || d.At == "" ||
			!strings.HasPrefix(d.Response, "receiver answer ") {
			t.Errorf("delivery %d: %+v, want attempt %d, %d, %s", i, d, want.attempt, want.http, want.status)
		}
	}

	// nothing else arrives: not globex's invoice, not acme's customer
	time.Sleep(1500 * time.Millisecond)
	for _, rq := range rc.requests() {
		if e := whEvent(t, rq); e["companyid"] != "acme" || e["type"] != "erp.invoices.created" {
			t.Fatalf("the receiver got %s", rq.body)
		}
	}
	if n := len(rc.requests()); n != 3 {
		t.Fatalf("the receiver got %d requests, want 3", n)
	}
	if strings.Contains(s.Logs(), ep.Secret) || strings.Contains(s.Logs(), strings.TrimPrefix(ep.Secret, "whsec_")) {
		t.Fatal("the secret is in the gateway's logs")
	}
}

// TestWebhookTestRotateRetry: the test ping reaches the receiver signed and
// shows as an attempt; after rotate-secret a delivery carries two
// signatures, one by the old secret and one by the new; retry sends a
// delivery's event again as a new attempt.
func TestWebhookTestRotateRetry(t *testing.T) {
	t.Parallel()
	s := whStart(t, true, "200ms")
	alice := demoauth.Login(t, s.URL, "alice@acme.test", "acme")
	rc := whNewReceiver(t, 204)
	ep := s.whCreate(t, alice.Access, rc.URL, "erp.invoices.*")

	c := s.whDo(t, "POST", "/api/v1/webhooks/"+ep.ID+"/test", "", alice.Access)
	var ping whDelivery
	if c.status != 200 {
		t.Fatalf("test: %d %s", c.status, c.raw)
	}
	c.data(t, &ping)
	if ping.Status != "succeeded" || ping.HTTPStatus != 204 || ping.EventType != "erp.webhooks.ping" {
		t.Fatalf("test: %s", c.raw)
	}
	got := rc.whWaitFor(t, 1, 10*time.Second)
	if e := whEvent(t, got[0]); e["type"] != "erp.webhooks.ping" || e["companyid"] != "acme" || !whVerify(t, ep.Secret, got[0]) {
		t.Fatalf("ping: %s %v", got[0].body, got[0].header)
	}
	if n := len(strings.Fields(got[0].header.Get("webhook-signature"))); n != 1 {
		t.Fatalf("before a rotation: %d signatures", n)
	}

	c = s.whDo(t, "POST", "/api/v1/webhooks/"+ep.ID+"/rotate-secret", "", alice.Access)
	var rot struct{ ID, Secret string }
	c.data(t, &rot)
	if c.status != 200 || rot.ID != ep.ID || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == ep.Secret {
		t.Fatalf("rotate: %d %s", c.status, c.raw)
	}
	ev := s.whPublish(t, "acme", "erp.invoices.updated", "inv-7", map[string]any{"id": "inv-7"})
	got = rc.whWaitFor(t, 2, 10*time.Second)
	last := got[1]
	if e := whEvent(t, last); e["id"] != ev.ID {
		t.Fatalf("after rotation: %s", last.body)
	}
	if n := len(strings.Fields(last.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("during a rotation: %d signatures, want 2: %q", n, last.header.Get("webhook-signature"))
	}
	if !whVerify(t, ep.Secret, last) || !whVerify(t, rot.Secret, last) {
		t.Fatal("during a rotation the old and the new secret must both verify")
	}
	if whVerify(t, "whsec_"+strings.Repeat("A", 44), last) {
		t.Fatal("an unrelated secret verifies")
	}

	// retry the invoice's delivery: a new attempt of the same event
	// (recorded a moment after the receiver answered)
	var orig whDelivery
	for deadline := time.Now().Add(10 * time.Second); orig.ID == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, d := range s.whDeliveries(t, alice.Access, ep.ID) {
			if d.EventID == ev.ID {
				orig = d
			}
		}
	}
	if orig.ID == "" {
		t.Fatal("the invoice's delivery is not listed")
	}
	c = s.whDo(t, "POST", "/api/v1/webhooks/"+ep.ID+"/deliveries/"+orig.ID+"/retry", "", alice.Access)
	var again whDelivery
	if c.status != 200 {
		t.Fatalf("retry: %d %s", c.status, c.raw)
	}
	c.data(t, &again)
	if again.ID == orig.ID || again.EventID != ev.ID || again.Status != "succeeded" {
		t.Fatalf("retry: %s", c.raw)
	}
	got = rc.whWaitFor(t, 3, 10*time.Second)
	if e := whEvent(t, got[2]); e["id"] != ev.ID || !whVerify(t, rot.Secret, got[2]) {
		t.Fatalf("retried delivery: %s", got[2].body)
	}
	c = s.whDo(t, "POST", "/api/v1/webhooks/"+ep.ID+"/deliveries/whd_0000000000000000000000000000dead/retry", "", alice.Access)
	if c.status != http.StatusNotFound || c.env.Code() != "NOT_FOUND" {
		t.Fatalf("retry of an unknown delivery: %d %s", c.status, c.raw)
	}
}

// TestWebhookPostgres: the same path with the endpoints and attempts in
// Postgres (migration 0008): a failed attempt, then a success, both
// listed; the secret is not in the table in clear.
func TestWebhookPostgres(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	s := whStartEnv(t, true, "200ms", map[string]string{"ERP_POSTGRES_URL": pg, "ERP_MASTER_KEY": whTestMasterKey})
	alice := demoauth.Login(t, s.URL, "alice@acme.test", "acme")
	rc := whNewReceiver(t, 502, 200)
	ep := s.whCreate(t, alice.Access, rc.URL, "erp.invoices.created")
	inv := s.whCreateInvoice(t, alice.Access, "cus_acme_001")
	got := rc.whWaitFor(t, 2, 20*time.Second)
	for _, rq := range got {
		if e := whEvent(t, rq); e["subject"] != inv || !whVerify(t, ep.Secret, rq) {
			t.Fatalf("delivery: %s", rq.body)
		}
	}
	var ds []whDelivery
	for deadline := time.Now().Add(10 * time.Second); len(ds) < 2 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ds = s.whDeliveries(t, alice.Access, ep.ID)
	}
	if len(ds) != 2 || ds[0].Status != "succeeded" || ds[0].Attempt != 2 || ds[1].HTTPStatus != 502 || ds[1].Attempt != 1 {
		t.Fatalf("deliveries: %+v", ds)
	}
	// pages of one: newest first, then the next by cursor
	c := s.whDo(t, "GET", "/api/v1/webhooks/"+ep.ID+"/deliveries?limit=1", "", alice.Access)
	var page struct {
		Deliveries []whDelivery `json:"deliveries"`
		NextCursor string       `json:"next_cursor"`
	}
	c.data(t, &page)
	if len(page.Deliveries) != 1 || page.Deliveries[0].ID != ds[0].ID || page.NextCursor != ds[0].ID {
		t.Fatalf("first page: %s", c.raw)
	}
	c = s.whDo(t, "GET", "/api/v1/webhooks/"+ep.ID+"/deliveries?limit=1&cursor="+page.NextCursor, "", alice.Access)
	c.data(t, &page)
	if len(page.Deliveries) != 1 || page.Deliveries[0].ID != ds[1].ID {
		t.Fatalf("second page: %s", c.raw)
	}

	db, err := pgx.Connect(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM webhook_endpoints WHERE id = $1`, ep.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("endpoint row: %d %v", n, err)
	}
	var row string
	if err := db.QueryRow(context.Background(), `SELECT row_to_json(e)::text FROM webhook_endpoints e WHERE id = $1`, ep.ID).Scan(&row); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(ep.Secret, "whsec_")
	if strings.Contains(row, key) || strings.Contains(row, "whsec_") {
		t.Fatal("the secret is stored in clear")
	}
}

// whTestMasterKey seals secrets at rest in the Postgres test (test only).
const whTestMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
