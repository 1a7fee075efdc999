package dialects

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/cursor"
	"github.com/erpgate/erpgate/internal/envelope"
)

func testCodec(t testing.TB) *cursor.Codec {
	c, err := cursor.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var invoices = Target{Backend: "invoices", Version: "v2", BasePath: "/v2", Resource: "/invoices"}

// nextTranslator answers a page with a next position.
var nextTranslator = envelope.TranslatorFunc(func(*envelope.Answer) envelope.Result {
	return envelope.Result{Status: 200, Data: []byte(`[]`), Pagination: &envelope.Pagination{Page: 1, Limit: 5, Total: 9, HasNext: true},
		Next: envelope.Position{Kind: envelope.PosKeyset, Value: `"inv_5"`}}
})

// issue runs a first page for company and returns its next_cursor.
func issue(t *testing.T, c *cursor.Codec, target Target, query, company string) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/x?"+query, nil)
	p, err := StartPage(c, r, &target)
	if err != nil || p.Continues() || target.Cursor != nil {
		t.Fatalf("first page: %v", err)
	}
	if err := p.Bind(company); err != nil {
		t.Fatal(err)
	}
	res := p.Wrap(nextTranslator).Translate(&envelope.Answer{Request: r, Status: 200})
	if res.Pagination.NextCursor == "" {
		t.Fatal("no next_cursor")
	}
	return res.Pagination.NextCursor
}

func field(err error) string {
	ce, ok := contract.AsError(err)
	if !ok || ce.Status != http.StatusBadRequest {
		return "not a 400"
	}
	return ce.Field
}

