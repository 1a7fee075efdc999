package rest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/internal/envelope"
)

func TestLinksNameTheClientsPaths(t *testing.T) {
	t.Parallel()
	d := &Dialect{Backend: "invoices"}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/invoices?page=2&limit=10", nil)
	tr, err := d.Rewrite(r, &dialects.Target{Backend: "invoices", Version: "v1", BasePath: "/v1", Resource: "/invoices", Public: "/api/v1/invoices"})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{
		"Content-Type":  {"application/json"},
		"X-Total-Count": {"120"},
		"Link":          {`</v1/invoices?limit=10&page=1>; rel="first", </v1/invoices?limit=10&page=3>; rel="next"`, `</api/v2/invoices>; rel="successor-version"`},
	}
	res := tr.Translate(&envelope.Answer{Request: r, Status: 200, Header: h, Body: []byte(`[]`)})
	if res.Pagination == nil || res.Pagination.Page != 2 {
		t.Fatalf("pagination %+v", res.Pagination)
	}
	want := `</api/v1/invoices?limit=10&page=1>; rel="first", </api/v1/invoices?limit=10&page=3>; rel="next"`
	if h["Link"][0] != want || h["Link"][1] != `</api/v2/invoices>; rel="successor-version"` {
		t.Fatalf("links %q", h["Link"])
	}
}
