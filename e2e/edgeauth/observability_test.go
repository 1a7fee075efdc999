package edgeauth

import (
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestDecisionsAreObservable: metrics count decisions by provider and
// outcome (bounded labels), and the access log names company and user but
// never the credential.
func TestDecisionsAreObservable(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	alice := login(t, in.URL, "alice@acme.test", "acme")
	expectOK(t, httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", bearer(alice.Access)))
	expectCode(t, httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", bearer(alice.Access+"x")), 401, "UNAUTHENTICATED")
	expectCode(t, httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"X-API-Key": "erp_live_abc_def"}), 401, "UNAUTHENTICATED")

	metrics := string(httpt.Get(t, in.AdminURL+"/metrics", nil).Body)
	for _, want := range []string{
		`erpgate_auth_decisions_total{outcome="ok",provider="jwt"}`,
		`erpgate_auth_decisions_total{outcome="unauthenticated",provider="jwt"}`,
		`erpgate_auth_decisions_total{outcome="refused",provider="api_key"}`,
		`erpgate_auth_jwks_fetches_total{outcome="ok"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, "acme") {
		t.Error("a company id is a metric label")
	}
	logs := in.Logs()
	if !strings.Contains(logs, `"company_id":"acme"`) {
		t.Error("the access log does not name the company")
	}
	for _, secret := range []string{alice.Access, alice.Refresh, "erp_live_abc_def"} {
		if strings.Contains(logs, secret) {
			t.Fatal("a credential reached the logs")
		}
	}
}
