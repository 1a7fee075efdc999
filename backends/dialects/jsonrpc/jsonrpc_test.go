package jsonrpc

import (
	"encoding/json"
	"fmt"
	"io"
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

var (
	dialect = &Dialect{Backend: "catalog", Model: "product.product", Fields: []string{"name", "list_price"}}
	target  = &dialects.Target{Backend: "catalog", Version: "v1", BasePath: "/jsonrpc", Resource: "/catalog"}
)

type call struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	ID      int    `json:"id"`
	Params  struct {
		Model  string            `json:"model"`
		Method string            `json:"method"`
		Args   []json.RawMessage `json:"args"`
		Kwargs map[string]any    `json:"kwargs"`
	} `json:"params"`
}

func TestRewriteBatch(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/api/v1/catalog?page=3&limit=10&sort=-list_price,name&filter="+
		url.QueryEscape("name:contains:50%_off\\")+"&filter=list_price:ge:9.5&filter=active:eq:true&filter=barcode:eq:null&filter=default_code:startswith:AC&filter="+
		url.QueryEscape(`ref:eq:"007"`), nil)
	tr, err := dialect.Rewrite(r, target)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.URL.Path != "/jsonrpc" || r.URL.RawQuery != "" || r.Header.Get("Content-Type") != "application/json" || tr == nil {
		t.Fatalf("%s %s ct=%q", r.Method, r.URL, r.Header.Get("Content-Type"))
	}
	if r.Header.Get("Idempotency-Key") == "" {
		t.Fatal("a read sent as POST must be marked idempotent")
	}
	body, _ := io.ReadAll(r.Body)
	if int64(len(body)) != r.ContentLength {
		t.Fatalf("content length %d for %d bytes", r.ContentLength, len(body))
	}
	var batch []call
	if err := json.Unmarshal(body, &batch); err != nil || len(batch) != 2 {
		t.Fatalf("%s: %v", body, err)
	}
	read, count := batch[0], batch[1]
	if read.JSONRPC != "2.0" || read.Method != "call" || read.ID != 1 || read.Params.Model != "product.product" || read.Params.Method != "search_read" {
		t.Fatalf("read %+v", read)
	}
	if count.ID != 2 || count.Params.Method != "search_count" || len(count.Params.Kwargs) != 0 {
		t.Fatalf("count %+v", count)
	}
	wantDomain := `[["name","=like","%50\\%\\_off\\\\%"],["list_price",">=",9.5],["active","=",true],["barcode","=",null],["default_code","=like","AC%"],["ref","=","007"]]`
	if string(read.Params.Args[0]) != wantDomain || string(count.Params.Args[0]) != wantDomain {
		t.Fatalf("domain\n got %s\nwant %s", read.Params.Args[0], wantDomain)
	}
	kw := read.Params.Kwargs
	if kw["offset"] != 20.0 || kw["limit"] != 10.0 || kw["order"] != "list_price desc, name asc" {
		t.Fatalf("kwargs %v", kw)
	}
	if f, _ := kw["fields"].([]any); len(f) != 2 || f[0] != "name" {
		t.Fatalf("fields %v", kw["fields"])
	}
}

func TestRewriteIn(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/api/v1/catalog?limit=200&filter=active:eq:true&filter="+
		url.QueryEscape(`id:in:"prd_1",7,"a,\"b\"",2026-01-31,false,-1.5`), nil)
	if _, err := dialect.Rewrite(r, target); err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	var batch []call
	if err := json.Unmarshal(body, &batch); err != nil || len(batch) != 2 {
		t.Fatalf("%s: %v", body, err)
	}
	want := `[["active","=",true],["id","in",["prd_1",7,"a,\"b\"","2026-01-31",false,-1.5]]]`
	for _, c := range batch {
		if string(c.Params.Args[0]) != want {
			t.Fatalf("domain\n got %s\nwant %s", c.Params.Args[0], want)
		}
	}
	// the values come back as typed JSON
	var domain [][]any
	if err := json.Unmarshal(batch[0].Params.Args[0], &domain); err != nil {
		t.Fatal(err)
	}
	vals, _ := domain[1][2].([]any)
	if len(vals) != 6 || vals[0] != "prd_1" || vals[1] != 7.0 || vals[2] != `a,"b"` || vals[4] != false {
		t.Fatalf("values %#v", domain[1][2])
	}
	_, err := dialect.Rewrite(httptest.NewRequest("GET", "/x?filter=id:in:1,,2", nil), target)
	if ce, ok := contract.AsError(err); !ok || ce.Status != 400 || ce.Field != "filter" {
		t.Fatalf("empty element: %v", err)
	}
}