func TestPager(t *testing.T) {
	c := testCodec(t)
	cur := issue(t, c, invoices, "page=2&limit=5&filter=status:eq:paid&sort=id", "acme")

	// continued: the position reaches the dialect, cursor leaves the query;
	// parameters in another order and another limit still match
	tg := invoices
	r := httptest.NewRequest("GET", "/x?sort=id&limit=7&filter=status:eq:paid&cursor="+cur, nil)
	p, err := StartPage(c, r, &tg)
	if err != nil || !p.Continues() || tg.Cursor == nil || *tg.Cursor != (envelope.Position{Kind: envelope.PosKeyset, Value: `"inv_5"`}) {
		t.Fatalf("%v %+v", err, tg.Cursor)
	}
	if strings.Contains(r.URL.RawQuery, "cursor") || !strings.Contains(r.URL.RawQuery, "limit=7") {
		t.Fatalf("query %s", r.URL.RawQuery)
	}
	if err := p.Bind("globex"); field(err) != "cursor" {
		t.Fatalf("another company: %v", err)
	}
	if err := p.Bind("acme"); err != nil {
		t.Fatal(err)
	}
	// the next cursor of a continued page is sealed again
	if res := p.Wrap(nextTranslator).Translate(&envelope.Answer{Request: r, Status: 200}); res.Pagination.NextCursor == "" {
		t.Fatal("no next_cursor on a continued page")
	}

	for name, q := range map[string]string{
		"filter changed":  "filter=status:eq:sent&sort=id&cursor=" + cur,
		"filter dropped":  "sort=id&cursor=" + cur,
		"sort changed":    "filter=status:eq:paid&sort=-id&cursor=" + cur,
		"other parameter": "filter=status:eq:paid&sort=id&q=x&cursor=" + cur,
		"page with it":    "filter=status:eq:paid&sort=id&page=3&cursor=" + cur,
		"given twice":     "filter=status:eq:paid&sort=id&cursor=" + cur + "&cursor=" + cur,
		"tampered":        "filter=status:eq:paid&sort=id&cursor=" + cur[:5] + "x" + cur[6:],
		"malformed":       "filter=status:eq:paid&sort=id&cursor=abc",
	} {
		tg := invoices
		if _, err := StartPage(c, httptest.NewRequest("GET", "/x?"+q, nil), &tg); field(err) != "cursor" {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, other := range map[string]Target{
		"other backend": {Backend: "customers", Version: "v2", BasePath: "/v2", Resource: "/invoices"},
		"other version": {Backend: "invoices", Version: "v1", BasePath: "/v2", Resource: "/invoices"},
		"other path":    {Backend: "invoices", Version: "v2", BasePath: "/v2", Resource: "/credit-notes"},
	} {
		if _, err := StartPage(c, httptest.NewRequest("GET", "/x?filter=status:eq:paid&sort=id&cursor="+cur, nil), &other); field(err) != "cursor" {
			t.Errorf("%s: %v", name, err)
		}
	}
	// another key (another fleet) does not verify it
	other, _ := cursor.New(bytes.Repeat([]byte{8}, 32))
	tg = invoices
	if _, err := StartPage(other, httptest.NewRequest("GET", "/x?filter=status:eq:paid&sort=id&cursor="+cur, nil), &tg); field(err) != "cursor" {
		t.Errorf("other key: %v", err)
	}

	// a continued page whose company nobody checked is not shown
	tg = invoices
	r = httptest.NewRequest("GET", "/x?filter=status:eq:paid&sort=id&cursor="+cur, nil)
	p, _ = StartPage(c, r, &tg)
	if res := p.Wrap(nextTranslator).Translate(&envelope.Answer{Request: r, Status: 200}); res.Status != 400 || res.Errors[0].Field != "cursor" || res.Data != nil {
		t.Fatalf("unchecked: %+v", res)
	}
	// no next page, or no position: no cursor
	tg = invoices
	p, _ = StartPage(c, httptest.NewRequest("GET", "/x", nil), &tg)
	_ = p.Bind("acme")
	last := envelope.TranslatorFunc(func(*envelope.Answer) envelope.Result {
		return envelope.Result{Status: 200, Pagination: &envelope.Pagination{Page: 2, Limit: 5, Total: 9}, Next: envelope.Position{Kind: envelope.PosOffset, Value: "10"}}
	})
	if res := p.Wrap(last).Translate(&envelope.Answer{Status: 200}); res.Pagination.NextCursor != "" {
		t.Fatal("a cursor without a next page")
	}
}

func TestLastKeyAndKeyText(t *testing.T) {
	for data, want := range map[string]string{
		`[{"id":"a"},{"id":"inv_2","x":1}]`: `"inv_2"`,
		`[{"id":41},{"id":42}]`:             `42`,
		`[{"id":"a"},{"x":1}]`:              ``,
		`[]`:                                ``,
		`[{"id":null}]`:                     ``,
		`{"id":"a"}`:                        ``,
	} {
		got, ok := LastKey([]byte(data), "id")
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v", data, got, ok)
		}
	}
	for raw, want := range map[string]string{`"a\"b"`: `a"b`, `42`: `42`, `-1.5`: `-1.5`} {
		if got, ok := KeyText(raw); !ok || got != want {
			t.Errorf("%s: %q %v", raw, got, ok)
		}
	}
	for _, raw := range []string{"", "abc", `"unterminated`} {
		if _, ok := KeyText(raw); ok {
			t.Errorf("%q accepted", raw)
		}
	}
}

// BenchmarkPager is the cursor work of a collection request on the hot
// path: a continued page verified, bound and its next cursor sealed.
func BenchmarkPager(b *testing.B) {
	c := testCodec(b)
	tg := invoices
	r := httptest.NewRequest("GET", "/x?limit=5&filter=status:eq:paid", nil)
	p, _ := StartPage(c, r, &tg)
	_ = p.Bind("acme")
	cur := p.Wrap(nextTranslator).Translate(&envelope.Answer{Status: 200}).Pagination.NextCursor
	query := "limit=5&filter=status:eq:paid&cursor=" + cur
	b.ReportAllocs()
	for b.Loop() {
		tg := invoices
		r.URL.RawQuery = query
		p, err := StartPage(c, r, &tg)
		if err != nil || p.Bind("acme") != nil {
			b.Fatal(err)
		}
		if p.Wrap(nextTranslator).Translate(&envelope.Answer{Status: 200}).Pagination.NextCursor == "" {
			b.Fatal("no cursor")
		}
	}
}

// BenchmarkPagerFirstPage is what every collection GET without a cursor
// pays: the Pager made, bound, wrapped around a last page (no cursor to seal).
func BenchmarkPagerFirstPage(b *testing.B) {
	c := testCodec(b)
	r := httptest.NewRequest("GET", "/x?limit=5&filter=status:eq:paid", nil)
	last := envelope.TranslatorFunc(func(*envelope.Answer) envelope.Result {
		return envelope.Result{Status: 200, Pagination: &envelope.Pagination{Page: 2, Limit: 5, Total: 9}}
	})
	b.ReportAllocs()
	for b.Loop() {
		tg := invoices
		p, err := StartPage(c, r, &tg)
		if err != nil || p.Bind("acme") != nil {
			b.Fatal(err)
		}
		if p.Wrap(last).Translate(&envelope.Answer{Status: 200}).Pagination.NextCursor != "" {
			b.Fatal("a cursor")
		}
	}
}
