package demo

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ids lists the id of every item of a REST list or OData/JSON-RPC result.
func ids(t *testing.T, body []byte) []string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// TestRESTRepeatedParamsAreAnyOf: every collection, in both versions,
// filters by id, and a repeated filter parameter matches any of its values
// (how the REST dialect sends filter=field:in:…); another company's ids and
// made-up ones match nothing.
func TestRESTRepeatedParamsAreAnyOf(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	for _, c := range []struct{ path, a, b, other string }{
		{"invoices", "inv_acme_0007", "inv_acme_0100", "inv_globex_0001"},
		{"customers", "cus_acme_001", "cus_acme_008", "cus_globex_001"},
		{"products", "prd_acme_002", "prd_acme_030", "prd_globex_002"},
	} {
		for _, v := range []string{v1, v2} {
			target := "/" + v + "/" + c.path + "?id=" + c.b + "&id=" + c.other + "&id=" + c.a + "&id=nope&id=" + c.a + "&limit=1"
			rec := call(t, s, "GET", target, "acme", "")
			if rec.Code != 200 || rec.Header().Get("X-Total-Count") != "2" {
				t.Fatalf("%s: %d total %q %s", target, rec.Code, rec.Header().Get("X-Total-Count"), rec.Body)
			}
			if got := ids(t, rec.Body.Bytes()); !slices.Equal(got, []string{c.a}) {
				t.Fatalf("%s: page 1 %v", target, got)
			}
			// the next page's link keeps every id
			if next := linkQuery(t, rec.Header().Get("Link"), "next"); !slices.Equal(next["id"], []string{c.b, c.other, c.a, "nope", c.a}) {
				t.Fatalf("%s: next link's ids %v", target, next["id"])
			}
			rec = call(t, s, "GET", "/"+v+"/"+c.path+"?id="+c.b+"&id="+c.other+"&id="+c.a+"&page=2&limit=1", "acme", "")
			if got := ids(t, rec.Body.Bytes()); !slices.Equal(got, []string{c.b}) {
				t.Fatalf("%s page 2: %v", c.path, got)
			}
			// only another company's ids: nothing
			rec = call(t, s, "GET", "/"+v+"/"+c.path+"?id="+c.other, "acme", "")
			if got := ids(t, rec.Body.Bytes()); rec.Code != 200 || len(got) != 0 || rec.Header().Get("X-Total-Count") != "0" {
				t.Fatalf("%s other company's id: %d %v", c.path, rec.Code, got)
			}
		}
	}
}

// linkQuery is the query of the Link header's rel link.
func linkQuery(t *testing.T, header, rel string) url.Values {
	t.Helper()
	for part := range strings.SplitSeq(header, ", ") {
		target, r, ok := strings.Cut(part, ">; rel=")
		if ok && r == strconv.Quote(rel) {
			u, err := url.Parse(strings.TrimPrefix(target, "<"))
			if err != nil {
				t.Fatal(err)
			}
			return u.Query()
		}
	}
	t.Fatalf("no %s link in %s", rel, header)
	return nil
}

func TestRESTInvoiceFiltersAnyOf(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	list := func(query string) []invoiceV1 {
		t.Helper()
		rec := call(t, s, "GET", "/v1/invoices?limit=200&"+query, "acme", "")
		var items []invoiceV1
		if err := json.Unmarshal(rec.Body.Bytes(), &items); rec.Code != 200 || err != nil {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
		}
		if n, _ := strconv.Atoi(rec.Header().Get("X-Total-Count")); n != len(items) {
			t.Fatalf("%s: total %d for %d items", query, n, len(items))
		}
		return items
	}
	one, two := list("customer_id=cus_acme_001"), list("customer_id=cus_acme_008")
	both := list("customer_id=cus_acme_008&customer_id=cus_acme_001&customer_id=cus_globex_001")
	if len(one) == 0 || len(two) == 0 || len(both) != len(one)+len(two) {
		t.Fatalf("customer_id any-of: %d + %d != %d", len(one), len(two), len(both))
	}
	for _, it := range both {
		if it.CustomerID != "cus_acme_001" && it.CustomerID != "cus_acme_008" {
			t.Fatalf("customer %s matched", it.CustomerID)
		}
	}
	paid, sent := list("status=paid"), list("status=sent")
	if ps := list("status=paid&status=sent"); len(paid) == 0 || len(sent) == 0 || len(ps) != len(paid)+len(sent) {
		t.Fatalf("status any-of: %d + %d != %d", len(paid), len(sent), len(ps))
	}
	// filters still all hold: ids and a status
	st := one[0].Status
	for _, it := range list("id=" + one[0].ID + "&id=" + two[0].ID + "&status=" + st) {
		if it.Status != st || (it.ID != one[0].ID && it.ID != two[0].ID) {
			t.Fatalf("id and status: %+v", it)
		}
	}
	// products: currency and sku
	rec := call(t, s, "GET", "/v2/products?sku=ACME-GEA-006&sku=nope&currency=EUR&currency=USD", "acme", "")
	if got := ids(t, rec.Body.Bytes()); len(got) != 1 {
		t.Fatalf("products sku any-of: %v", got)
	}
}