func TestRewriteItemAndRefusals(t *testing.T) {
	t.Parallel()
	tg := *target
	tg.ID = "42"
	r := httptest.NewRequest("GET", "/api/v1/catalog/42", nil)
	if _, err := dialect.Rewrite(r, &tg); err != nil {
		t.Fatal(err)
	}
	var one call
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &one); err != nil || string(one.Params.Args[0]) != `[["id","=",42]]` || one.Params.Kwargs["limit"] != 1.0 {
		t.Fatalf("%s %v", body, err)
	}
	tg.ID = "prd_1"
	r = httptest.NewRequest("GET", "/x", nil)
	_, _ = dialect.Rewrite(r, &tg)
	body, _ = io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &one)
	if string(one.Params.Args[0]) != `[["id","=","prd_1"]]` {
		t.Fatalf("%s", body)
	}
	for _, c := range []struct {
		method, url string
		status      int
	}{
		{"POST", "/x", 405}, {"DELETE", "/x", 405}, {"GET", "/x?status=paid", 400}, {"GET", "/x?filter=a:eq", 400},
	} {
		_, err := dialect.Rewrite(httptest.NewRequest(c.method, c.url, nil), target)
		if ce, ok := contract.AsError(err); !ok || ce.Status != c.status {
			t.Errorf("%s %s: %v", c.method, c.url, err)
		}
	}
}

func translate(tr *translator, status int, body string) envelope.Result {
	return tr.Translate(&envelope.Answer{Status: status, Body: []byte(body)})
}

// Odoo's documented search_read result shape (External API, "Search and
// read"), answered as a batch together with search_count; the members may
// come in any order (JSON-RPC 2.0 §6).
func TestTranslateBatch(t *testing.T) {
	t.Parallel()
	body := `[
	  {"jsonrpc": "2.0", "id": 2, "result": 12},
	  {"jsonrpc": "2.0", "id": 1, "result": [
	    {"comment": false, "country_id": [21, "Belgium"], "id": 7, "name": "Agrolait"},
	    {"comment": false, "country_id": [76, "France"], "id": 18, "name": "Axelor"}]}
	]`
	res := translate(&translator{page: 2, limit: 5}, 200, body)
	var items []map[string]any
	if err := json.Unmarshal(res.Data, &items); err != nil || len(items) != 2 || items[0]["name"] != "Agrolait" {
		t.Fatalf("%s %v", res.Data, err)
	}
	if p := res.Pagination; p == nil || p.Total != 12 || !p.HasNext || p.Page != 2 {
		t.Fatalf("%+v", res.Pagination)
	}
	res = translate(&translator{page: 3, limit: 5}, 200, `[{"jsonrpc":"2.0","id":"1","result":[{"id":11}]},{"jsonrpc":"2.0","id":"2","result":11}]`)
	if res.Pagination.HasNext || res.Pagination.Total != 11 {
		t.Fatalf("%+v", res.Pagination)
	}
	if res := translate(&translator{page: 1, limit: 5}, 200, `[{"jsonrpc":"2.0","id":1,"result":[]}]`); res.Status != 502 {
		t.Fatalf("missing count: %+v", res)
	}
}

// The error examples of the JSON-RPC 2.0 specification (§7).
func TestTranslateSpecErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`, 502, contract.CodeUpstreamUnavailable},
		{`{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`, 502, contract.CodeUpstreamUnavailable},
		{`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`, 502, contract.CodeUpstreamUnavailable},
		{`{"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}, "id": 1}`, 400, contract.CodeBadRequest},
		// a batch the server rejects as a whole, and one with an error member (§7 batch example)
		{`[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]`, 502, contract.CodeUpstreamUnavailable},
		{`[{"jsonrpc": "2.0", "result": 19, "id": 2}, {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}, "id": 1}]`, 400, contract.CodeBadRequest},
	} {
		res := translate(&translator{page: 1, limit: 5}, 200, c.body)
		if res.Status != c.status || len(res.Errors) != 1 || res.Errors[0].Code != c.code || res.Errors[0].Context["rpc_code"] == nil {
			t.Errorf("%s: %+v", c.body, res)
		}
	}
}

