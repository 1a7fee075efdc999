package graphql

import (
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestIsolationAndScopes: a company's token never reads another company's
// object (null and NOT_FOUND, never data), a read-only member cannot
// mutate (FORBIDDEN at the field, nothing changed as REST shows), and an
// admin's mutations create, update and delete what REST then reads.
func TestIsolationAndScopes(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	u := login(t, in.URL)

	t.Run("another company's ids", func(t *testing.T) {
		a := post(t, in.URL, u.aliceAcme, request{Query: `{
		  invoice(id: "inv_globex_0001") { id number total { amount } }
		  customer(id: "cus_globex_001") { id display_name }
		  mine: invoice(id: "inv_acme_0001") { id }
		}`}, nil)
		if a.Status != 200 || len(a.Errors) != 2 {
			t.Fatalf("%s", a)
		}
		d := a.data(t)
		if d["invoice"] != nil || d["customer"] != nil || at(t, d, "mine", "id") != "inv_acme_0001" {
			t.Fatalf("data %v", d)
		}
		paths := map[string]bool{}
		for _, e := range a.Errors {
			if e.Extensions.Code != "NOT_FOUND" || len(e.Path) != 1 {
				t.Fatalf("error %+v", e)
			}
			paths[e.Path[0].(string)] = true
		}
		if !paths["invoice"] || !paths["customer"] {
			t.Fatalf("errors at %v", paths)
		}
		if strings.Contains(string(a.Raw), "GLOBEX-") || strings.Contains(string(a.Raw), ".example") {
			t.Fatalf("globex's data in acme's answer: %s", a.Raw)
		}

		// a filter naming another company's ids matches only the caller's
		d = query(t, in.URL, u.aliceAcme, `{
		  invoices(filter: {id: ["inv_globex_0001", "inv_acme_0002", "inv_globex_0002"]}) { totalCount nodes { id } }
		  byCustomer: invoices(filter: {customer_id: ["cus_globex_001"]}) { totalCount nodes { id } }
		}`, nil)
		if got := ids(t, list(t, d, "invoices", "nodes"), "id"); len(got) != 1 || got[0] != "inv_acme_0002" {
			t.Fatalf("acme asking for globex's invoices got %v", got)
		}
		if n := list(t, d, "byCustomer", "nodes"); len(n) != 0 {
			t.Fatalf("acme got globex's customer's invoices: %v", n)
		}
	})

	t.Run("read-only members cannot mutate", func(t *testing.T) {
		before := rest(t, in.URL, u.bobGlobex, "/api/v2/invoices/inv_globex_0003").(map[string]any)
		// the globex viewer reads
		d := query(t, in.URL, u.aliceGlobex, `{ invoice(id: "inv_globex_0003") { status } }`, nil)
		if at(t, d, "invoice", "status") != before["status"] {
			t.Fatalf("viewer read %v", d)
		}
		newStatus := "overdue"
		if before["status"] == newStatus {
			newStatus = "draft"
		}
		a := post(t, in.URL, u.aliceGlobex, request{
			Query: `mutation($id: ID!, $s: String) {
			  updateInvoice(id: $id, input: {status: $s}) { id status }
			  createInvoice(input: {customer_id: "cus_globex_001", total: {amount: "1.00", currency: "USD"}}) { id }
			  deleteInvoice(id: $id)
			}`,
			Variables: map[string]any{"id": "inv_globex_0003", "s": newStatus},
		}, nil)
		if a.Status != 200 || len(a.Errors) != 3 {
			t.Fatalf("viewer's mutations: %s", a)
		}
		d = a.data(t)
		for _, f := range []string{"updateInvoice", "createInvoice", "deleteInvoice"} {
			if v, ok := d[f]; !ok || v != nil {
				t.Fatalf("%s: %v", f, d)
			}
		}
		for _, e := range a.Errors {
			if e.Extensions.Code != "FORBIDDEN" || e.Extensions.Context["required"] != "invoices:write" {
				t.Fatalf("error %+v", e)
			}
		}
		after := rest(t, in.URL, u.bobGlobex, "/api/v2/invoices/inv_globex_0003").(map[string]any)
		sameFields(t, "inv_globex_0003 after the viewer's mutations", after, before, "status", "total", "customer_id", "number")
		if n := len(rest(t, in.URL, u.bobGlobex, "/api/v2/invoices?limit=200").([]any)); n != 37 {
			t.Fatalf("globex has %d invoices after the viewer's create, want 37", n)
		}

		// an accountant writes invoices but only reads customers
		a = post(t, in.URL, u.bobGlobex, request{Query: `mutation { createCustomer(input: {display_name: "X", email: "x@example.com"}) { id } }`}, nil)
		if a.Status != 200 || a.code() != "FORBIDDEN" || a.Errors[0].Extensions.Context["required"] != "customers:write" || at(t, a.data(t), "createCustomer") != nil {
			t.Fatalf("accountant creating a customer: %s", a)
		}
		if n := len(rest(t, in.URL, u.bobGlobex, "/api/v2/customers?limit=200").([]any)); n != 8 {
			t.Fatalf("globex has %d customers, want 8", n)
		}
	})

	t.Run("an admin's mutations, read back over REST", func(t *testing.T) {
		d := query(t, in.URL, u.aliceAcme, `mutation($in: InvoiceInput!) {
		  createInvoice(input: $in) { id number status issue_date customer_id total { amount currency } customer { id display_name } }
		}`, map[string]any{"in": map[string]any{
			"customer_id": "cus_acme_002", "total": map[string]any{"amount": "99.90", "currency": "EUR"},
			"status": "draft", "issue_date": "2026-03-01",
		}})
		created := obj(t, d, "createInvoice")
		id, _ := created["id"].(string)
		if !strings.HasPrefix(id, "inv_acme_") || created["status"] != "draft" || at(t, created, "total", "amount") != "99.90" ||
			at(t, created, "customer", "id") != "cus_acme_002" {
			t.Fatalf("created %v", created)
		}
		got := rest(t, in.URL, u.aliceAcme, "/api/v2/invoices/"+id).(map[string]any)
		sameFields(t, "created invoice", created, got, "id", "number", "status", "issue_date", "customer_id", "total")
		cust := rest(t, in.URL, u.aliceAcme, "/api/v2/customers/cus_acme_002").(map[string]any)
		sameFields(t, "created invoice's customer", obj(t, created, "customer"), cust, "id", "display_name")

		// the backend's validation error is the field's, with its field name
		a := post(t, in.URL, u.aliceAcme, request{Query: `mutation {
		  createInvoice(input: {customer_id: "cus_acme_002", total: {amount: "12.50", currency: "XYZ"}}) { id }
		}`}, nil)
		if a.Status != 200 || len(a.Errors) != 1 || a.code() != "VALIDATION_FAILED" || a.Errors[0].Extensions.Field == "" ||
			at(t, a.data(t), "createInvoice") != nil {
			t.Fatalf("an invalid invoice: %s", a)
		}

		// mutations run one after the other, in the document's order
		d = query(t, in.URL, u.aliceAcme, `mutation($id: ID!) {
		  first: updateInvoice(id: $id, input: {status: "sent"}) { status }
		  second: updateInvoice(id: $id, input: {status: "paid", total: {amount: "100.00", currency: "EUR"}}) { status total { amount } }
		}`, map[string]any{"id": id})
		if at(t, d, "first", "status") != "sent" || at(t, d, "second", "status") != "paid" || at(t, d, "second", "total", "amount") != "100.00" {
			t.Fatalf("updates %v", d)
		}
		got = rest(t, in.URL, u.aliceAcme, "/api/v2/invoices/"+id).(map[string]any)
		if got["status"] != "paid" || at(t, got, "total", "amount") != "100.00" || got["customer_id"] != "cus_acme_002" || got["issue_date"] != "2026-03-01" {
			t.Fatalf("after the updates REST reads %v", got)
		}

		d = query(t, in.URL, u.aliceAcme, `mutation($id: ID!) { deleteInvoice(id: $id) }`, map[string]any{"id": id})
		if d["deleteInvoice"] != true {
			t.Fatalf("delete: %v", d)
		}
		if s := restStatus(t, in.URL, u.aliceAcme, "/api/v2/invoices/"+id); s != 404 {
			t.Fatalf("REST after the delete: %d", s)
		}
		// deleting it again: NOT_FOUND at the field
		a = post(t, in.URL, u.aliceAcme, request{Query: `mutation($id: ID!) { deleteInvoice(id: $id) }`, Variables: map[string]any{"id": id}}, nil)
		if a.Status != 200 || a.code() != "NOT_FOUND" || at(t, a.data(t), "deleteInvoice") != nil {
			t.Fatalf("second delete: %s", a)
		}
		// and another company's invoice cannot be changed by acme's admin
		a = post(t, in.URL, u.aliceAcme, request{Query: `mutation { updateInvoice(id: "inv_globex_0005", input: {status: "paid"}) { id status } }`}, nil)
		if a.Status != 200 || a.code() != "NOT_FOUND" || at(t, a.data(t), "updateInvoice") != nil {
			t.Fatalf("acme updating globex's invoice: %s", a)
		}
	})
}
