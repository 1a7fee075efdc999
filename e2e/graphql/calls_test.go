package graphql

import (
	"slices"
	"strings"
	"testing"
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
}
