package routing

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
)

// The same products behind three dialects: REST (/v1/products), OData
// (/odata/v1/Products) and JSON-RPC (product.product).
var productBackends = []string{"products", "products-odata", "catalog"}

// TestSameQueryAllDialects is the second "Must show" of issue 6: the same
// page, limit, sort and filter give the same envelope — data and
// pagination — from all three dialects.
func TestSameQueryAllDialects(t *testing.T) {
	t.Parallel()
	in := start(t, nil)

	get := func(t *testing.T, backend, query string) (int, *httpt.Envelope) {
		t.Helper()
		resp := httpt.Get(t, in.URL+"/api/v1/"+backend+"?"+query, nil)
		return resp.StatusCode, resp.Envelope(t)
	}
	// same checks that every backend gives the same data and pagination for
	// query; wantTotal -1 means "some total > 0", with the item count and
	// has_next then derived from it.
	same := func(t *testing.T, query string, backends []string, wantTotal int64, wantItems int, wantNext bool) {
		t.Helper()
		var first []map[string]any
		for i, b := range backends {
			status, env := get(t, b, query)
			if status != 200 || env.Pagination == nil {
				t.Fatalf("%s?%s: %d %+v", b, query, status, env)
			}
			var items []map[string]any
			if err := json.Unmarshal(env.Data, &items); err != nil {
				t.Fatalf("%s: data %s", b, env.Data)
			}
			p := env.Pagination
			if wantTotal < 0 {
				if p.Total <= 0 {
					t.Fatalf("%s?%s: nothing matched", b, query)
				}
				wantTotal = p.Total
				off := int64(p.Page-1) * int64(p.Limit)
				wantItems = int(max(0, min(int64(p.Limit), p.Total-off)))
				wantNext = off+int64(p.Limit) < p.Total
			}
			q, _ := url.ParseQuery(query)
			if fmt.Sprint(p.Page) != orDefault(q.Get("page"), "1") || fmt.Sprint(p.Limit) != orDefault(q.Get("limit"), "50") ||
				p.Total != wantTotal || p.HasNext != wantNext || len(items) != wantItems {
				t.Fatalf("%s?%s: pagination %+v with %d items; want total %d, %d items, has_next %v", b, query, *p, len(items), wantTotal, wantItems, wantNext)
			}
			if i == 0 {
				first = items
				continue
			}
			if !reflect.DeepEqual(items, first) {
				t.Fatalf("%s?%s differs from %s:\n%v\n%v", b, query, backends[0], items, first)
			}
		}
	}

	t.Run("page, limit, sort and eq filter: all three", func(t *testing.T) {
		same(t, "page=2&limit=5&sort=-price&filter=currency:eq:EUR", productBackends, 30, 5, true)
		same(t, "page=6&limit=5&sort=-price,name&filter=currency:eq:EUR", productBackends, 30, 5, false)
		same(t, "page=7&limit=5&sort=name", productBackends, 30, 0, false)
		same(t, "limit=4&sort=stock,-sku&filter=sku:eq:ACME-GEA-006", productBackends, 1, 1, false)
		same(t, "", productBackends, 30, 30, false)
	})

	t.Run("richer filters: OData and JSON-RPC agree, REST refuses", func(t *testing.T) {
		same(t, "limit=3&sort=-price&filter=price:gt:100&filter=name:contains:Pro", productBackends[1:], -1, 0, false)
		same(t, "page=2&limit=3&sort=-price&filter=price:gt:100&filter=name:contains:Pro", productBackends[1:], -1, 0, false)
		same(t, "limit=10&sort=sku&filter=name:startswith:Ge&filter=stock:le:200", productBackends[1:], -1, 0, false)
		same(t, "limit=10&filter=price:ge:49.99&filter=price:lt:100&filter=sku:ne:ACME-WID-001", productBackends[1:], -1, 0, false)
		status, env := get(t, "products", "filter=name:contains:Pro")
		if status != 400 || env.Code() != "BAD_REQUEST" || env.Errors[0].Field != "filter" {
			t.Fatalf("REST contains: %d %+v", status, env.Errors)
		}
		status, env = get(t, "products", "filter=stock:eq:5")
		if status != 400 || env.Errors[0].Field != "filter" {
			t.Fatalf("REST filter on an unlisted field: %d %+v", status, env.Errors)
		}
	})

	t.Run("filter values are escaped for each language", func(t *testing.T) {
		// O'Brien & Sons: a quote for OData, an ampersand for the URL
		q := "limit=50&filter=" + url.QueryEscape("description:eq:Refund to O'Brien & Sons")
		status, env := get(t, "ledger", q)
		var items []map[string]any
		if status != 200 || json.Unmarshal(env.Data, &items) != nil || len(items) == 0 || int64(len(items)) != env.Pagination.Total {
			t.Fatalf("ledger: %d %s", status, env.Data)
		}
		for _, it := range items {
			if it["description"] != "Refund to O'Brien & Sons" {
				t.Fatalf("ledger filter matched %v", it)
			}
		}
		// LIKE wildcards match literally in JSON-RPC, and quotes in OData
		for _, b := range productBackends[1:] {
			for _, v := range []string{"%", "_", "Pro'"} {
				status, env := get(t, b, "filter="+url.QueryEscape("name:contains:"+v))
				if status != 200 || env.Pagination.Total != 0 {
					t.Fatalf("%s contains %q: %d total %v", b, v, status, env.Pagination)
				}
			}
		}
		// a number as text compares as text: account codes are strings
		status, env = get(t, "ledger", "filter="+url.QueryEscape(`account:eq:"4000"`)+"&limit=1")
		if status != 200 || env.Pagination.Total == 0 {
			t.Fatalf("quoted text: %d %+v", status, env)
		}
		status, env = get(t, "ledger", "filter=account:eq:4000")
		if status != 400 {
			t.Fatalf("number against a text field must be the backend's error, not a different query: %d %s", status, env.Data)
		}
	})

	t.Run("items", func(t *testing.T) {
		var first map[string]any
		for _, b := range productBackends {
			resp := httpt.Get(t, in.URL+"/api/v1/"+b+"/prd_acme_007", nil)
			env := resp.Envelope(t)
			var item map[string]any
			if resp.StatusCode != 200 || env.Pagination != nil || json.Unmarshal(env.Data, &item) != nil {
				t.Fatalf("%s item: %d %s", b, resp.StatusCode, resp.Body)
			}
			if first == nil {
				first = item
			} else if !reflect.DeepEqual(item, first) {
				t.Fatalf("%s item %v != %v", b, item, first)
			}
			resp = httpt.Get(t, in.URL+"/api/v1/"+b+"/prd_globex_001", nil) // another company's id
			if env := resp.Envelope(t); resp.StatusCode != 404 || env.Code() != "NOT_FOUND" {
				t.Fatalf("%s other company's item: %d %s", b, resp.StatusCode, resp.Body)
			}
		}
	})

	t.Run("errors from each protocol become envelope errors", func(t *testing.T) {
		for _, b := range productBackends {
			status, env := get(t, b, "sort=colour")
			if status != 400 || env.Success || len(env.Errors) == 0 || env.Errors[0].Message == "" {
				t.Fatalf("%s bad sort: %d %+v", b, status, env.Errors)
			}
			for _, e := range env.Errors {
				if fmt.Sprint(e.Context["debug"]) != "<nil>" || containsTraceback(e.Message) {
					t.Fatalf("%s leaked internals: %+v", b, e)
				}
			}
		}
		for _, q := range []string{"limit=0", "limit=201", "page=x", "filter=nope", "filter=a:like:b", "sort=a,a", "%24filter=x"} {
			for _, b := range productBackends[1:] {
				status, env := get(t, b, q)
				if status != 400 || env.Code() != "BAD_REQUEST" {
					t.Fatalf("%s?%s: %d %+v", b, q, status, env.Errors)
				}
			}
		}
		resp := httpt.Do(t, "POST", in.URL+"/api/v1/catalog", []byte(`{"name":"x"}`), nil)
		if env := resp.Envelope(t); resp.StatusCode != 405 || env.Success || resp.Header.Get("Allow") != "GET" {
			t.Fatalf("POST to JSON-RPC: %d %v %s", resp.StatusCode, resp.Header, resp.Body)
		}
	})
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func containsTraceback(s string) bool {
	return len(s) > 0 && (contains(s, "Traceback") || contains(s, "File \""))
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
