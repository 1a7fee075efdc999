package rest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
)

var (
	dialect = &Dialect{Backend: "invoices", FilterFields: []string{"status", "customer_id"}}
	target  = &dialects.Target{Backend: "invoices", Version: "v1", BasePath: "/v1", Resource: "/invoices"}
)

func TestRewrite(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/api/v1/invoices?page=2&limit=10&sort=-amount&filter=status:eq:paid&filter="+url.QueryEscape("customer_id:eq:a&b=c"), nil)
	tr, err := dialect.Rewrite(r, target)
	if err != nil || tr == nil {
		t.Fatal(err)
	}
	q := r.URL.Query()
	if r.URL.Path != "/v1/invoices" || q.Get("status") != "paid" || q.Get("customer_id") != "a&b=c" || q.Get("page") != "2" || q.Get("sort") != "-amount" || q.Has("filter") || q.Has("b") {
		t.Fatalf("%s ? %s", r.URL.Path, r.URL.RawQuery)
	}
	// an item, with a slash in its id kept inside its segment
	tg := *target
	tg.ID, tg.Sub = "inv/1", []string{"lines"}
	r = httptest.NewRequest("GET", "/x?other=1", nil)
	if _, err := dialect.Rewrite(r, &tg); err != nil || r.URL.EscapedPath() != "/v1/invoices/inv%2F1/lines" || r.URL.RawQuery != "other=1" {
		t.Fatalf("%s %s %v", r.URL.EscapedPath(), r.URL.RawQuery, err)
	}
}

func TestRewriteIn(t *testing.T) {
	t.Parallel()
	ids := `"cus_acme_001","a,b&c=d",cus_acme_008`
	r := httptest.NewRequest("GET", "/api/v1/invoices?limit=200&filter=status:eq:paid&filter="+url.QueryEscape("customer_id:in:"+ids), nil)
	if _, err := dialect.Rewrite(r, target); err != nil {
		t.Fatal(err)
	}
	q := r.URL.Query()
	if got := q["customer_id"]; !slices.Equal(got, []string{"cus_acme_001", "a,b&c=d", "cus_acme_008"}) || q.Get("status") != "paid" || q.Get("limit") != "200" || q.Has("filter") || q.Has("c") {
		t.Fatalf("%s", r.URL.RawQuery)
	}
	// one value is the same as eq
	r = httptest.NewRequest("GET", "/x?filter=status:in:paid", nil)
	if _, err := dialect.Rewrite(r, target); err != nil || r.URL.RawQuery != "status=paid" {
		t.Fatalf("%s %v", r.URL.RawQuery, err)
	}
	for _, q := range []string{
		"filter=amount:in:1,2",                           // not a filter field
		"filter=status:in:paid&filter=status:eq:sent",    // the field twice
		"filter=status:in:paid,sent&status=draft",        // and as a raw parameter
		"filter=status:in:paid,null",                     // null
		"filter=status:in:",                              // nothing
		"filter=" + url.QueryEscape(`status:in:"paid,x`), // an open quote
	} {
		_, err := dialect.Rewrite(httptest.NewRequest("GET", "/x?"+q, nil), target)
		if ce, ok := contract.AsError(err); !ok || ce.Status != 400 || ce.Field != "filter" {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestRewriteRefusals(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"filter=status:ne:paid", "filter=amount:eq:5", "filter=status:eq:null", "filter=status:eq:a&status=b", "limit=500", "page=0"} {
		r := httptest.NewRequest("GET", "/x?"+q, nil)
		_, err := dialect.Rewrite(r, target)
		if ce, ok := contract.AsError(err); !ok || ce.Status != 400 {
			t.Errorf("%s: %v", q, err)
		}
	}
	_, err := (&Dialect{Backend: "customers"}).Rewrite(httptest.NewRequest("GET", "/x?filter=name:eq:x", nil), target)
	if ce, ok := contract.AsError(err); !ok || ce.Message != "the customers backend (REST) takes no filters" {
		t.Fatalf("%v", err)
	}
}

func BenchmarkRewriteIn50(b *testing.B) {
	b.ReportAllocs()
	raw := "limit=200&filter=" + url.QueryEscape("customer_id:in:"+in50())
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/invoices", RawQuery: raw}}
		if _, err := dialect.Rewrite(r, target); err != nil {
			b.Fatal(err)
		}
	}
}

// in50 is the list GraphQL's executor sends for 50 related records.
func in50() string {
	var s strings.Builder
	for i := 1; i <= 50; i++ {
		if i > 1 {
			s.WriteByte(',')
		}
		s.WriteString(strconv.Quote(fmt.Sprintf("cus_acme_%03d", i)))
	}
	return s.String()
}

func BenchmarkRewrite(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/v1/invoices", RawQuery: "page=2&limit=10&sort=-amount"}}
		if _, err := dialect.Rewrite(r, target); err != nil {
			b.Fatal(err)
		}
	}
}