func odataGet(t *testing.T, s *Server, set, filter string) (int, []string, string) {
	t.Helper()
	q := strings.ReplaceAll(url.Values{"$filter": {filter}, "$count": {"true"}, "$top": {"200"}}.Encode(), "+", "%20")
	rec := call(t, s, "GET", "/odata/v1/"+set+"?"+q, "acme", "")
	if rec.Code != 200 {
		return rec.Code, nil, rec.Body.String()
	}
	var out struct {
		Value json.RawMessage `json:"value"`
		Count int             `json:"@odata.count"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	got := ids(t, out.Value)
	if out.Count != len(got) {
		t.Fatalf("%s: count %d for %d", filter, out.Count, len(got))
	}
	return rec.Code, got, ""
}

func TestODataIn(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	for filter, want := range map[string][]string{
		"id in ('le_acme_0005','le_globex_0001','le_acme_0001')":                 {"le_acme_0001", "le_acme_0005"},
		"id in ('le_acme_0002')":                                                 {"le_acme_0002"},
		"id in ('le_globex_0001','nope')":                                        {},
		"id in ('le_acme_0001','le_acme_0002') and not (id in ('le_acme_0001'))": {"le_acme_0002"},
	} {
		status, got, body := odataGet(t, s, "LedgerEntries", filter)
		if status != 200 || !slices.Equal(got, want) {
			t.Fatalf("%s: %d %v, want %v %s", filter, status, got, want, body)
		}
	}
	// in and another comparison: the intersection
	_, posted, _ := odataGet(t, s, "LedgerEntries", "status eq 'posted'")
	_, draft, _ := odataGet(t, s, "LedgerEntries", "status eq 'draft'")
	if len(posted) == 0 || len(draft) == 0 {
		t.Fatalf("seed: %d posted, %d draft", len(posted), len(draft))
	}
	_, got, _ := odataGet(t, s, "LedgerEntries", "status eq 'posted' and id in ('"+posted[0]+"','"+draft[0]+"')")
	if !slices.Equal(got, posted[:1]) {
		t.Fatalf("status and in: %v, want %v", got, posted[:1])
	}
	// typed literals: numbers against numbers, text against text
	_, all, _ := odataGet(t, s, "Products", "stock ge 0")
	_, got, _ = odataGet(t, s, "Products", "sku in ('ACME-GEA-006') or stock in (-1, 1e9)")
	if len(all) != 30 || len(got) != 1 {
		t.Fatalf("Products: %d, %v", len(all), got)
	}
	for _, bad := range []string{
		"id in 'le_acme_0001'",       // no list
		"id in ()",                   // empty list
		"id in ('le_acme_0001',)",    // a dangling comma
		"id in ('le_acme_0001' 'x')", // no comma
		"id in ('le_acme_0001'",      // unclosed
		"account in (4000)",          // a number against text
		"nope in ('x')",              // unknown property
	} {
		if status, _, body := odataGet(t, s, "LedgerEntries", bad); status != 400 || !strings.Contains(body, "InvalidFilter") {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
}

// TestJSONRPCInAsTheDialectSendsIt: the domain term the JSON-RPC dialect
// makes of filter=id:in:… ([field, "in", [typed values]]).
func TestJSONRPCInAsTheDialectSendsIt(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	domain := `[["id","in",["prd_acme_003","prd_globex_001","prd_acme_001"]],["stock","in",[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99]]]`
	all := `[["id","in",["prd_acme_003","prd_globex_001","prd_acme_001"]]]`
	body := `[{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"product.product","method":"search_read","args":[` + all +
		`],"kwargs":{"offset":0,"limit":200,"order":"id asc"}}},{"jsonrpc":"2.0","method":"call","id":2,"params":{"model":"product.product","method":"search_count","args":[` + all + `],"kwargs":{}}},` +
		`{"jsonrpc":"2.0","method":"call","id":3,"params":{"model":"product.product","method":"search_count","args":[` + domain + `],"kwargs":{}}}]`
	rec := call(t, s, "POST", "/jsonrpc", "acme", body)
	var out []struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out) != 3 {
		t.Fatalf("%v %s", err, rec.Body)
	}
	if got := ids(t, out[0].Result); !slices.Equal(got, []string{"prd_acme_001", "prd_acme_003"}) || string(out[1].Result) != "2" {
		t.Fatalf("in: %v, count %s (%s)", got, out[1].Result, rec.Body)
	}
	// the stock term keeps only products with a stock below 100
	rec = call(t, s, "POST", "/jsonrpc", "acme", `{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"product.product","method":"search_read","args":[[["id","in",["prd_acme_001","prd_acme_003"]]]],"kwargs":{"fields":["id","stock"]}}}`)
	var one struct {
		Result []struct {
			Stock float64 `json:"stock"`
		} `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || len(one.Result) != 2 {
		t.Fatalf("%v %s", err, rec.Body)
	}
	below := 0 // stocks are whole numbers ≥ 0
	for _, r := range one.Result {
		if r.Stock < 100 {
			below++
		}
	}
	if string(out[2].Result) != strconv.Itoa(below) {
		t.Fatalf("id in and stock in: %s, want %d", out[2].Result, below)
	}
}
