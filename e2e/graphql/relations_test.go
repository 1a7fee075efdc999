package graphql

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// relationsQuery reads from all five demo backends in one operation: the
// invoices backend (REST) with each invoice's customer (customers, REST),
// customers with their invoices (the reverse relation), products with
// their stock (inventory, JSON-RPC) and ledger entries (OData).
const relationsQuery = `query Tour($first: Int!) {
  invoices(first: $first, sort: "number") {
    totalCount
    pageInfo { hasNextPage hasPreviousPage }
    nodes {
      id number customer_id status issue_date
      total { amount currency }
      customer { id display_name email created }
    }
  }
  customers(first: 3, sort: "id") {
    nodes {
      id display_name
      invoices(first: 4) { totalCount nodes { id number customer_id } }
    }
  }
  products(first: 4, sort: "sku") {
    nodes {
      id sku name
      unit_price { amount currency }
      stock { id sku name price currency stock }
    }
  }
  ledgerEntries(first: 3, sort: "-amount", filter: {status: "posted"}) {
    nodes { id entry_no account description amount currency posted_on status }
  }
}`

// TestRelationsAcrossBackends is the first "Must show" of issue 16: one
// query across five backends in three dialects, every value equal to what
// REST answers for the same ids.
func TestRelationsAcrossBackends(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	tok := login(t, in.URL).aliceAcme

	d := query(t, in.URL, tok, relationsQuery, map[string]any{"first": 5})

	// invoices → customer (REST → REST)
	restInvoices := rest(t, in.URL, tok, "/api/v2/invoices?limit=5&sort=number").([]any)
	invoices := list(t, d, "invoices", "nodes")
	if len(invoices) != 5 || len(restInvoices) != 5 {
		t.Fatalf("invoices: %d over GraphQL, %d over REST", len(invoices), len(restInvoices))
	}
	if at(t, d, "invoices", "totalCount") != float64(120) || at(t, d, "invoices", "pageInfo", "hasNextPage") != true ||
		at(t, d, "invoices", "pageInfo", "hasPreviousPage") != false {
		t.Fatalf("invoices' connection: %v", obj(t, d, "invoices"))
	}
	for i, it := range invoices {
		inv := it.(map[string]any)
		want := restInvoices[i].(map[string]any)
		sameFields(t, fmt.Sprint("invoice ", i), inv, want, "id", "number", "customer_id", "status", "issue_date", "total")
		cust := obj(t, inv, "customer")
		if cust["id"] != inv["customer_id"] {
			t.Fatalf("invoice %v has customer %v", inv["id"], cust["id"])
		}
		wantCust := rest(t, in.URL, tok, "/api/v2/customers/"+url.PathEscape(inv["customer_id"].(string))).(map[string]any)
		sameFields(t, fmt.Sprint("customer of invoice ", inv["id"]), cust, wantCust, "id", "display_name", "email", "created")
	}

	// customers → invoices (the reverse relation, a connection per parent)
	customers := list(t, d, "customers", "nodes")
	restCustomers := rest(t, in.URL, tok, "/api/v2/customers?limit=3&sort=id").([]any)
	if len(customers) != 3 || len(restCustomers) != 3 {
		t.Fatalf("customers: %d over GraphQL, %d over REST", len(customers), len(restCustomers))
	}
	for i, it := range customers {
		c := it.(map[string]any)
		sameFields(t, fmt.Sprint("customer ", i), c, restCustomers[i].(map[string]any), "id", "display_name")
		filter := url.QueryEscape("customer_id:eq:" + c["id"].(string))
		all := rest(t, in.URL, tok, "/api/v2/invoices?limit=200&filter="+filter).([]any)
		got := list(t, c, "invoices", "nodes")
		if len(all) == 0 || at(t, c, "invoices", "totalCount") != float64(len(all)) || len(got) != min(4, len(all)) {
			t.Fatalf("customer %v: %d invoices (totalCount %v) over GraphQL, %d over REST", c["id"], len(got), at(t, c, "invoices", "totalCount"), len(all))
		}
		for j, g := range got {
			sameFields(t, fmt.Sprint("invoice ", j, " of customer ", c["id"]), g.(map[string]any), all[j].(map[string]any), "id", "number", "customer_id")
		}
	}

	// products → stock (REST → JSON-RPC)
	products := list(t, d, "products", "nodes")
	restProducts := rest(t, in.URL, tok, "/api/v2/products?limit=4&sort=sku").([]any)
	if len(products) != 4 || len(restProducts) != 4 {
		t.Fatalf("products: %d over GraphQL, %d over REST", len(products), len(restProducts))
	}
	for i, it := range products {
		p := it.(map[string]any)
		sameFields(t, fmt.Sprint("product ", i), p, restProducts[i].(map[string]any), "id", "sku", "name", "unit_price")
		stock := obj(t, p, "stock")
		want := rest(t, in.URL, tok, "/api/v1/inventory/"+url.PathEscape(p["id"].(string))).(map[string]any)
		sameFields(t, fmt.Sprint("stock of ", p["id"]), stock, want, "id", "sku", "name", "price", "currency", "stock")
		if stock["id"] != p["id"] {
			t.Fatalf("product %v has the stock of %v", p["id"], stock["id"])
		}
	}

	// ledger entries (OData)
	entries := list(t, d, "ledgerEntries", "nodes")
	restEntries := rest(t, in.URL, tok, "/api/v1/ledger?limit=3&sort=-amount&filter=status:eq:posted").([]any)
	if len(entries) != 3 || len(restEntries) != 3 {
		t.Fatalf("ledger: %d over GraphQL, %d over REST", len(entries), len(restEntries))
	}
	for i, e := range entries {
		sameFields(t, fmt.Sprint("ledger entry ", i), e.(map[string]any), restEntries[i].(map[string]any),
			"id", "entry_no", "account", "description", "amount", "currency", "posted_on", "status")
	}

	// the item root fields agree with the list ones
	first := invoices[0].(map[string]any)
	one := query(t, in.URL, tok, `query($id: ID!) { invoice(id: $id) { id number customer { id display_name } } }`, map[string]any{"id": first["id"]})
	if at(t, one, "invoice", "number") != first["number"] || at(t, one, "invoice", "customer", "display_name") != at(t, first, "customer", "display_name") {
		t.Fatalf("invoice(id) %v differs from invoices' %v", one, first)
	}
}
