package odata

import (
	"net/http"
	"testing"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

func from(kind, value string) *dialects.Target {
	tg := *target
	tg.Cursor = &envelope.Position{Kind: kind, Value: value}
	return &tg
}

func odataAnswer(r *http.Request, tr envelope.Translator, body string) envelope.Result {
	return tr.Translate(&envelope.Answer{Request: r, Status: 200, Header: http.Header{}, Body: []byte(body)})
}

func TestSkipTokenMapping(t *testing.T) {
	t.Parallel()
	// the first page: server-driven, the nextLink's $skiptoken is the next position
	r, tr, err := rewrite(t, "GET", "/x?limit=2&sort=-amount", target)
	if err != nil {
		t.Fatal(err)
	}
	res := odataAnswer(r, tr, `{"value":[{"id":"a"},{"id":"b"}],"@odata.count":5,"@odata.nextLink":"LedgerEntries?$orderby=amount%20desc&$skiptoken=o2"}`)
	if p := res.Pagination; p.Page != 1 || p.Limit != 2 || p.Total != 5 || !p.HasNext || res.Next != (envelope.Position{Kind: envelope.PosSkipToken, Value: "o2"}) {
		t.Fatalf("%+v %+v", p, res.Next)
	}
	// continued with the token: no $top or $skip, the page size in Prefer
	r, tr, err = rewrite(t, "GET", "/x?limit=2&sort=-amount", from(envelope.PosSkipToken, "o2"))
	if err != nil {
		t.Fatal(err)
	}
	q := r.URL.Query()
	if q.Get("$skiptoken") != "o2" || q.Has("$skip") || q.Has("$top") || q.Get("$orderby") != "amount desc" || r.Header.Get("Prefer") != "odata.maxpagesize=2" {
		t.Fatalf("%s %v", r.URL.RawQuery, r.Header)
	}
	res = odataAnswer(r, tr, `{"value":[{"id":"c"},{"id":"d"}],"@odata.count":5,"@odata.nextLink":"https://erp.example/odata/v1/LedgerEntries?$skiptoken=o4"}`)
	if p := res.Pagination; p.Page != 0 || !p.HasNext || res.Next.Value != "o4" {
		t.Fatalf("%+v %+v", p, res.Next)
	}
	res = odataAnswer(r, tr, `{"value":[{"id":"e"}],"@odata.count":5}`)
	if res.Pagination.HasNext || res.Next.Kind != "" {
		t.Fatalf("last page: %+v", res)
	}
	// a service that ignored odata.maxpagesize: the first limit records, then by offset
	r, tr, _ = rewrite(t, "GET", "/x?limit=2", target)
	res = odataAnswer(r, tr, `{"value":[{"id":"a"},{"id":"b"},{"id":"c"}],"@odata.count":3}`)
	if string(res.Data) != `[{"id":"a"},{"id":"b"}]` || !res.Pagination.HasNext || res.Next != (envelope.Position{Kind: envelope.PosOffset, Value: "2"}) {
		t.Fatalf("%s %+v %+v", res.Data, res.Pagination, res.Next)
	}
}

func TestOffsetCursor(t *testing.T) {
	t.Parallel()
	r, tr, err := rewrite(t, "GET", "/x?limit=5", from(envelope.PosOffset, "10"))
	if err != nil {
		t.Fatal(err)
	}
	if q := r.URL.Query(); q.Get("$skip") != "10" || q.Get("$top") != "5" {
		t.Fatalf("%s", r.URL.RawQuery)
	}
	res := odataAnswer(r, tr, `{"value":[{"id":"k"}],"@odata.count":30}`)
	if p := res.Pagination; p.Page != 3 || !p.HasNext || res.Next.Value != "15" {
		t.Fatalf("%+v %+v", p, res.Next)
	}
	// a numbered page offers the next offset
	r, tr, _ = rewrite(t, "GET", "/x?page=2&limit=5", target)
	if res := odataAnswer(r, tr, `{"value":[{"id":"k"}],"@odata.count":30}`); res.Next != (envelope.Position{Kind: envelope.PosOffset, Value: "10"}) {
		t.Fatalf("%+v", res.Next)
	}
	for _, tg := range []*dialects.Target{from(envelope.PosKeyset, `"a"`), from(envelope.PosSkipToken, ""), from(envelope.PosOffset, "x")} {
		_, _, err := rewrite(t, "GET", "/x", tg)
		if ce, ok := contract.AsError(err); !ok || ce.Field != "cursor" {
			t.Errorf("%+v: %v", tg.Cursor, err)
		}
	}
}
