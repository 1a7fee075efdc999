package graphql

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestNoNPlusOne is the call-count test of issue 16: the invoices and
// customers backends are reached through a proxy in the test process that
// counts what the edge sends them. 50 invoices with their customers are
// exactly one invoices call and one batched customers call (not 51); with
// the customers' invoices too, one more invoices call.
func TestNoNPlusOne(t *testing.T) {
	t.Parallel()
	in, c := startCounted(t, "", "invoices", "customers")
	tok := login(t, in.URL).aliceAcme

	c.reset()
	a := post(t, in.URL, tok, request{Query: `{
	  invoices(first: 50) { nodes { id customer_id customer { id display_name } } }
	}`}, nil)
	if a.Status != 200 || len(a.Errors) > 0 {
		t.Fatalf("query: %s", a)
	}
	invoices := list(t, a.data(t), "invoices", "nodes")
	if len(invoices) != 50 {
		t.Fatalf("%d invoices", len(invoices))
	}
	for _, it := range invoices {
		inv := it.(map[string]any)
		if cust, _ := inv["customer"].(map[string]any); cust == nil || cust["id"] != inv["customer_id"] || cust["display_name"] == "" {
			t.Fatalf("invoice %v: customer %v", inv["id"], inv["customer"])
		}
	}
	inv, cus := c.requests("/v2/invoices"), c.requests("/v2/customers")
	if len(inv) != 1 || len(cus) != 1 || len(c.requests("")) != 2 {
		t.Fatalf("50 invoices with their customers: %d invoices calls, %d customers calls; want 1 and 1:\n%s", len(inv), len(cus), c.summary())
	}
	if a.Extensions.Meta.Calls == nil || *a.Extensions.Meta.Calls != 2 {
		t.Fatalf("extensions.meta.calls %v, want 2: %s", a.Extensions.Meta.Calls, a.Raw)
	}
	// the one customers call asked for exactly the invoices' distinct
	// customers (the REST dialect's form of id:in: is repeated id=)
	want := distinct(ids(t, invoices, "customer_id"))
	if got := distinct(cus[0].Query()["id"]); !slices.Equal(got, want) {
		t.Fatalf("the customers call asked for %v; the invoices' customers are %v (%s)", got, want, cus[0].RawQuery)
	}
	if cus[0].Path != "/v2/customers" || inv[0].Path != "/v2/invoices" {
		t.Fatalf("calls to %s and %s, want the collections", inv[0].Path, cus[0].Path)
	}

	// one level more: the customers' invoices, one more call for them all
	c.reset()
	a = post(t, in.URL, tok, request{Query: `{
	  invoices(first: 50) { nodes { id customer { id invoices(first: 3) { totalCount nodes { id customer_id } } } } }
	}`}, nil)
	if a.Status != 200 || len(a.Errors) > 0 {
		t.Fatalf("query: %s", a)
	}
	invoices = list(t, a.data(t), "invoices", "nodes")
	for _, it := range invoices {
		cust := obj(t, it, "customer")
		nodes := list(t, cust, "invoices", "nodes")
		if len(nodes) == 0 || len(nodes) > 3 {
			t.Fatalf("customer %v: %d invoices", cust["id"], len(nodes))
		}
		for _, n := range nodes {
			if n.(map[string]any)["customer_id"] != cust["id"] {
				t.Fatalf("customer %v lists invoice %v", cust["id"], n)
			}
		}
	}
	inv, cus = c.requests("/v2/invoices"), c.requests("/v2/customers")
	if len(inv) != 2 || len(cus) != 1 || len(c.requests("")) != 3 {
		t.Fatalf("with the customers' invoices: %d invoices calls, %d customers calls; want 2 and 1:\n%s", len(inv), len(cus), c.summary())
	}
	if a.Extensions.Meta.Calls == nil || *a.Extensions.Meta.Calls != 3 {
		t.Fatalf("extensions.meta.calls %v, want 3", a.Extensions.Meta.Calls)
	}
	// one of the two invoices calls is the batched relation: by the
	// customers' ids, all of them in one call
	var custIDs []string
	for _, it := range invoices {
		custIDs = append(custIDs, obj(t, it, "customer")["id"].(string))
	}
	batched := inv[0]
	if len(batched.Query()["customer_id"]) == 0 {
		batched = inv[1]
	}
	if got, want := distinct(batched.Query()["customer_id"]), distinct(custIDs); !slices.Equal(got, want) {
		t.Fatalf("the batched invoices call asked for customers %v, want %v:\n%s", got, want, c.summary())
	}
	if strings.Contains(c.summary(), "/v2/customers/") || strings.Contains(c.summary(), "/v2/invoices/") {
		t.Fatalf("item calls made:\n%s", c.summary())
	}

	t.Run("a missing scope makes no call", func(t *testing.T) { missingScopeMakesNoCall(t, in, c, tok) })
}

// missingScopeMakesNoCall (TestNoNPlusOne's last step): an API key with invoices:read only reads
// invoices; each invoice's customer is null with FORBIDDEN (customers:read
// missing) and the customers backend is never called.
func missingScopeMakesNoCall(t *testing.T, in *stacktest.Instance, c *counter, tok string) {
	resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/api-keys",
		httpt.JSON(t, map[string]any{"name": "graphql-test", "scope": []string{"invoices:read"}}), demoauth.Bearer(tok))
	var key struct {
		Key string `json:"key"`
	}
	if env := resp.Envelope(t); resp.StatusCode != 201 && resp.StatusCode != 200 || json.Unmarshal(env.Data, &key) != nil || key.Key == "" {
		t.Fatalf("API key: %d %s", resp.StatusCode, resp.Body)
	}
	apiKey := map[string]string{"X-API-Key": key.Key}

	c.reset()
	a := post(t, in.URL, "", request{Query: `{ invoices(first: 3, sort: "number") { nodes { number customer { display_name } } } }`}, apiKey)
	if a.Status != 200 || len(a.Errors) != 3 {
		t.Fatalf("invoices with customers on invoices:read: %s", a)
	}
	for i, it := range list(t, a.data(t), "invoices", "nodes") {
		inv := it.(map[string]any)
		if inv["number"] == nil || inv["customer"] != nil {
			t.Fatalf("invoice %d: %v", i, inv)
		}
	}
	for i, e := range a.Errors {
		want := []any{"invoices", "nodes", float64(i), "customer"}
		if e.Extensions.Code != "FORBIDDEN" || e.Extensions.Context["required"] != "customers:read" || fmt.Sprint(e.Path) != fmt.Sprint(want) {
			t.Fatalf("error %d: %+v", i, e)
		}
	}
	if len(c.requests("/v2/customers")) != 0 || len(c.requests("/v2/invoices")) != 1 {
		t.Fatalf("calls:\n%s", c.summary())
	}
	// a mutation on invoices:read: refused, no call
	c.reset()
	a = post(t, in.URL, "", request{Query: `mutation { deleteInvoice(id: "inv_acme_0004") }`}, apiKey)
	if a.Status != 200 || a.code() != "FORBIDDEN" || a.Errors[0].Extensions.Context["required"] != "invoices:write" || len(c.requests("")) != 0 {
		t.Fatalf("delete on invoices:read: %s\n%s", a, c.summary())
	}
	if s := restStatus(t, in.URL, tok, "/api/v2/invoices/inv_acme_0004"); s != 200 {
		t.Fatalf("the invoice after a refused delete: %d", s)
	}
}
