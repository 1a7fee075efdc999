package dialects

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

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

func TestParseIn(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string][]Value{
		`cus_acme_001`:                  {{String, "cus_acme_001"}},
		`"cus_acme_001","cus_acme_008"`: {{String, "cus_acme_001"}, {String, "cus_acme_008"}},
		`1,-2.5,3e2`:                    {{Number, "1"}, {Number, "-2.5"}, {Number, "3e2"}},
		`2026-01-31,"2026-02-01",true`:  {{Date, "2026-01-31"}, {String, "2026-02-01"}, {Bool, "true"}},
		`"a,b",c`:                       {{String, "a,b"}, {String, "c"}},
		`"say \"hi\", then go","\\"`:    {{String, `say "hi", then go`}, {String, `\`}},
		`"",x`:                          {{String, ""}, {String, "x"}},
		`a:b,c:d`:                       {{String, "a:b"}, {String, "c:d"}},
		`O'Brien & Sons,"4000"`:         {{String, "O'Brien & Sons"}, {String, "4000"}},
		`x"y,z`:                         {{String, `x"y`}, {String, "z"}},
		strings.Repeat("v,", MaxInValues-1) + "v": slices.Repeat([]Value{{String, "v"}}, MaxInValues),
	} {
		q, err := ParseQuery(url.Values{"filter": {"id:in:" + raw}})
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		f := q.Filters[0]
		if f.Field != "id" || f.Op != OpIn || f.Op.String() != "in" || f.Value != (Value{}) || !slices.Equal(f.Values, want) {
			t.Errorf("%s: %+v, want %+v", raw, f, want)
		}
	}
	// the other operators keep Value and no Values
	q, err := ParseQuery(url.Values{"filter": {"id:eq:a,b"}})
	if err != nil || q.Filters[0].Values != nil || q.Filters[0].Value != (Value{String, "a,b"}) {
		t.Fatalf("%+v %v", q.Filters, err)
	}
}

func TestParseInRefusals(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxValueLen+1)
	for name, c := range map[string]struct{ raw, says string }{
		"nothing":               {"", "at least one value"},
		"empty first":           {",a", "must not be empty (element 1)"},
		"empty middle":          {"a,,b", "must not be empty (element 2)"},
		"trailing comma":        {"a,b,", "must not be empty (element 3)"},
		"null":                  {"a,null", "null cannot"},
		"unclosed quote":        {`"a,b`, "no closing quote"},
		"text after the quote":  {`"a"b,c`, "followed by a comma"},
		"bad escape":            {`"\q",a`, "not a valid quoted string"},
		"escaped closing quote": {`"a\",b`, "no closing quote"},
		"control char":          {"a,b\x01", "printable UTF-8"},
		"invalid UTF-8":         {"a,\xff", "printable UTF-8"},
		"101 values":            {strings.Repeat("v,", MaxInValues) + "v", "at most 100 values"},
		"an element too long":   {"a," + long, "at most 256 bytes"},
		"over 8 KiB":            {strings.Repeat(strings.Repeat("y", 200)+",", 41) + "y", "at most 8192 bytes"},
	} {
		_, err := ParseQuery(url.Values{"filter": {"id:in:" + c.raw}})
		ce, ok := contract.AsError(err)
		if !ok || ce.Status != 400 || ce.Code != contract.CodeBadRequest || ce.Field != "filter" || !strings.Contains(ce.Message, c.says) {
			t.Errorf("%s: %v, want a 400 saying %q", name, err, c.says)
		}
	}
	_, err := ParseQuery(url.Values{"filter": {"id:like:x"}})
	if ce, ok := contract.AsError(err); !ok || !strings.Contains(ce.Message, "startswith, in") {
		t.Fatalf("the operator list must name in: %v", err)
	}
}

func BenchmarkParseIn50(b *testing.B) {
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = strconv.Quote(fmt.Sprintf("cus_acme_%03d", i+1))
	}
	v := url.Values{"filter": {"id:in:" + strings.Join(ids, ",")}, "limit": {"200"}}
	b.ReportAllocs()
	for b.Loop() {
		q, err := ParseQuery(v)
		if err != nil || len(q.Filters[0].Values) != 50 {
			b.Fatal(err)
		}
	}
}

func TestInRefusalsClipTheValue(t *testing.T) {
	t.Parallel()
	_, err := ParseQuery(url.Values{"filter": {`id:in:"` + strings.Repeat("é", 2000)}})
	ce, ok := contract.AsError(err)
	if !ok || len(ce.Message) > 120 || !utf8.ValidString(ce.Message) || !strings.Contains(ce.Message, "no closing quote") {
		t.Fatalf("%v", err)
	}
}
