package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/backends/edgeassert"
)

var testNow = time.Date(2026, 3, 15, 12, 30, 0, 0, time.UTC)

// newTestServer verifies assertions, as erp_demo does.
func newTestServer() *Server {
	return New(WithClock(func() time.Time { return testNow }), WithAssertions(sharedVerifier))
}

var sharedVerifier = func() *edgeassert.Verifier {
	v, err := edgeassert.New(context.Background(), edgeassert.Config{Keys: testKeys, Issuer: testIssuer, AudienceFor: DefaultBackends.For})
	if err != nil {
		panic(err)
	}
	return v
}()

// call sends one request to s with an assertion for company; company ""
// sends none.
func call(t *testing.T, s http.Handler, method, target, company, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if company != "" {
		assert(req, company)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, rec.Body)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, rec.Body)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" || p.Status != rec.Code {
		t.Fatalf("incomplete problem %+v for status %d", p, rec.Code)
	}
	return p
}

func TestCompanyScoping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, company, body string
		status                            int
		problemType                       string
	}{
		{"no assertion", "GET", "/v1/invoices", "", "", 401, ""},
		{"unknown company", "GET", "/v1/invoices", "initech", "", 404, "unknown-company"},
		{"other company's invoice", "GET", "/v1/invoices/inv_globex_0001", "acme", "", 404, "not-found"},
		{"nonexistent invoice", "GET", "/v1/invoices/inv_acme_9999", "acme", "", 404, "not-found"},
		{"other company's customer v2", "GET", "/v2/customers/cus_acme_001", "globex", "", 404, "not-found"},
		{"put other company's", "PUT", "/v1/customers/cus_globex_001", "acme", `{"name":"x","email":"a@b.co"}`, 404, "not-found"},
		{"patch other company's", "PATCH", "/v1/products/prd_globex_001", "acme", `{"stock":1}`, 404, "not-found"},
		{"delete other company's", "DELETE", "/v1/invoices/inv_globex_0002", "acme", "", 404, "not-found"},
		{"unknown version", "GET", "/v3/invoices", "acme", "", 404, "not-found"},
		{"unknown collection", "GET", "/v1/orders", "acme", "", 404, "not-found"},
		{"too deep", "GET", "/v1/invoices/inv_acme_0001/lines", "acme", "", 404, "not-found"},
		{"root", "GET", "/", "acme", "", 404, "not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), tt.method, tt.path, tt.company, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			want := problemTypeBase + tt.problemType
			if tt.problemType == "" {
				want = "about:blank" // edgeassert's refusal
			}
			if p := decodeProblem(t, rec); p.Type != want {
				t.Errorf("type = %q, want %s", p.Type, tt.problemType)
			}
		})
	}
}

func TestOtherCompanyLooksNonexistent(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	for _, method := range []string{"GET", "PUT", "PATCH", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			body := ""
			if method == "PUT" || method == "PATCH" {
				body = `{"status":"paid"}`
			}
			other := call(t, s, method, "/v1/invoices/inv_globex_0003", "acme", body)
			missing := call(t, s, method, "/v1/invoices/inv_zzzzzz_0003", "acme", body)
			po, pm := decodeProblem(t, other), decodeProblem(t, missing)
			po.Detail = strings.Replace(po.Detail, "inv_globex_0003", "ID", 1)
			pm.Detail = strings.Replace(pm.Detail, "inv_zzzzzz_0003", "ID", 1)
			if other.Code != http.StatusNotFound || !reflect.DeepEqual(po, pm) {
				t.Fatalf("other company %d %+v, nonexistent %d %+v", other.Code, po, missing.Code, pm)
			}
		})
	}
	// and the globex invoice is untouched
	if rec := call(t, s, "GET", "/v1/invoices/inv_globex_0003", "globex", ""); rec.Code != 200 {
		t.Fatalf("globex's own invoice: %d", rec.Code)
	}
}