// Odoo's server error (odoo/http.py serialize_exception): the traceback in
// data.debug must never reach the client.
func TestTranslateOdooErrors(t *testing.T) {
	t.Parallel()
	for name, status := range map[string]int{
		"odoo.exceptions.AccessError": 403, "odoo.exceptions.MissingError": 404, "odoo.exceptions.ValidationError": 422,
		"odoo.exceptions.UserError": 400, "builtins.ValueError": 400, "psycopg2.OperationalError": 502,
	} {
		body := `{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"` + name +
			`","debug":"Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\"","message":"You are not allowed","arguments":["You are not allowed"],"context":{}}}}`
		res := translate(&translator{item: true}, 200, body)
		if res.Status != status || res.Errors[0].Message != "You are not allowed" || res.Errors[0].Context["exception"] != name {
			t.Errorf("%s: %+v", name, res)
		}
		b, _ := json.Marshal(res.Errors)
		if json.Valid(b) && (containsStr(string(b), "Traceback") || containsStr(string(b), "http.py")) {
			t.Errorf("%s: traceback leaked: %s", name, b)
		}
	}
}

func TestTranslateItem(t *testing.T) {
	t.Parallel()
	res := translate(&translator{item: true}, 200, `{"jsonrpc":"2.0","id":1,"result":[{"id":42,"name":"Chair"}]}`)
	if string(res.Data) != `{"id":42,"name":"Chair"}` || res.Pagination != nil {
		t.Fatalf("%+v", res)
	}
	res = translate(&translator{item: true}, 200, `{"jsonrpc":"2.0","id":1,"result":[]}`)
	if res.Status != 404 || res.Errors[0].Code != contract.CodeNotFound {
		t.Fatalf("%+v", res)
	}
	res = translate(&translator{item: true}, 503, `<html>down</html>`)
	if res.Status != 503 {
		t.Fatalf("%+v", res)
	}
	if res := translate(&translator{item: true}, 200, `{"jsonrpc":"2.0","id":1,"result":[}`); res.Status != 502 {
		t.Fatalf("%+v", res)
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkRewrite(b *testing.B) {
	raw := "page=2&limit=20&sort=-list_price&filter=name:contains:Chair&filter=list_price:gt:10"
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/catalog", RawQuery: raw}, Header: http.Header{}}
		if _, err := dialect.Rewrite(r, target); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslate(b *testing.B) {
	body := []byte(`[{"jsonrpc":"2.0","id":1,"result":[{"id":7,"name":"Agrolait"},{"id":18,"name":"Axelor"}]},{"jsonrpc":"2.0","id":2,"result":12}]`)
	tr := &translator{page: 1, limit: 2}
	b.ReportAllocs()
	for b.Loop() {
		if res := tr.Translate(&envelope.Answer{Status: 200, Body: body}); res.Pagination == nil {
			b.Fatal("no pagination")
		}
	}
}

func BenchmarkRewriteIn50(b *testing.B) {
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = strconv.Quote(fmt.Sprintf("prd_acme_%03d", i+1))
	}
	raw := "limit=200&filter=" + url.QueryEscape("id:in:"+strings.Join(ids, ","))
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/catalog", RawQuery: raw}, Header: http.Header{}}
		if _, err := dialect.Rewrite(r, target); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOffsetCursor(t *testing.T) {
	t.Parallel()
	d := &Dialect{Backend: "inventory", Model: "product.product"}
	tg := dialects.Target{Backend: "inventory", Version: "v1", BasePath: "/jsonrpc", Cursor: &envelope.Position{Kind: envelope.PosOffset, Value: "14"}}
	r := httptest.NewRequest("GET", "/x?limit=7", nil)
	tr, err := d.Rewrite(r, &tg)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(body), `"offset":14,"limit":7`) {
		t.Fatalf("%s", body)
	}
	res := tr.Translate(&envelope.Answer{Request: r, Status: 200, Body: []byte(`[{"jsonrpc":"2.0","id":1,"result":[{"id":1}]},{"jsonrpc":"2.0","id":2,"result":30}]`)})
	if p := res.Pagination; p.Page != 3 || !p.HasNext || res.Next != (envelope.Position{Kind: envelope.PosOffset, Value: "21"}) {
		t.Fatalf("%+v %+v", p, res.Next)
	}
	res = tr.Translate(&envelope.Answer{Request: r, Status: 200, Body: []byte(`[{"jsonrpc":"2.0","id":1,"result":[{"id":1}]},{"jsonrpc":"2.0","id":2,"result":21}]`)})
	if res.Pagination.HasNext || res.Next.Kind != "" {
		t.Fatalf("last: %+v", res)
	}
	tg.Cursor = &envelope.Position{Kind: envelope.PosSkipToken, Value: "x"}
	if _, err := d.Rewrite(httptest.NewRequest("GET", "/x", nil), &tg); err == nil {
		t.Fatal("a skiptoken accepted")
	}
}
