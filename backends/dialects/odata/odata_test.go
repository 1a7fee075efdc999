package odata

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

var target = &dialects.Target{Backend: "ledger", Version: "v1", BasePath: "/odata/v1", Resource: "/LedgerEntries"}

func rewrite(t *testing.T, method, rawURL string, tg *dialects.Target) (*http.Request, envelope.Translator, error) {
	t.Helper()
	r := httptest.NewRequest(method, rawURL, nil)
	tr, err := (&Dialect{Backend: "ledger"}).Rewrite(r, tg)
	return r, tr, err
}

func TestRewriteQuery(t *testing.T) {
	t.Parallel()
	r, _, err := rewrite(t, "GET", "/api/v1/ledger?page=3&limit=10&sort=-amount,posted_on&filter="+
		url.QueryEscape("description:eq:O'Brien")+"&filter=amount:gt:100&filter=posted_on:ge:2026-01-31&filter="+
		url.QueryEscape("account:eq:\"4000\"")+"&filter=note:contains:it''s&filter=x:ne:null&filter=ok:eq:true", target)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL.Path != "/odata/v1/LedgerEntries" {
		t.Fatalf("path %q", r.URL.Path)
	}
	q := r.URL.Query()
	want := map[string]string{
		"$count":   "true",
		"$top":     "10",
		"$skip":    "20",
		"$orderby": "amount desc,posted_on asc",
		"$filter":  "description eq 'O''Brien' and amount gt 100 and posted_on ge 2026-01-31 and account eq '4000' and contains(note,'it''''s') and x ne null and ok eq true",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(q) != len(want) {
		t.Fatalf("extra parameters: %v", q)
	}
	if contains(r.URL.RawQuery, "+") {
		t.Fatalf("spaces must be %%20, not +: %s", r.URL.RawQuery)
	}
	// page 1 has no $skip
	r, _, _ = rewrite(t, "GET", "/x?page=1&limit=5", target)
	if r.URL.Query().Has("$skip") || r.URL.Query().Get("$top") != "5" {
		t.Fatalf("%s", r.URL.RawQuery)
	}
	// no page: server-driven paging, the page size in Prefer
	r, _, _ = rewrite(t, "GET", "/x?limit=5", target)
	if r.URL.Query().Has("$skip") || r.URL.Query().Has("$top") || r.Header.Get("Prefer") != "odata.maxpagesize=5" {
		t.Fatalf("%s %v", r.URL.RawQuery, r.Header)
	}
}

func TestRewriteIn(t *testing.T) {
	t.Parallel()
	r, _, err := rewrite(t, "GET", "/x?limit=200&filter=status:eq:posted&filter="+
		url.QueryEscape(`id:in:"le_acme_0001",O'Brien,"a,b",4000,2026-01-31,true`), target)
	if err != nil {
		t.Fatal(err)
	}
	want := `status eq 'posted' and id in ('le_acme_0001','O''Brien','a,b',4000,2026-01-31,true)`
	if got := r.URL.Query().Get("$filter"); got != want {
		t.Fatalf("$filter\n got %s\nwant %s", got, want)
	}
	if contains(r.URL.RawQuery, "+") {
		t.Fatalf("spaces must be %%20, not +: %s", r.URL.RawQuery)
	}
	if got := Filter([]dialects.Filter{{Field: "id", Op: dialects.OpIn, Values: []dialects.Value{{Kind: dialects.String, Text: "x"}}}}); got != "id in ('x')" {
		t.Fatalf("one value: %s", got)
	}
	_, _, err = rewrite(t, "GET", "/x?filter=id:in:a,null", target)
	if ce, ok := contract.AsError(err); !ok || ce.Status != 400 || ce.Field != "filter" {
		t.Fatalf("null in in: %v", err)
	}
}

func TestRewriteRefusesRawODataAndUnknown(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"$filter=1%20eq%201", "$select=Name", "status=paid", "filter=a:like:b"} {
		_, _, err := rewrite(t, "GET", "/x?"+q, target)
		if ce, ok := contract.AsError(err); !ok || ce.Status != 400 {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestRewriteItemKey(t *testing.T) {
	t.Parallel()
	tg := *target
	tg.ID = "O'Brien/1"
	r, _, err := rewrite(t, "GET", "/x", &tg)
	if err != nil || r.URL.Path != "/odata/v1/LedgerEntries('O''Brien/1')" || r.URL.EscapedPath() != "/odata/v1/LedgerEntries%28%27O%27%27Brien%2F1%27%29" {
		t.Fatalf("%q %q %v", r.URL.Path, r.URL.EscapedPath(), err)
	}
	tg.ID = "42"
	r, _, _ = rewrite(t, "GET", "/x", &tg)
	if r.URL.Path != "/odata/v1/LedgerEntries(42)" {
		t.Fatalf("%q", r.URL.Path)
	}
	if _, _, err := rewrite(t, "GET", "/x?$expand=Lines", &tg); err == nil {
		t.Fatal("query on an item accepted")
	}
}

// The collection answer of the OData JSON Format spec (v4.01, §12 "Collection
// of Entities", with server-driven paging and the 4.0 and 4.01 spellings).
const specCollection = `{
  "@odata.context": "http://host/service/$metadata#Customers",
  "@odata.count": 37,
  "value": [
    {"@odata.etag": "W/\"MjAxMy0wNS0yN1QxMTo1OFo=\"", "ID": "ALFKI", "CompanyName": "Alfreds Futterkiste", "Address@odata.type": "#ODataDemo.Address"},
    {"ID": "ANATR", "CompanyName": "Ana Trujillo Emparedados y helados"}
  ],
  "@odata.nextLink": "Customers?$skiptoken=ANATR"
}`

func TestTranslateSpecCollection(t *testing.T) {
	t.Parallel()
	tr := &translator{page: 1, limit: 2}
	res := tr.Translate(&envelope.Answer{Status: 200, Body: []byte(specCollection)})
	var items []map[string]any
	if err := json.Unmarshal(res.Data, &items); err != nil || len(items) != 2 {
		t.Fatalf("data %s %v", res.Data, err)
	}
	if _, ok := items[0]["@odata.etag"]; ok || items[0]["ID"] != "ALFKI" || len(items[0]) != 2 {
		t.Fatalf("annotations kept: %v", items[0])
	}
	if p := res.Pagination; p == nil || p.Total != 37 || !p.HasNext || p.Page != 1 || p.Limit != 2 {
		t.Fatalf("pagination %+v", res.Pagination)
	}
	// 4.01 spellings, IEEE754Compatible count, last page
	res = (&translator{page: 19, limit: 2}).Translate(&envelope.Answer{Status: 200,
		Body: []byte(`{"@context":"$metadata#Customers","@count":"37","value":[{"ID":"WOLZA"}]}`)})
	if p := res.Pagination; p == nil || p.Total != 37 || p.HasNext {
		t.Fatalf("4.01 pagination %+v", res.Pagination)
	}
	// an empty page
	res = (&translator{page: 5, limit: 10}).Translate(&envelope.Answer{Status: 200, Body: []byte(`{"@odata.count":3,"value":[]}`)})
	if string(res.Data) != "[]" || res.Pagination.Total != 3 || res.Pagination.HasNext {
		t.Fatalf("empty page: %s %+v", res.Data, res.Pagination)
	}
	// no value array: not an OData collection
	res = (&translator{page: 1, limit: 10}).Translate(&envelope.Answer{Status: 200, Body: []byte(`{"d":{"results":[]}}`)})
	if res.Status != 502 {
		t.Fatalf("non-OData answer: %+v", res)
	}
}

func TestTranslateSpecEntity(t *testing.T) {
	t.Parallel()
	body := `{"@odata.context":"http://host/service/$metadata#Customers/$entity","@odata.etag":"W/\"1\"","ID":"ALFKI","CompanyName":"Alfreds Futterkiste"}`
	res := (&translator{item: true}).Translate(&envelope.Answer{Status: 200, Body: []byte(body)})
	if string(res.Data) != `{"ID":"ALFKI","CompanyName":"Alfreds Futterkiste"}` || res.Pagination != nil {
		t.Fatalf("%s %+v", res.Data, res.Pagination)
	}
}

// The error response of the OData JSON Format spec (§21.1).
const specError = `{
  "error": {
    "code": "err123",
    "message": "Unsupported functionality",
    "target": "query",
    "details": [
      {"code": "forty-two", "target": "$search", "message": "$search query option not supported"}
    ],
    "innererror": {"trace": ["callmethod@Main.c", "stack trace here"], "context": {"secret": "internal"}}
  }
}`

func TestTranslateSpecError(t *testing.T) {
	t.Parallel()
	res := (&translator{}).Translate(&envelope.Answer{Status: 501, Body: []byte(specError)})
	if res.Status != 501 || len(res.Errors) != 2 {
		t.Fatalf("%+v", res)
	}
	e := res.Errors[0]
	if e.Code != contract.CodeInternal || e.Message != "Unsupported functionality" || e.Field != "query" || e.Context["upstream_code"] != "err123" {
		t.Fatalf("%+v", e)
	}
	if d := res.Errors[1]; d.Field != "$search" || d.Message != "$search query option not supported" || d.Context["upstream_code"] != "forty-two" {
		t.Fatalf("%+v", d)
	}
	b, _ := json.Marshal(res.Errors)
	if contains(string(b), "stack trace") || contains(string(b), "secret") {
		t.Fatalf("innererror leaked: %s", b)
	}
	// OData v2/v3 (e.g. SAP) message object
	res = (&translator{}).Translate(&envelope.Answer{Status: 400, Body: []byte(`{"error":{"code":"SY/530","message":{"lang":"en","value":"Invalid key"}}}`)})
	if res.Errors[0].Message != "Invalid key" || res.Errors[0].Code != contract.CodeBadRequest {
		t.Fatalf("%+v", res.Errors)
	}
	// not OData: problem details still read
	res = (&translator{}).Translate(&envelope.Answer{Status: 404, Body: []byte(`{"type":"about:blank","title":"Not Found","status":404,"detail":"no such entry"}`)})
	if res.Errors[0].Code != contract.CodeNotFound || res.Errors[0].Message != "no such entry" {
		t.Fatalf("%+v", res.Errors)
	}
}

func TestCountItems(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{`[]`: 0, ` [ ] `: 0, `[1]`: 1, `[{"a":[1,2]},"x,y",3]`: 3, `["\"],"]`: 1} {
		if got := countItems([]byte(in)); got != want {
			t.Errorf("%s: %d, want %d", in, got, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkRewrite(b *testing.B) {
	d := &Dialect{Backend: "ledger"}
	raw := "page=2&limit=20&sort=-amount&filter=status:eq:posted&filter=amount:gt:100"
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/ledger", RawQuery: raw}}
		if _, err := d.Rewrite(r, target); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslate(b *testing.B) {
	body := []byte(`{"@odata.context":"$metadata#LedgerEntries","@odata.count":64,"value":[{"id":"le_1","amount":12.5,"status":"posted"},{"id":"le_2","amount":-3,"status":"draft"}]}`)
	tr := &translator{page: 1, limit: 2}
	b.ReportAllocs()
	for b.Loop() {
		if res := tr.Translate(&envelope.Answer{Status: 200, Body: body}); res.Pagination == nil {
			b.Fatal("no pagination")
		}
	}
}

func BenchmarkRewriteIn50(b *testing.B) {
	d := &Dialect{Backend: "ledger"}
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = strconv.Quote(fmt.Sprintf("le_acme_%04d", i+1))
	}
	raw := "limit=200&filter=" + url.QueryEscape("id:in:"+strings.Join(ids, ","))
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/ledger", RawQuery: raw}}
		if _, err := d.Rewrite(r, target); err != nil {
			b.Fatal(err)
		}
	}
}

func TestETagLifted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, header, want string
	}{
		{"annotation only", `{"@odata.etag":"\"abc\"","id":"1"}`, "", `"abc"`},
		{"4.01 form", `{"@etag":"W/\"7\"","id":"1"}`, "", `W/"7"`},
		{"header wins", `{"@odata.etag":"\"abc\"","id":"1"}`, `"hdr"`, `"hdr"`},
		{"malformed annotation", `{"@odata.etag":"abc def","id":"1"}`, "", ""},
		{"none", `{"id":"1"}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("ETag", tc.header)
			}
			tr := &translator{item: true}
			res := tr.Translate(&envelope.Answer{Status: 200, Header: h, Body: []byte(tc.body)})
			if got := h.Get("ETag"); got != tc.want {
				t.Fatalf("ETag %q, want %q", got, tc.want)
			}
			if strings.Contains(string(res.Data), "etag") {
				t.Fatalf("annotation left in data: %s", res.Data)
			}
		})
	}
}