func TestCountsPerCompany(t *testing.T) {
	t.Parallel()
	tests := []struct {
		company, collection, total string
	}{
		{"acme", "invoices", "120"}, {"acme", "customers", "25"}, {"acme", "products", "30"},
		{"globex", "invoices", "37"}, {"globex", "customers", "8"}, {"globex", "products", "12"},
	}
	for _, tt := range tests {
		t.Run(tt.company+"/"+tt.collection, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), "GET", "/v2/"+tt.collection+"?limit=200", tt.company, "")
			if got := rec.Header().Get("X-Total-Count"); got != tt.total {
				t.Fatalf("X-Total-Count = %q, want %s", got, tt.total)
			}
			var items []map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if id, _ := it["id"].(string); !strings.Contains(id, "_"+tt.company+"_") {
					t.Fatalf("foreign record %v in %s", id, tt.company)
				}
			}
		})
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target string
		count        int
		page, per    string
		total        string
		link         string
		firstID      string
	}{
		{"defaults", "/v1/invoices", 50, "1", "50", "120",
			`</v1/invoices?limit=50&page=1>; rel="first", </v1/invoices?limit=50&page=2>; rel="next", </v1/invoices?limit=50&page=3>; rel="last"`,
			"inv_acme_0001"},
		{"middle page", "/v1/invoices?page=2", 50, "2", "50", "120",
			`</v1/invoices?limit=50&page=1>; rel="first", </v1/invoices?limit=50&page=1>; rel="prev", </v1/invoices?limit=50&page=3>; rel="next", </v1/invoices?limit=50&page=3>; rel="last"`,
			"inv_acme_0051"},
		{"last page", "/v1/invoices?page=3", 20, "3", "50", "120",
			`</v1/invoices?limit=50&page=1>; rel="first", </v1/invoices?limit=50&page=2>; rel="prev", </v1/invoices?limit=50&page=3>; rel="last"`,
			"inv_acme_0101"},
		{"beyond last", "/v1/invoices?page=9", 0, "9", "50", "120",
			`</v1/invoices?limit=50&page=1>; rel="first", </v1/invoices?limit=50&page=3>; rel="prev", </v1/invoices?limit=50&page=3>; rel="last"`,
			""},
		{"keeps other params", "/v2/invoices?status=paid&limit=10&sort=-total", 10, "1", "10", "52",
			`</v2/invoices?limit=10&page=1&sort=-total&status=paid>; rel="first", </v2/invoices?limit=10&page=2&sort=-total&status=paid>; rel="next", </v2/invoices?limit=10&page=6&sort=-total&status=paid>; rel="last"`,
			""},
		{"empty filter", "/v1/invoices?status=void", 0, "1", "50", "0",
			`</v1/invoices?limit=50&page=1&status=void>; rel="first", </v1/invoices?limit=50&page=1&status=void>; rel="last"`,
			""},
		{"single page", "/v1/customers?limit=200", 25, "1", "200", "25",
			`</v1/customers?limit=200&page=1>; rel="first", </v1/customers?limit=200&page=1>; rel="last"`,
			"cus_acme_001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), "GET", tt.target, "acme", "")
			if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			h := rec.Header()
			if h.Get("X-Page") != tt.page || h.Get("X-Per-Page") != tt.per || h.Get("X-Total-Count") != tt.total {
				t.Errorf("X-Page %s X-Per-Page %s X-Total-Count %s", h.Get("X-Page"), h.Get("X-Per-Page"), h.Get("X-Total-Count"))
			}
			if h.Get("Link") != tt.link {
				t.Errorf("Link\n got %s\nwant %s", h.Get("Link"), tt.link)
			}
			var items []map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
				t.Fatalf("body is not an array: %v", err)
			}
			if items == nil || len(items) != tt.count {
				t.Fatalf("%d items (nil=%v), want %d", len(items), items == nil, tt.count)
			}
			if tt.firstID != "" && items[0]["id"] != tt.firstID {
				t.Errorf("first id %v, want %s", items[0]["id"], tt.firstID)
			}
		})
	}
}

func TestListSortAndFilter(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	rec := call(t, s, "GET", "/v1/invoices?status=overdue&sort=-amount&limit=200", "acme", "")
	var items []invoiceV1
	if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil || len(items) == 0 {
		t.Fatalf("%v %s", err, rec.Body)
	}
	for i, it := range items {
		if it.Status != "overdue" {
			t.Fatalf("status %s in overdue filter", it.Status)
		}
		if i > 0 && items[i-1].Amount < it.Amount {
			t.Fatalf("not sorted by -amount at %d", i)
		}
	}
	rec = call(t, s, "GET", "/v2/customers?sort=display_name,-created", "acme", "")
	var cs []customerV2
	if err := json.Unmarshal(rec.Body.Bytes(), &cs); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(cs); i++ {
		if cs[i-1].DisplayName > cs[i].DisplayName {
			t.Fatalf("not sorted by display_name at %d", i)
		}
	}
}

