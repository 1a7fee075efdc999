package routing

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestInFilter: filter=field:in:… through the whole stack of
// Caddyfile.example (a demo user signed in, the edge assertion verified by
// the demo ERP), in each dialect: REST (repeated parameters), OData
// (`id in (…)`) and JSON-RPC (an Odoo `in` term). The exact records come
// back and nothing else; another company's ids in the list match nothing;
// a malformed list and one of 101 values are 400 BAD_REQUEST on `filter`.
// It is how GraphQL's executor fetches related records in one call.
func TestInFilter(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	acme := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)

	// list GETs path with query and returns the status, the envelope and
	// the ids of the data (sorted), checking that the total is the count.
	list := func(t *testing.T, who map[string]string, path string, query url.Values) (int, *httpt.Envelope, []string) {
		t.Helper()
		resp := httpt.Get(t, in.URL+path+"?"+query.Encode(), who)
		env := resp.Envelope(t)
		if resp.StatusCode != 200 {
			return resp.StatusCode, env, nil
		}
		var items []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(env.Data, &items); err != nil || env.Pagination == nil {
			t.Fatalf("%s?%s: %s", path, query.Encode(), resp.Body)
		}
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = it.ID
		}
		slices.Sort(ids)
		if env.Pagination.Total != int64(len(ids)) {
			t.Fatalf("%s?%s: total %d for %d items", path, query.Encode(), env.Pagination.Total, len(ids))
		}
		return resp.StatusCode, env, ids
	}
	inQuery := func(field string, vals ...string) url.Values {
		quoted := make([]string, len(vals))
		for i, v := range vals {
			quoted[i] = strconv.Quote(v)
		}
		return url.Values{"limit": {"200"}, "filter": {field + ":in:" + strings.Join(quoted, ",")}}
	}

	// each backend with two of acme's ids, one of globex's and a made-up one
	cases := []struct {
		name, path       string
		a, b, other, bad string
	}{
		{"customers (REST v2)", "/api/v2/customers", "cus_acme_001", "cus_acme_008", "cus_globex_001", "cus_acme_999"},
		{"customers (REST v1)", "/api/v1/customers", "cus_acme_002", "cus_acme_025", "cus_globex_002", "nope"},
		{"invoices (REST v2)", "/api/v2/invoices", "inv_acme_0003", "inv_acme_0120", "inv_globex_0001", "inv_acme_0121"},
		{"products (REST v2)", "/api/v2/products", "prd_acme_001", "prd_acme_030", "prd_globex_001", "prd_acme_031"},
		{"ledger (OData)", "/api/v1/ledger", "le_acme_0001", "le_acme_0064", "le_globex_0001", "O'Brien,x"},
		{"inventory (JSON-RPC)", "/api/v1/inventory", "prd_acme_003", "prd_acme_017", "prd_globex_003", `a "b"`},
	}
	for _, c := range cases {
		t.Run(c.name+": the exact records", func(t *testing.T) {
			status, env, ids := list(t, acme, c.path, inQuery("id", c.b, c.other, c.a, c.bad))
			if status != 200 || !slices.Equal(ids, []string{c.a, c.b}) {
				t.Fatalf("%d %v %+v", status, ids, env.Errors)
			}
			// one value
			if _, _, ids := list(t, acme, c.path, inQuery("id", c.b)); !slices.Equal(ids, []string{c.b}) {
				t.Fatalf("one value: %v", ids)
			}
		})
		t.Run(c.name+": another company's ids match nothing", func(t *testing.T) {
			if status, env, ids := list(t, acme, c.path, inQuery("id", c.other, c.bad)); status != 200 || len(ids) != 0 {
				t.Fatalf("%d %v %+v", status, ids, env.Errors)
			}
		})
		t.Run(c.name+": malformed lists and 101 values are refused", func(t *testing.T) {
			over := make([]string, 101)
			for i := range over {
				over[i] = fmt.Sprintf("%q", fmt.Sprintf("id_%03d", i))
			}
			for _, f := range []string{
				"id:in:",                                   // nothing
				"id:in:" + c.a + ",," + c.b,                // an empty value
				"id:in:" + c.a + ",",                       // a trailing comma
				`id:in:"` + c.a + `,` + c.b,                // an open quote
				`id:in:"` + c.a + `"x`,                     // text after the quote
				"id:in:" + c.a + ",null",                   // null
				"id:in:" + strings.Join(over, ","),         // 101 values
				"id:in:" + strings.Repeat("x", 257) + ",a", // a value over 256 bytes
			} {
				resp := httpt.Get(t, in.URL+c.path+"?"+url.Values{"filter": {f}}.Encode(), acme)
				env := resp.Envelope(t)
				if resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" || env.Errors[0].Field != "filter" {
					t.Errorf("%.60s: %d %s", f, resp.StatusCode, resp.Body)
				}
			}
		})
	}

	t.Run("100 values are the most, and are read", func(t *testing.T) {
		ids := make([]string, 100)
		for i := range ids {
			ids[i] = fmt.Sprintf("cus_acme_%03d", i+1) // acme has 25 customers
		}
		status, env, got := list(t, acme, "/api/v2/customers", inQuery("id", ids...))
		if status != 200 || len(got) != 25 || got[0] != "cus_acme_001" || got[24] != "cus_acme_025" {
			t.Fatalf("%d %d %+v", status, len(got), env.Errors)
		}
	})

	t.Run("invoices by customer_id in (REST): the union of the customers' invoices", func(t *testing.T) {
		var want []string
		for _, cus := range []string{"cus_acme_001", "cus_acme_008"} {
			_, _, ids := list(t, acme, "/api/v2/invoices", url.Values{"limit": {"200"}, "filter": {"customer_id:eq:" + cus}})
			if len(ids) == 0 {
				t.Fatalf("%s has no invoices", cus)
			}
			want = append(want, ids...)
		}
		slices.Sort(want)
		status, env, got := list(t, acme, "/api/v2/invoices", inQuery("customer_id", "cus_acme_008", "cus_globex_001", "cus_acme_001"))
		if status != 200 || !slices.Equal(got, want) {
			t.Fatalf("%d %v, want %v %+v", status, got, want, env.Errors)
		}
		// and with another filter: both hold
		var items []struct {
			Status     string `json:"status"`
			CustomerID string `json:"customer_id"`
		}
		q := inQuery("customer_id", "cus_acme_008", "cus_acme_001")
		q.Add("filter", "status:eq:paid")
		_, env, _ = list(t, acme, "/api/v2/invoices", q)
		if err := json.Unmarshal(env.Data, &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Status != "paid" || (it.CustomerID != "cus_acme_001" && it.CustomerID != "cus_acme_008") {
				t.Fatalf("in and eq: %+v", it)
			}
		}
	})

	t.Run("signed into the other company, acme's ids match nothing", func(t *testing.T) {
		globex := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "globex").Access)
		for _, c := range cases {
			status, env, ids := list(t, globex, c.path, inQuery("id", c.a, c.b, c.other))
			if status != 200 || !slices.Equal(ids, []string{c.other}) {
				t.Fatalf("%s: %d %v %+v", c.name, status, ids, env.Errors)
			}
		}
	})

	t.Run("REST: in on a field the backend does not filter on is refused", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v2/customers?"+url.Values{"filter": {"email:in:a@b.c,d@e.f"}}.Encode(), acme)
		if env := resp.Envelope(t); resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" || env.Errors[0].Field != "filter" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Body)
		}
	})
}
