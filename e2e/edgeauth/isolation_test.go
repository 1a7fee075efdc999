package edgeauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestCompanyIsolation runs Caddyfile.example on the embedded defaults and
// on Postgres + Redis: a demo user's token reads its company's invoices, and
// the other company is unreachable by path, header, query, body or key.
func TestCompanyIsolation(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"embedded", "postgres+redis"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var in *stacktest.Instance
			if mode == "embedded" {
				in = stacktest.Start(t, stacktest.Options{})
			} else {
				in = sharedEnv(t, 1)[0]
			}
			checkIsolation(t, in)
		})
	}
}

func checkIsolation(t *testing.T, in *stacktest.Instance) {
	alice := login(t, in.URL, "alice@acme.test", "acme")
	bob := login(t, in.URL, "bob@globex.test", "globex")
	u := in.URL + "/api/v1/invoices"

	// no token, a malformed header, a token in the query
	expectCode(t, httpt.Get(t, u, nil), 401, "UNAUTHENTICATED")
	expectCode(t, httpt.Get(t, u, map[string]string{"Authorization": "Basic YWxpY2U6eA=="}), 401, "UNAUTHENTICATED")
	expectCode(t, httpt.Get(t, u+"?access_token="+alice.Access, nil), 401, "UNAUTHENTICATED")

	env := expectOK(t, httpt.Get(t, u+"?limit=5", bearer(alice.Access)))
	if env.Meta.CompanyID != "acme" || env.Meta.UserID == "" || env.Pagination == nil || env.Pagination.Total != 120 {
		t.Fatalf("alice's invoices: meta %+v pagination %+v", env.Meta, env.Pagination)
	}
	for _, id := range ids(t, env) {
		if !strings.HasPrefix(id, "inv_acme_") {
			t.Fatalf("alice saw %s", id)
		}
	}
	env = expectOK(t, httpt.Get(t, u+"?limit=5", bearer(bob.Access)))
	if env.Meta.CompanyID != "globex" || env.Pagination.Total != 37 {
		t.Fatalf("bob's invoices: meta %+v pagination %+v", env.Meta, env.Pagination)
	}

	// the other company's record by id: not found, exactly as a made-up id
	expectCode(t, httpt.Get(t, u+"/inv_globex_0001", bearer(alice.Access)), 404, "NOT_FOUND")
	expectCode(t, httpt.Get(t, u+"/inv_acme_0001", bearer(bob.Access)), 404, "NOT_FOUND")

	// identity headers from the client are ignored, in every spelling
	for _, h := range []string{"X-ERP-Company-ID", "x-erp-company-id", "X_ERP_COMPANY_ID", "X-Erp-Company_Id"} {
		env := expectOK(t, httpt.Get(t, u+"?limit=3", map[string]string{"Authorization": "Bearer " + alice.Access, h: "globex"}))
		if env.Meta.CompanyID != "acme" || !strings.HasPrefix(ids(t, env)[0], "inv_acme_") {
			t.Fatalf("header %s switched the company: %s", h, env.Data)
		}
	}
	// company in query, path or body
	expectCode(t, httpt.Get(t, u+"?company_id=globex", bearer(alice.Access)), 403, "COMPANY_MISMATCH")
	expectCode(t, httpt.Get(t, u+"?COMPANY_ID=globex", bearer(alice.Access)), 403, "COMPANY_MISMATCH")
	expectCode(t, httpt.Get(t, in.URL+"/api/v1/invoices/companies/globex", bearer(alice.Access)), 403, "COMPANY_MISMATCH")
	expectCode(t, httpt.Get(t, in.URL+"/api/v1/companies/globex/invoices", bearer(alice.Access)), 404, "NOT_FOUND") // no such backend
	expectCode(t, httpt.Do(t, "POST", u, []byte(`{"company_id":"globex","customer_id":"cus_globex_001","amount":10,"currency":"USD"}`), bearer(alice.Access)), 403, "COMPANY_MISMATCH")
	// own company named: allowed through to the backend
	resp := httpt.Do(t, "POST", u, []byte(`{"company_id":"acme","customer_id":"cus_acme_001","amount":10,"currency":"EUR"}`), bearer(alice.Access))
	if resp.StatusCode != 201 && resp.StatusCode != 422 {
		t.Fatalf("own company in body: %d %s", resp.StatusCode, resp.Body)
	}

	// permissions: alice is a viewer at globex
	sw := httpt.Do(t, "POST", in.URL+"/api/v1/auth/switch-company", httpt.JSON(t, map[string]string{"company_id": "globex"}), bearer(alice.Access))
	var pair struct {
		Access string `json:"access_token"`
	}
	if err := json.Unmarshal(expectOK(t, sw).Data, &pair); err != nil || pair.Access == "" {
		t.Fatalf("switch-company: %s", sw.Body)
	}
	env = expectOK(t, httpt.Get(t, u+"?limit=2", bearer(pair.Access)))
	if env.Meta.CompanyID != "globex" {
		t.Fatalf("switched token reads %s", env.Meta.CompanyID)
	}
	expectCode(t, httpt.Do(t, "POST", u, []byte(`{"customer_id":"cus_globex_001","amount":10,"currency":"USD"}`), bearer(pair.Access)), 403, "FORBIDDEN")
	// bob is no member of acme: he cannot switch there
	sw = httpt.Do(t, "POST", in.URL+"/api/v1/auth/switch-company", httpt.JSON(t, map[string]string{"company_id": "acme"}), bearer(bob.Access))
	if sw.StatusCode/100 == 2 {
		t.Fatalf("bob switched to acme: %s", sw.Body)
	}
	_ = http.MethodGet
}
