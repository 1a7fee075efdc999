// Package events tests the event layer through the running binary: business
// events of writes at the edge, auth events through the outbox, webhooks,
// real-time streams, security monitoring and a NATS cluster.
package events

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/demoauth"
	ev "github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// bizStart runs the binary on Caddyfile.example (embedded stores) with the
// test's NATS and key prefix, so the events go to the test's own stream.
func bizStart(t *testing.T, config string) (*stacktest.Instance, ev.Names, jetstream.JetStream) {
	t.Helper()
	url := testenv.NATSURL(t)
	prefix := testenv.Name() + ":"
	names := ev.NamesFor(prefix)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), names.Stream) })
	in := stacktest.Start(t, stacktest.Options{Config: config, Env: map[string]string{"ERP_NATS_URL": url, "ERP_KEY_PREFIX": prefix}})
	return in, names, js
}

// bizEvents reads what the stream holds for company, waiting up to wait
// until it holds at least n events.
func bizEvents(t *testing.T, js jetstream.JetStream, names ev.Names, company string, n int, wait time.Duration) []ev.Event {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cons, err := js.OrderedConsumer(ctx, names.Stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{names.CompanyFilter(company, "*")},
		})
		var out []ev.Event
		if err == nil {
			batch, ferr := cons.FetchNoWait(1000)
			if ferr != nil {
				t.Fatal(ferr)
			}
			for m := range batch.Messages() {
				var e ev.Event
				if err := json.Unmarshal(m.Data(), &e); err != nil {
					t.Fatalf("not a CloudEvent: %s", m.Data())
				}
				out = append(out, e)
			}
		}
		cancel()
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBusinessEvents: each successful write through a backend publishes one
// CloudEvent of the caller's company — created, updated, deleted — with the
// resource id and the answer's data; reads, failed writes and another
// company's writes add nothing to this company's events.
func TestBusinessEvents(t *testing.T) {
	t.Parallel()
	in, names, js := bizStart(t, "")
	acme := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	globex := demoauth.Bearer(demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access)

	began := time.Now()
	resp := httpt.Do(t, "POST", in.URL+"/api/v2/invoices", []byte(`{"customer_id":"cus_acme_001","total":{"amount":"12.50","currency":"EUR"}}`), acme)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp.Envelope(t).Data, &created); err != nil || created.ID == "" {
		t.Fatalf("create answer: %s", resp.Body)
	}
	got := bizEvents(t, js, names, "acme", 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("after one create, acme's events: %+v", got)
	}
	e := got[0]
	if e.Type != "erp.invoices.created" || e.CompanyID != "acme" || e.Subject != created.ID || e.SpecVersion != "1.0" ||
		!strings.HasPrefix(e.Source, "/erpgate/") || e.ID == "" || e.DataContentType != "application/json" {
		t.Fatalf("event %+v", e)
	}
	var data struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
	}
	if err := json.Unmarshal(e.Data, &data); err != nil || data.ID != created.ID || data.CustomerID != "cus_acme_001" {
		t.Fatalf("event data %s", e.Data)
	}
	t.Logf("created event on the stream %v after the request began", time.Since(began))

	// reads, refused and failed writes publish nothing
	httpt.Get(t, in.URL+"/api/v2/invoices/"+created.ID, acme)
	if r := httpt.Do(t, "POST", in.URL+"/api/v2/invoices", []byte(`{"customer_id":"nope"}`), acme); r.StatusCode/100 == 2 {
		t.Fatalf("invalid create: %d", r.StatusCode)
	}
	if r := httpt.Do(t, "PATCH", in.URL+"/api/v2/invoices/"+created.ID, []byte(`{"status":"sent"}`), globex); r.StatusCode/100 == 2 {
		t.Fatalf("globex patched acme's invoice: %d", r.StatusCode)
	}

	if r := httpt.Do(t, "PATCH", in.URL+"/api/v2/invoices/"+created.ID, []byte(`{"status":"sent"}`), acme); r.StatusCode != 200 {
		t.Fatalf("patch: %d %s", r.StatusCode, r.Body)
	}
	if r := httpt.Do(t, "DELETE", in.URL+"/api/v2/invoices/"+created.ID, nil, acme); r.StatusCode/100 != 2 {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	// globex writes its own invoice: its event is globex's, never acme's
	if r := httpt.Do(t, "POST", in.URL+"/api/v2/invoices", []byte(`{"customer_id":"cus_globex_001","total":{"amount":"3.00","currency":"USD"}}`), globex); r.StatusCode != 201 {
		t.Fatalf("globex create invoice: %d %s", r.StatusCode, r.Body)
	}
	got = bizEvents(t, js, names, "acme", 3, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // anything wrongly published would be there by now
	got = bizEvents(t, js, names, "acme", 3, 0)
	var types []string
	for _, e := range got {
		types = append(types, e.Type+" "+e.Subject)
		if e.CompanyID != "acme" {
			t.Fatalf("another company's event on acme's subjects: %+v", e)
		}
	}
	want := "[erp.invoices.created " + created.ID + " erp.invoices.updated " + created.ID + " erp.invoices.deleted " + created.ID + "]"
	if strings.Join(types, " ") != strings.Trim(want, "[]") {
		t.Fatalf("acme's events: %v, want %s", types, want)
	}
	if g := bizEvents(t, js, names, "globex", 1, 5*time.Second); len(g) != 1 || g[0].Type != "erp.invoices.created" || g[0].CompanyID != "globex" {
		t.Fatalf("globex's events: %+v", g)
	}
}

// TestBusinessEventsOff: a backend with `events off` publishes nothing, and
// `events { resource … }` names the type.
func TestBusinessEventsOff(t *testing.T) {
	t.Parallel()
	cfg := stacktest.ExampleConfig(t)
	cfg = strings.Replace(cfg, "backend invoices {", "backend invoices {\n\t\t\tevents off", 1)
	cfg = strings.Replace(cfg, "backend customers {", "backend customers {\n\t\t\tevents {\n\t\t\t\tresource clients\n\t\t\t}", 1)
	in, names, js := bizStart(t, cfg)
	acme := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	if r := httpt.Do(t, "POST", in.URL+"/api/v2/invoices", []byte(`{"customer_id":"cus_acme_001","total":{"amount":"1.00","currency":"EUR"}}`), acme); r.StatusCode != 201 {
		t.Fatalf("create invoice: %d %s", r.StatusCode, r.Body)
	}
	if r := httpt.Do(t, "POST", in.URL+"/api/v2/customers", []byte(`{"display_name":"Hooli","email":"ap@hooli.test"}`), acme); r.StatusCode != 201 {
		t.Fatalf("create customer: %d %s", r.StatusCode, r.Body)
	}
	got := bizEvents(t, js, names, "acme", 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	got = bizEvents(t, js, names, "acme", 1, 0)
	if len(got) != 1 || got[0].Type != "erp.clients.created" {
		t.Fatalf("events: %+v, want one erp.clients.created", got)
	}
}
