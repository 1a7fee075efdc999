package rest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

var keyed = &Dialect{Backend: "invoices", FilterFields: []string{"status"}, Keyset: "id"}

func at(kind, value string) *dialects.Target {
	tg := *target
	tg.Cursor = &envelope.Position{Kind: kind, Value: value}
	return &tg
}

func answer(r *http.Request, tr envelope.Translator, h http.Header, body string) envelope.Result {
	return tr.Translate(&envelope.Answer{Request: r, Status: 200, Header: h, Body: []byte(body)})
}

func TestKeysetMapping(t *testing.T) {
	t.Parallel()
	// a first page in key order offers the last key
	r := httptest.NewRequest("GET", "/x?limit=2&filter=status:eq:paid", nil)
	tr, err := keyed.Rewrite(r, target)
	if err != nil {
		t.Fatal(err)
	}
	res := answer(r, tr, http.Header{"X-Total-Count": {"9"}, "X-Page": {"1"}, "X-Per-Page": {"2"}}, `[{"id":"inv_1"},{"id":"inv_2"}]`)
	if res.Next != (envelope.Position{Kind: envelope.PosKeyset, Value: `"inv_2"`}) || !res.Pagination.HasNext {
		t.Fatalf("%+v", res)
	}
	// continued: after=<key>, sorted by the key, page gone; the Link decides has_next
	r = httptest.NewRequest("GET", "/x?limit=2&filter=status:eq:paid", nil)
	if tr, err = keyed.Rewrite(r, at(envelope.PosKeyset, `"inv_2"`)); err != nil {
		t.Fatal(err)
	}
	q := r.URL.Query()
	if q.Get("after") != "inv_2" || q.Get("sort") != "id" || q.Get("status") != "paid" || q.Has("page") || q.Get("limit") != "2" {
		t.Fatalf("%s", r.URL.RawQuery)
	}
	res = answer(r, tr, http.Header{"X-Total-Count": {"9"}, "X-Per-Page": {"2"}, "Link": {`</v1/invoices?after=inv_4>; rel="next"`}}, `[{"id":"inv_3"},{"id":"inv_4"}]`)
	if p := res.Pagination; p.Page != 0 || p.Limit != 2 || !p.HasNext || res.Next.Value != `"inv_4"` {
		t.Fatalf("%+v %+v", p, res.Next)
	}
	res = answer(r, tr, http.Header{"X-Total-Count": {"9"}, "X-Per-Page": {"2"}}, `[{"id":"inv_9"}]`)
	if res.Pagination.HasNext || res.Next.Kind != "" {
		t.Fatalf("last keyset page: %+v", res)
	}
	// numeric keys go as they are; a custom parameter name
	kp := &Dialect{Backend: "invoices", Keyset: "id", KeysetParam: "starting_after"}
	r = httptest.NewRequest("GET", "/x", nil)
	if _, err := kp.Rewrite(r, at(envelope.PosKeyset, `42`)); err != nil || r.URL.Query().Get("starting_after") != "42" {
		t.Fatalf("%s %v", r.URL.RawQuery, err)
	}
}

func TestOffsetMapping(t *testing.T) {
	t.Parallel()
	// another order (or no keyset): the next page's offset
	for _, c := range []struct {
		d   *Dialect
		url string
	}{{keyed, "/x?limit=5&sort=-amount&page=2"}, {dialect, "/x?limit=5&page=2"}} {
		r := httptest.NewRequest("GET", c.url, nil)
		tr, err := c.d.Rewrite(r, target)
		if err != nil {
			t.Fatal(err)
		}
		res := answer(r, tr, http.Header{"X-Total-Count": {"40"}, "X-Page": {"2"}, "X-Per-Page": {"5"}}, `[{"id":"a"}]`)
		if res.Next != (envelope.Position{Kind: envelope.PosOffset, Value: "10"}) {
			t.Fatalf("%s: %+v", c.url, res.Next)
		}
	}
	// continued: the offset becomes a page of limit
	r := httptest.NewRequest("GET", "/x?limit=5&sort=-amount", nil)
	if _, err := keyed.Rewrite(r, at(envelope.PosOffset, "10")); err != nil || r.URL.Query().Get("page") != "3" {
		t.Fatalf("%s %v", r.URL.RawQuery, err)
	}
	// refusals: a limit off the boundary, a kind the backend does not take, a keyset without the key's order
	for name, c := range map[string]struct {
		d     *Dialect
		url   string
		tg    *dialects.Target
		field string
	}{
		"limit off the boundary": {keyed, "/x?limit=3&sort=-amount", at(envelope.PosOffset, "10"), "limit"},
		"skiptoken":              {keyed, "/x", at(envelope.PosSkipToken, "abc"), "cursor"},
		"keyset, no keyset":      {dialect, "/x", at(envelope.PosKeyset, `"a"`), "cursor"},
		"keyset, other order":    {keyed, "/x?sort=-id", at(envelope.PosKeyset, `"a"`), "cursor"},
		"offset junk":            {keyed, "/x", at(envelope.PosOffset, "-1"), "cursor"},
	} {
		_, err := c.d.Rewrite(httptest.NewRequest("GET", c.url, nil), c.tg)
		if ce, ok := contract.AsError(err); !ok || ce.Status != 400 || ce.Field != c.field {
			t.Errorf("%s: %v", name, err)
		}
	}
}
