package dialects

import (
	"net/url"
	"testing"

	"github.com/erpgate/erpgate/contract"
)

func TestParseQuery(t *testing.T) {
	t.Parallel()
	q, err := ParseQuery(url.Values{"page": {"3"}, "limit": {"20"}, "sort": {"-price,name"},
		"filter": {"status:eq:paid", `account:eq:"4000"`, "amount:gt:-12.5e1", "posted_on:ge:2026-01-31", "note:eq:a:b:c", "x:ne:null", "ok:eq:true"},
		"zeta":   {"1"}, "alpha": {"2"}})
	if err != nil {
		t.Fatal(err)
	}
	if q.Page != 3 || q.Limit != 20 || q.Offset() != 40 || len(q.Sort) != 2 || !q.Sort[0].Desc || q.Sort[1].Field != "name" {
		t.Fatalf("%+v", q)
	}
	want := []Value{{String, "paid"}, {String, "4000"}, {Number, "-12.5e1"}, {Date, "2026-01-31"}, {String, "a:b:c"}, {Null, ""}, {Bool, "true"}}
	for i, w := range want {
		if q.Filters[i].Value != w {
			t.Fatalf("filter %d: %+v, want %+v", i, q.Filters[i].Value, w)
		}
	}
	if len(q.Other) != 2 || q.Other[0] != "alpha" {
		t.Fatalf("other %v", q.Other)
	}
	d, _ := ParseQuery(url.Values{})
	if d.Page != 1 || d.Limit != DefaultLimit || d.PageSet || d.LimitSet {
		t.Fatalf("defaults %+v", d)
	}
}

func TestParseQueryRefusals(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]url.Values{
		"page 0":           {"page": {"0"}},
		"page text":        {"page": {"two"}},
		"page twice":       {"page": {"1", "2"}},
		"limit 201":        {"limit": {"201"}},
		"limit 0":          {"limit": {"0"}},
		"empty sort":       {"sort": {""}},
		"sort injection":   {"sort": {"name desc;drop"}},
		"sort dup":         {"sort": {"a,-a"}},
		"sort 4 keys":      {"sort": {"a,b,c,d"}},
		"filter no op":     {"filter": {"status"}},
		"filter bad op":    {"filter": {"status:like:x"}},
		"filter bad field": {"filter": {"sta tus:eq:x"}},
		"filter field sql": {"filter": {"a)or(1:eq:1"}},
		"contains null":    {"filter": {"name:contains:null"}},
		"contains empty":   {"filter": {"name:contains:"}},
		"null gt":          {"filter": {"a:gt:null"}},
		"control char":     {"filter": {"a:eq:x\ny"}},
		"bad quoted":       {"filter": {`a:eq:"\q"`}},
		"too many filters": {"filter": {"a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1", "a:eq:1"}},
	} {
		_, err := ParseQuery(v)
		ce, ok := contract.AsError(err)
		if !ok || ce.Status != 400 || ce.Code != contract.CodeBadRequest || ce.Message == "" {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestContainsTakesText(t *testing.T) {
	t.Parallel()
	q, err := ParseQuery(url.Values{"filter": {"sku:contains:42", "d:startswith:2026-01-01"}})
	if err != nil || q.Filters[0].Value.Kind != String || q.Filters[1].Value.Kind != String {
		t.Fatalf("%+v %v", q.Filters, err)
	}
}

func TestStripAnnotations(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"@odata.context":"x","@odata.etag":"W/\"1\"","ID":1,"Name@odata.type":"#String","Name":"a@b.c"}`: `{"ID":1,"Name":"a@b.c"}`,
		`[{"@odata.etag":"e","ID":1},{"ID":2,"Mail":"x@y"}]`:                                               `[{"ID":1},{"ID":2,"Mail":"x@y"}]`,
		`[1,2]`:                               `[1,2]`,
		`{"a":{"@odata.type":"keep nested"}}`: `{"a":{"@odata.type":"keep nested"}}`,
	} {
		got, err := StripAnnotations([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("%s → %s (%v), want %s", in, got, err, want)
		}
	}
}

func TestSetPathEscapesSegments(t *testing.T) {
	t.Parallel()
	u := &url.URL{}
	SetPath(u, "/v1/invoices", "a/b", "c d")
	if u.EscapedPath() != "/v1/invoices/a%2Fb/c%20d" || u.Path != "/v1/invoices/a/b/c d" {
		t.Fatalf("%q %q", u.EscapedPath(), u.Path)
	}
	SetPath(u, "/v1/invoices", "inv_1")
	if u.EscapedPath() != "/v1/invoices/inv_1" || u.RawPath != "" {
		t.Fatalf("%q %q", u.EscapedPath(), u.RawPath)
	}
}

func TestUpstreamCode(t *testing.T) {
	t.Parallel()
	if c, ctx := UpstreamCode("INVOICE_LOCKED", 409); c != "INVOICE_LOCKED" || ctx != nil {
		t.Fatal(c, ctx)
	}
	if c, ctx := UpstreamCode("err123", 400); c != contract.CodeBadRequest || ctx["upstream_code"] != "err123" {
		t.Fatal(c, ctx)
	}
}
