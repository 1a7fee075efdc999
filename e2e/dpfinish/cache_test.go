// Package dpfinish drives the data plane's finishing pieces through the
// running gateway binary: erp_cache invalidated by business events on the
// stream and by GraphQL mutations, erp_body_limit on streamed uploads, the
// OData dialect's entity tags, and erp_idempotency's in-flight conflict.
package dpfinish

import (
	"context"
	"encoding/json"
	"net/http"
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

const list = "/api/v2/products?sort=sku&limit=3"

// example is Caddyfile.example with each old → new replaced (each must
// be there).
func example(t *testing.T, pairs ...string) string {
	t.Helper()
	cfg := stacktest.ExampleConfig(t)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(cfg, pairs[i]) {
			t.Fatalf("Caddyfile.example has no %q", pairs[i])
		}
		cfg = strings.Replace(cfg, pairs[i], pairs[i+1], 1)
	}
	return cfg
}

// cacheReadsOnly puts erp_cache on GETs only: writes reach the backend
// without passing it, as another instance's or the ERP's own writes do,
// and only their business events can tell it.
const cacheBlock = "\t\terp_cache {\n\t\t\tttl {$ERP_CACHE_TTL:0}\n\t\t}\n"
const cacheReadsOnly = "\t\t@reads method GET\n\t\terp_cache @reads {\n\t\t\tttl 30s\n\t\t\tstore memory\n\t\t}\n"

func xcache(t *testing.T, what string, r *httpt.Response, want string) {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.StatusCode, r.Body)
	}
	if got := r.Header.Get("X-Cache"); got != want {
		t.Fatalf("%s: X-Cache %q, want %q (%s)", what, got, want, r.Body)
	}
}

// waitMiss GETs url until the answer is a MISS (the invalidation is
// asynchronous: the event travels through NATS) and returns it.
func waitMiss(t *testing.T, url, token string) *httpt.Response {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := httpt.Get(t, url, demoauth.Bearer(token))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, r.StatusCode, r.Body)
		}
		if r.Header.Get("X-Cache") == "MISS" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %q after the event", url, r.Header.Get("X-Cache"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func firstProductID(t *testing.T, r *httpt.Response) string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Envelope(t).Data, &items); err != nil || len(items) == 0 {
		t.Fatalf("products: %v %s", err, r.Body)
	}
	return items[0].ID
}

// TestCacheInvalidatedByEvents: a write that does not pass erp_cache is
// seen when its business event arrives on the stream; an event another
// producer publishes works alike, and evicts only its company's entries;
// a GraphQL mutation (which calls the backend itself) evicts at once.
func TestCacheInvalidatedByEvents(t *testing.T) {
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
	a := stacktest.Start(t, stacktest.Options{
		Config: example(t, cacheBlock, cacheReadsOnly),
		Env:    map[string]string{"ERP_NATS_URL": url, "ERP_KEY_PREFIX": prefix},
	})
	acme := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	globex := demoauth.Login(t, a.URL, "bob@globex.test", "globex").Access

	first := httpt.Get(t, a.URL+list, demoauth.Bearer(acme))
	xcache(t, "first", first, "MISS")
	xcache(t, "second", httpt.Get(t, a.URL+list, demoauth.Bearer(acme)), "HIT")
	id := firstProductID(t, first)

	// a write that does not pass erp_cache: its business event evicts
	h := demoauth.Bearer(acme)
	h["Content-Type"] = "application/json"
	patch := httpt.Do(t, http.MethodPatch, a.URL+"/api/v2/products/"+id, []byte(`{"name":"Renamed by an event"}`), h)
	if patch.StatusCode/100 != 2 {
		t.Fatalf("PATCH: %d %s", patch.StatusCode, patch.Body)
	}
	fresh := waitMiss(t, a.URL+list, acme)
	if !strings.Contains(string(fresh.Body), "Renamed by an event") {
		t.Fatalf("after the event: stale answer %s", fresh.Body)
	}
	xcache(t, "after the event's miss", httpt.Get(t, a.URL+list, demoauth.Bearer(acme)), "HIT")

	// an event another producer publishes on the stream: only its company's
	// entries go
	xcache(t, "globex first", httpt.Get(t, a.URL+list, demoauth.Bearer(globex)), "MISS")
	xcache(t, "globex second", httpt.Get(t, a.URL+list, demoauth.Bearer(globex)), "HIT")
	publish := func(company, typ string) {
		t.Helper()
		e, err := ev.New("/erp/acme-erp", typ, company, id, map[string]string{"id": id})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(e)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, names.Subject(company, typ), b); err != nil {
			t.Fatalf("publish %s: %v", typ, err)
		}
	}
	publish("acme", "erp.invoices.updated") // another backend: products stay
	publish("acme", "erp.products.deleted")
	waitMiss(t, a.URL+list, acme)
	xcache(t, "globex after acme's event", httpt.Get(t, a.URL+list, demoauth.Bearer(globex)), "HIT")
	publish("globex", "erp.products.created")
	waitMiss(t, a.URL+list, globex)
	xcache(t, "acme after globex's event", httpt.Get(t, a.URL+list, demoauth.Bearer(acme)), "HIT")

	// a GraphQL mutation evicts before its answer
	q := map[string]any{
		"query":     `mutation($id: ID!) { updateProduct(id: $id, input: {name: "Renamed by GraphQL"}) { id name } }`,
		"variables": map[string]any{"id": id},
	}
	gh := demoauth.Bearer(acme)
	gh["Content-Type"] = "application/json"
	gr := httpt.Do(t, http.MethodPost, a.URL+"/api/graphql", httpt.JSON(t, q), gh)
	if gr.StatusCode != http.StatusOK || !strings.Contains(string(gr.Body), "Renamed by GraphQL") || strings.Contains(string(gr.Body), `"errors"`) {
		t.Fatalf("mutation: %d %s", gr.StatusCode, gr.Body)
	}
	after := httpt.Get(t, a.URL+list, demoauth.Bearer(acme))
	xcache(t, "after the mutation", after, "MISS")
	if !strings.Contains(string(after.Body), "Renamed by GraphQL") {
		t.Fatalf("after the mutation: stale answer %s", after.Body)
	}
	xcache(t, "globex after acme's mutation", httpt.Get(t, a.URL+list, demoauth.Bearer(globex)), "HIT")
}
