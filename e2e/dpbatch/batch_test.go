// Package dpbatch drives erp_batch (POST /api/v1/batch) through the running
// gateway binary on Caddyfile.example: reads and writes over the REST,
// OData and JSON-RPC backends in one batch answered in request order, a
// forbidden item failing alone, the rate limit counting each item,
// dependsOn ordering and 424, the plan's item limit, and the sub-requests
// refused (a batch in a batch, the auth service).
package dpbatch

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// item is one sub-request.
type item struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      any               `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

// result is one item's answer.
type result struct {
	ID     string          `json:"id"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// envelope is the part of an envelope the tests read.
type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Errors  []struct {
		Code    string         `json:"code"`
		Field   string         `json:"field"`
		Message string         `json:"message"`
		Context map[string]any `json:"context"`
	} `json:"errors"`
	Meta struct {
		RequestID string `json:"request_id"`
		CompanyID string `json:"company_id"`
	} `json:"meta"`
}

func (e *envelope) code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// send posts a batch with token and returns the answer, its envelope and
// the items' results (when it succeeded).
func send(t *testing.T, base, token string, items []item) (*httpt.Response, *envelope, []result) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	resp := httpt.Do(t, http.MethodPost, base+"/api/v1/batch", httpt.JSON(t, map[string]any{"requests": items}), h)
	var e envelope
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		t.Fatalf("batch: not an envelope (%v): %d %.800s", err, resp.StatusCode, resp.Body)
	}
	var rs []result
	if resp.StatusCode == 200 {
		if !e.Success {
			t.Fatalf("200 without success: %.800s", resp.Body)
		}
		if err := json.Unmarshal(e.Data, &rs); err != nil {
			t.Fatalf("data is not a list of results (%v): %.800s", err, resp.Body)
		}
		if len(rs) != len(items) {
			t.Fatalf("%d results for %d items: %.800s", len(rs), len(items), resp.Body)
		}
		for i, r := range rs {
			if r.ID != items[i].ID {
				t.Fatalf("result %d is %q, want %q (request order): %.800s", i, r.ID, items[i].ID, resp.Body)
			}
		}
	}
	return resp, &e, rs
}

// sub decodes one result's body as an envelope.
func sub(t *testing.T, r result) *envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("item %s: body is not an envelope (%v): %d %.500s", r.ID, err, r.Status, r.Body)
	}
	return &e
}

