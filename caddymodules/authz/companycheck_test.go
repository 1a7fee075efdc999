package authz

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
)

// TestCompanyCheck: a company-bound part erp_version found (a cursor) is
// checked with the verified company before the request goes on.
func TestCompanyCheck(t *testing.T) {
	t.Parallel()
	h := newTestHandler(&fakeSigner{})
	for _, tc := range []struct {
		name  string
		check contract.CompanyCheck
		pass  bool
	}{
		{"bound to the caller", func(c string) error {
			if c != "acme" {
				return &contract.Error{Status: 400, Code: contract.CodeBadRequest, Message: "x", Field: "cursor"}
			}
			return nil
		}, true},
		{"bound to another company", func(string) error {
			return &contract.Error{Status: 400, Code: contract.CodeBadRequest, Message: "the cursor is not valid", Field: "cursor"}
		}, false},
	} {
		r := identityRequest("GET", "/api/v1/invoices?limit=5", "")
		caddyhttp.SetVar(r.Context(), contract.VarCompanyCheck, tc.check)
		ran := false
		err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			ran = true
			return nil
		}))
		if tc.pass {
			if err != nil || !ran {
				t.Fatalf("%s: %v %v", tc.name, err, ran)
			}
			continue
		}
		ce, ok := contract.AsError(err)
		if ran || !ok || ce.Status != 400 || ce.Field != "cursor" {
			t.Fatalf("%s: %v ran=%v", tc.name, err, ran)
		}
	}
}
