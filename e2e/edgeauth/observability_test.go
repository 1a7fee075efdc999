package edgeauth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestPlaceholdersPublished: the identity and routing placeholders DESIGN
// names resolve for the rest of the config (here an access-log field) with
// the values the envelope reports.
func TestPlaceholdersPublished(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "log_append company_id {http.auth.user.company_id}"
	if !strings.Contains(string(example), anchor) {
		t.Fatal("Caddyfile.example no longer appends the company to the access log")
	}
	// one field per placeholder: log_append resolves a lone placeholder
	// when the request is logged, after every handler ran
	names := []string{"erp.request_id", "erp.api_version", "erp.backend",
		"http.auth.user.id", "http.auth.user.company_id", "http.auth.user.roles", "http.auth.user.plan"}
	appends := anchor
	for _, n := range names {
		appends += "\n\tlog_append p_" + n + " {" + n + "}"
	}
	in := stacktest.Start(t, stacktest.Options{Config: strings.Replace(string(example), anchor, appends, 1)})
	alice := login(t, in.URL, "alice@acme.test", "acme")
	const reqID = "0193a5d2-7c1e-7b3a-9f00-5a1c2b3d4e5f"
	h := bearer(alice.Access)
	h["X-Request-ID"] = reqID
	env := expectOK(t, httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", h))
	if env.Meta.RequestID != reqID || env.Meta.UserID == "" {
		t.Fatalf("meta %+v", env.Meta)
	}
	var entry map[string]any
	eventually(t, 5*time.Second, func() bool {
		for l := range strings.SplitSeq(in.Logs(), "\n") {
			if i := strings.IndexByte(l, '{'); i >= 0 && strings.Contains(l, `"p_erp.request_id":"`+reqID+`"`) {
				return json.Unmarshal([]byte(l[i:]), &entry) == nil
			}
		}
		return false
	})
	want := map[string]string{"erp.request_id": reqID, "erp.api_version": "v2", "erp.backend": "invoices",
		"http.auth.user.id": env.Meta.UserID, "http.auth.user.company_id": "acme", "http.auth.user.plan": "standard"}
	for _, n := range names {
		got, _ := entry["p_"+n].(string)
		if w, ok := want[n]; (ok && got != w) || got == "" {
			t.Errorf("{%s} = %q, want %q", n, got, want[n])
		}
	}
}