// direct does one request outside a batch.
func direct(t *testing.T, method, url, token string, body []byte) *httpt.Response {
	t.Helper()
	return httpt.Do(t, method, url, body, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
}

func TestBatch(t *testing.T) {
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	acme := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access           // admin: reads and writes
	globexViewer := demoauth.Login(t, in.URL, "alice@acme.test", "globex").Access // viewer: reads only
	bob := demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access          // globex, plan free

	t.Run("mixed reads and writes through three dialects, in order", func(t *testing.T) {
		items := []item{
			{ID: "rest", Method: "GET", Path: "/api/v1/customers?limit=3"},
			{ID: "odata", Method: "GET", Path: "/api/v1/ledger?limit=2&sort=entry_no"},
			{ID: "jsonrpc", Method: "GET", Path: "/api/v1/inventory?limit=2"},
			{ID: "create", Method: "POST", Path: "/api/v2/invoices", Body: map[string]any{"customer_id": "cus_acme_001", "total": map[string]any{"amount": "12.50", "currency": "EUR"}}},
			{ID: "missing", Method: "GET", Path: "/api/v1/customers/cus_nope"},
		}
		resp, e, rs := send(t, in.URL, acme, items)
		if resp.StatusCode != 200 || e.Meta.CompanyID != "acme" {
			t.Fatalf("batch: %d %.800s", resp.StatusCode, resp.Body)
		}
		for i, want := range []int{200, 200, 200, 201, 404} {
			if rs[i].Status != want {
				t.Fatalf("item %s: %d, want %d: %.500s", rs[i].ID, rs[i].Status, want, rs[i].Body)
			}
			se := sub(t, rs[i])
			if se.Success != (want < 300) || se.Meta.RequestID == "" || se.Meta.RequestID == e.Meta.RequestID {
				t.Fatalf("item %s: envelope %.500s (batch request id %s)", rs[i].ID, rs[i].Body, e.Meta.RequestID)
			}
		}
		// each read equals the same request made directly
		for _, i := range []int{0, 1, 2} {
			d := direct(t, "GET", in.URL+items[i].Path, acme, nil)
			var de envelope
			if err := json.Unmarshal(d.Body, &de); err != nil || d.StatusCode != 200 {
				t.Fatalf("direct %s: %d %.300s", items[i].Path, d.StatusCode, d.Body)
			}
			if got := sub(t, rs[i]).Data; string(got) != string(de.Data) {
				t.Fatalf("item %s: data %.300s, direct %.300s", rs[i].ID, got, de.Data)
			}
		}
		var created struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sub(t, rs[3]).Data, &created); err != nil || created.ID == "" {
			t.Fatalf("create: %.500s", rs[3].Body)
		}
		if d := direct(t, "GET", in.URL+"/api/v2/invoices/"+created.ID, acme, nil); d.StatusCode != 200 {
			t.Fatalf("the invoice the batch created: %d %.300s", d.StatusCode, d.Body)
		}
	})

	t.Run("a forbidden item fails alone", func(t *testing.T) {
		_, _, rs := send(t, in.URL, globexViewer, []item{
			{ID: "read", Method: "GET", Path: "/api/v1/customers?limit=1"},
			{ID: "write", Method: "POST", Path: "/api/v2/invoices", Body: map[string]any{"customer_id": "cus_globex_001", "total": map[string]any{"amount": "1.00", "currency": "EUR"}}},
			{ID: "read2", Method: "GET", Path: "/api/v1/ledger?limit=1"},
		})
		if rs[0].Status != 200 || rs[2].Status != 200 {
			t.Fatalf("the reads: %d %d", rs[0].Status, rs[2].Status)
		}
		if rs[1].Status != 403 || sub(t, rs[1]).code() != "FORBIDDEN" {
			t.Fatalf("the viewer's write: %d %.500s", rs[1].Status, rs[1].Body)
		}
		if sub(t, rs[0]).Meta.CompanyID != "globex" {
			t.Fatalf("the read ran as %.300s, want globex", rs[0].Body)
		}
	})

	t.Run("the rate limit counts each item", func(t *testing.T) {
		remaining := func(r *httpt.Response) int {
			t.Helper()
			n, err := strconv.Atoi(r.Header.Get("X-RateLimit-Remaining"))
			if err != nil || r.StatusCode != 200 {
				t.Fatalf("X-RateLimit-Remaining %q: %d %.300s", r.Header.Get("X-RateLimit-Remaining"), r.StatusCode, r.Body)
			}
			return n
		}
		before := remaining(direct(t, "GET", in.URL+"/api/v1/customers?limit=1", bob, nil))
		_, _, rs := send(t, in.URL, bob, []item{
			{ID: "a", Method: "GET", Path: "/api/v1/customers?limit=1"},
			{ID: "b", Method: "GET", Path: "/api/v1/ledger?limit=1"},
			{ID: "c", Method: "GET", Path: "/api/v1/inventory?limit=1"},
		})
		for _, r := range rs {
			if r.Status != 200 {
				t.Fatalf("item %s: %d %.300s", r.ID, r.Status, r.Body)
			}
		}
		after := remaining(direct(t, "GET", in.URL+"/api/v1/customers?limit=1", bob, nil))
		if before-after != 4 {
			t.Fatalf("remaining %d then %d: want 3 items + 1 direct call = 4 counted", before, after)
		}
	})

	t.Run("dependsOn: order and 424", func(t *testing.T) {
		_, _, rs := send(t, in.URL, acme, []item{
			{ID: "last", Method: "GET", Path: "/api/v1/customers?limit=1", DependsOn: []string{"first", "bad"}},
			{ID: "first", Method: "GET", Path: "/api/v1/customers?limit=1"},
			{ID: "bad", Method: "GET", Path: "/api/v1/customers/cus_nope"},
			{ID: "after-first", Method: "GET", Path: "/api/v1/ledger?limit=1", DependsOn: []string{"first"}},
			{ID: "chain", Method: "GET", Path: "/api/v1/ledger?limit=1", DependsOn: []string{"last"}},
		})
		want := []int{424, 200, 404, 200, 424}
		for i, w := range want {
			if rs[i].Status != w {
				t.Fatalf("item %s: %d, want %d: %.500s", rs[i].ID, rs[i].Status, w, rs[i].Body)
			}
		}
		if c := sub(t, rs[0]).code(); c != "FAILED_DEPENDENCY" {
			t.Fatalf("424's code %q: %.300s", c, rs[0].Body)
		}
		for name, items := range map[string][]item{
			"cycle":     {{ID: "a", Method: "GET", Path: "/api/v1/customers", DependsOn: []string{"b"}}, {ID: "b", Method: "GET", Path: "/api/v1/customers", DependsOn: []string{"a"}}},
			"unknown":   {{ID: "a", Method: "GET", Path: "/api/v1/customers", DependsOn: []string{"z"}}},
			"duplicate": {{ID: "a", Method: "GET", Path: "/api/v1/customers"}, {ID: "a", Method: "GET", Path: "/api/v1/ledger"}},
		} {
			resp, e, _ := send(t, in.URL, acme, items)
			if resp.StatusCode != 400 || e.code() != "VALIDATION_FAILED" {
				t.Fatalf("%s: %d %.300s", name, resp.StatusCode, resp.Body)
			}
		}
	})

	t.Run("the plan's item limit", func(t *testing.T) {
		items := make([]item, 11)
		for i := range items {
			items[i] = item{ID: strconv.Itoa(i), Method: "GET", Path: "/api/v1/customers?limit=1"}
		}
		resp, e, _ := send(t, in.URL, bob, items) // free: 10
		if resp.StatusCode != 413 || e.code() != "PAYLOAD_TOO_LARGE" || e.Errors[0].Context["max_items"] != float64(10) || e.Errors[0].Context["plan"] != "free" {
			t.Fatalf("11 items on free: %d %.500s", resp.StatusCode, resp.Body)
		}
		if resp, _, rs := send(t, in.URL, acme, items); resp.StatusCode != 200 || rs[10].Status != 200 { // standard: 50
			t.Fatalf("11 items on standard: %d %.300s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("refused sub-requests answer alone", func(t *testing.T) {
		_, _, rs := send(t, in.URL, acme, []item{
			{ID: "recursion", Method: "POST", Path: "/api/v1/batch", Body: map[string]any{"requests": []item{{ID: "x", Method: "GET", Path: "/api/v1/customers"}}}},
			{ID: "recursion-case", Method: "POST", Path: "/API/V1/Batch"},
			{ID: "dots", Method: "POST", Path: "/api/v1/customers/../batch"},
			{ID: "auth", Method: "POST", Path: "/api/v1/auth/refresh", Body: map[string]any{}},
			{ID: "admin", Method: "GET", Path: "/api/v1/admin/users"},
			{ID: "outside", Method: "GET", Path: "/health/live"},
			{ID: "method", Method: "TRACE", Path: "/api/v1/customers"},
			{ID: "no-path", Method: "GET"},
			{ID: "credential", Method: "GET", Path: "/api/v1/customers", Headers: map[string]string{"Authorization": "Bearer " + bob}},
			{ID: "fine", Method: "GET", Path: "/api/v1/customers?limit=1"},
		})
		for _, r := range rs[:len(rs)-1] {
			if r.Status != 400 || sub(t, r).code() != "VALIDATION_FAILED" {
				t.Fatalf("item %s: %d %.300s", r.ID, r.Status, r.Body)
			}
		}
		if rs[len(rs)-1].Status != 200 {
			t.Fatalf("the fine item: %.300s", rs[len(rs)-1].Body)
		}
	})

	t.Run("the batch itself needs a credential", func(t *testing.T) {
		resp, e, _ := send(t, in.URL, "", []item{{ID: "a", Method: "GET", Path: "/api/v1/customers"}})
		if resp.StatusCode != 401 || e.code() != "UNAUTHENTICATED" {
			t.Fatalf("no credential: %d %.300s", resp.StatusCode, resp.Body)
		}
	})
}