func TestListBadParams(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, target, field string }{
		{"page zero", "/v1/invoices?page=0", "page"},
		{"page text", "/v1/invoices?page=two", "page"},
		{"page overflow", "/v1/invoices?page=99999999999999999999999", "page"},
		{"limit over max", "/v1/invoices?limit=201", "limit"},
		{"limit negative", "/v1/invoices?limit=-1", "limit"},
		{"limit float", "/v1/invoices?limit=1.5", "limit"},
		{"unknown sort", "/v1/invoices?sort=colour", "sort"},
		{"v2 name in v1", "/v1/invoices?sort=total", "sort"},
		{"v1 name in v2", "/v2/customers?sort=-name", "sort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), "GET", tt.target, "acme", "")
			if rec.Code != 400 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			p := decodeProblem(t, rec)
			if len(p.Errors) != 1 || p.Errors[0].Field != tt.field {
				t.Fatalf("errors %+v, want field %s", p.Errors, tt.field)
			}
		})
	}
}

func TestShapes(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, path, company, want string }{
		{"invoice v1", "/v1/invoices/inv_acme_0001", "acme",
			`{"id":"inv_acme_0001","number":"ACME-0001","customer_id":"cus_acme_001","amount":1234.5,"currency":"EUR","status":"paid","issued_at":"2026-01-05"}`},
		{"invoice v2", "/v2/invoices/inv_acme_0001", "acme",
			`{"id":"inv_acme_0001","number":"ACME-0001","customer_id":"cus_acme_001","total":{"amount":"1234.50","currency":"EUR"},"status":"paid","issue_date":"2026-01-05"}`},
		{"invoice v1 globex", "/v1/invoices/inv_globex_0001", "globex",
			`{"id":"inv_globex_0001","number":"GLOBEX-0001","customer_id":"cus_globex_001","amount":1234.5,"currency":"USD","status":"paid","issued_at":"2026-01-05"}`},
		{"customer v1", "/v1/customers/cus_acme_001", "acme",
			`{"id":"cus_acme_001","name":"Blue Traders 1","email":"billing1@blue-traders.example","created_at":"2025-06-02T09:00:00Z"}`},
		{"customer v2", "/v2/customers/cus_acme_001", "acme",
			`{"id":"cus_acme_001","display_name":"Blue Traders 1","email":"billing1@blue-traders.example","created":"2025-06-02T09:00:00Z"}`},
		{"product v1", "/v1/products/prd_acme_002", "acme",
			`{"id":"prd_acme_002","sku":"ACME-GAD-002","name":"Gadget Standard","price":17.49,"currency":"EUR","stock":17}`},
		{"product v2", "/v2/products/prd_acme_002", "acme",
			`{"id":"prd_acme_002","sku":"ACME-GAD-002","name":"Gadget Standard","unit_price":{"amount":"17.49","currency":"EUR"},"stock":17}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), "GET", tt.path, tt.company, "")
			if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Body.String(); got != tt.want {
				t.Fatalf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	type fe struct{ field, code string }
	tests := []struct {
		name, method, path, body string
		want                     []fe
	}{
		{"invoice v1 every field bad", "POST", "/v1/invoices",
			`{"customer_id":"cus_acme_999","amount":0,"currency":"JPY","status":"void","issued_at":"05/01/2026","colour":"red"}`,
			[]fe{{"customer_id", "not_found"}, {"amount", "must_be_positive"}, {"currency", "invalid_enum"}, {"status", "invalid_enum"}, {"issued_at", "invalid_date"}, {"colour", "unknown_field"}}},
		{"invoice v1 missing", "POST", "/v1/invoices", `{}`,
			[]fe{{"customer_id", "required"}, {"amount", "required"}, {"currency", "required"}}},
		{"invoice v1 types", "POST", "/v1/invoices", `{"customer_id":1,"amount":"12","currency":"EUR"}`,
			[]fe{{"customer_id", "invalid_type"}, {"amount", "invalid_type"}}},
		{"invoice v1 precision", "POST", "/v1/invoices", `{"customer_id":"cus_acme_001","amount":1.005,"currency":"EUR"}`,
			[]fe{{"amount", "too_many_decimals"}}},
		{"invoice other company's customer", "POST", "/v1/invoices", `{"customer_id":"cus_globex_001","amount":5,"currency":"EUR"}`,
			[]fe{{"customer_id", "not_found"}}},
		{"invoice v2 money", "POST", "/v2/invoices", `{"customer_id":"cus_acme_001","total":{"amount":"-3.00","currency":"XXX"}}`,
			[]fe{{"total.amount", "must_be_positive"}, {"total.currency", "invalid_enum"}}},
		{"invoice v2 amount as number", "POST", "/v2/invoices", `{"customer_id":"cus_acme_001","total":{"amount":3,"currency":"EUR"}}`,
			[]fe{{"total.amount", "invalid_type"}}},
		{"invoice v2 v1 field", "POST", "/v2/invoices", `{"customer_id":"cus_acme_001","amount":3,"currency":"EUR"}`,
			[]fe{{"total", "required"}, {"amount", "unknown_field"}, {"currency", "unknown_field"}}},
		{"invoice v2 bad decimal", "POST", "/v2/invoices", `{"customer_id":"cus_acme_001","total":{"amount":"1e3","currency":"EUR"}}`,
			[]fe{{"total.amount", "invalid_decimal"}}},
		{"customer", "POST", "/v1/customers", `{"name":"  ","email":"not-an-email"}`,
			[]fe{{"name", "must_not_be_empty"}, {"email", "invalid_email"}}},
		{"customer v2", "POST", "/v2/customers", `{"name":"x","email":"a@b.example"}`,
			[]fe{{"display_name", "required"}, {"name", "unknown_field"}}},
		{"product duplicate sku", "POST", "/v1/products", `{"sku":"ACME-GAD-002","name":"Dup","price":-1,"stock":-2}`,
			[]fe{{"sku", "not_unique"}, {"price", "must_not_be_negative"}, {"stock", "must_not_be_negative"}}},
		{"product v2", "POST", "/v2/products", `{"sku":"","name":"N","unit_price":"9.99"}`,
			[]fe{{"sku", "must_not_be_empty"}, {"unit_price", "invalid_type"}}},
		{"patch null", "PATCH", "/v1/invoices/inv_acme_0001", `{"status":null}`,
			[]fe{{"status", "invalid_type"}}},
		{"put needs all", "PUT", "/v1/customers/cus_acme_001", `{"name":"Only name"}`,
			[]fe{{"email", "required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), tt.method, tt.path, "acme", tt.body)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			p := decodeProblem(t, rec)
			if p.Type != "https://erpgate.dev/problems/validation" || p.Title != "Validation failed" {
				t.Errorf("type %q title %q", p.Type, p.Title)
			}
			var got []fe
			for _, e := range p.Errors {
				if e.Message == "" {
					t.Errorf("no message for %s", e.Field)
				}
				got = append(got, fe{e.Field, e.Code})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("errors\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestValidationMessage(t *testing.T) {
	t.Parallel()
	rec := call(t, newTestServer(), "POST", "/v1/invoices", "acme", `{"customer_id":"cus_acme_001","amount":-1,"currency":"EUR"}`)
	want := `{"type":"https://erpgate.dev/problems/validation","title":"Validation failed","status":422,"detail":"amount must be greater than 0","errors":[{"field":"amount","code":"must_be_positive","message":"amount must be greater than 0"}]}`
	if rec.Body.String() != want {
		t.Fatalf("\n got %s\nwant %s", rec.Body, want)
	}
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"malformed", "application/json", `{"name":`, 400},
		{"trailing data", "application/json", `{} {}`, 400},
		{"array", "application/json", `[1]`, 400},
		{"null", "application/json", `null`, 400},
		{"empty", "application/json", ``, 400},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 413},
		{"not json", "text/plain", `{}`, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("POST", "/v1/customers", strings.NewReader(tt.body))
			assert(req, "acme")
			req.Header.Set("Content-Type", tt.contentType)
			if tt.name == "too large" {
				req.ContentLength = -1 // force reading, not the Content-Length shortcut
			}
			rec := httptest.NewRecorder()
			newTestServer().ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			decodeProblem(t, rec)
		})
	}
}

func TestCRUD(t *testing.T) {
	t.Parallel()
	s := newTestServer()

	rec := call(t, s, "POST", "/v2/invoices", "acme", `{"customer_id":"cus_acme_002","total":{"amount":"99.90","currency":"GBP"}}`)
	if rec.Code != 201 || rec.Header().Get("Location") != "/v2/invoices/inv_acme_0121" {
		t.Fatalf("create: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	want := `{"id":"inv_acme_0121","number":"ACME-0121","customer_id":"cus_acme_002","total":{"amount":"99.90","currency":"GBP"},"status":"draft","issue_date":"2026-03-15"}`
	if rec.Body.String() != want {
		t.Fatalf("created\n got %s\nwant %s", rec.Body, want)
	}
	if rec := call(t, s, "GET", "/v1/invoices/inv_acme_0121", "acme", ""); !strings.Contains(rec.Body.String(), `"amount":99.9,"currency":"GBP"`) {
		t.Fatalf("v1 view of created: %s", rec.Body)
	}
	if rec := call(t, s, "GET", "/v1/invoices/inv_acme_0121", "globex", ""); rec.Code != 404 {
		t.Fatalf("globex sees acme's new invoice: %d", rec.Code)
	}
	if rec := call(t, s, "GET", "/v1/invoices", "globex", ""); rec.Header().Get("X-Total-Count") != "37" {
		t.Fatalf("globex count changed: %s", rec.Header().Get("X-Total-Count"))
	}

	rec = call(t, s, "PATCH", "/v1/invoices/inv_acme_0121", "acme", `{"status":"sent","number":"ignored"}`)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"number":"ACME-0121"`) || !strings.Contains(rec.Body.String(), `"status":"sent"`) {
		t.Fatalf("patch: %d %s", rec.Code, rec.Body)
	}
	rec = call(t, s, "PUT", "/v1/invoices/inv_acme_0121", "acme", `{"customer_id":"cus_acme_003","amount":10,"currency":"EUR","status":"paid","issued_at":"2026-02-01"}`)
	if want := `{"id":"inv_acme_0121","number":"ACME-0121","customer_id":"cus_acme_003","amount":10,"currency":"EUR","status":"paid","issued_at":"2026-02-01"}`; rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("put: %d\n got %s\nwant %s", rec.Code, rec.Body, want)
	}

	if rec := call(t, s, "DELETE", "/v1/customers/cus_acme_003", "acme", ""); rec.Code != 409 {
		t.Fatalf("delete referenced customer: %d", rec.Code)
	}
	if rec := call(t, s, "DELETE", "/v1/invoices/inv_acme_0121", "acme", ""); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, s, "GET", "/v1/invoices/inv_acme_0121", "acme", ""); rec.Code != 404 {
		t.Fatalf("after delete: %d", rec.Code)
	}

	rec = call(t, s, "POST", "/v1/customers", "globex", `{"name":"Initech","email":"ap@initech.example"}`)
	if rec.Code != 201 || rec.Header().Get("Location") != "/v1/customers/cus_globex_009" ||
		!strings.Contains(rec.Body.String(), `"created_at":"2026-03-15T12:30:00Z"`) {
		t.Fatalf("create customer: %d %s %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	rec = call(t, s, "POST", "/v1/products", "globex", `{"sku":"ACME-GAD-002","name":"Same SKU as acme","price":0}`)
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), `"currency":"USD","stock":0`) {
		t.Fatalf("sku unique per company only: %d %s", rec.Code, rec.Body)
	}
	// keeping its own sku on update is fine
	if rec := call(t, s, "PATCH", "/v2/products/prd_acme_002", "acme", `{"sku":"ACME-GAD-002","stock":3}`); rec.Code != 200 {
		t.Fatalf("patch own sku: %d %s", rec.Code, rec.Body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct{ method, path, allow string }{
		{"DELETE", "/v1/invoices", "GET, HEAD, POST"},
		{"POST", "/v1/invoices/inv_acme_0001", "GET, HEAD, PUT, PATCH, DELETE"},
		{"POST", "/_demo/ping", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), tt.method, tt.path, "acme", "")
			if rec.Code != 405 || rec.Header().Get("Allow") != tt.allow {
				t.Fatalf("%d Allow %q", rec.Code, rec.Header().Get("Allow"))
			}
			decodeProblem(t, rec)
		})
	}
}

func TestDeterministicSeed(t *testing.T) {
	t.Parallel()
	a := call(t, New(), "GET", "/v1/invoices?limit=200", "acme", "").Body.String()
	b := call(t, New(), "GET", "/v1/invoices?limit=200", "acme", "").Body.String()
	if a != b {
		t.Fatal("two servers disagree on the seed")
	}
	// every status is present
	for _, st := range invoiceStatuses {
		if rec := call(t, New(), "GET", "/v1/invoices?status="+st, "globex", ""); rec.Header().Get("X-Total-Count") == "0" {
			t.Errorf("no %s invoice in globex", st)
		}
	}
}
