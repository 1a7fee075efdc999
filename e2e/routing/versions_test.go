package routing

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
)

// TestVersionsAndDeprecation is the first "Must show" of issue 6, plus the
// refusals around it.
func TestVersionsAndDeprecation(t *testing.T) {
	t.Parallel()
	in := start(t, nil)

	t.Run("v1 carries the deprecation headers", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v1/invoices?limit=3", nil)
		env := resp.Envelope(t)
		if resp.StatusCode != 200 || env.Meta.APIVersion != "v1" || env.Pagination == nil || env.Pagination.Total != 120 {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		if got := resp.Header.Get("Deprecation"); got != "@1767225600" { // 2026-01-01T00:00:00Z, RFC 9745
			t.Fatalf("Deprecation %q", got)
		}
		if got := resp.Header.Get("Sunset"); got != "Tue, 30 Jun 2099 00:00:00 GMT" { // RFC 8594 HTTP-date
			t.Fatalf("Sunset %q", got)
		}
		if !hasLink(resp.Header, `</api/v2/invoices>; rel="successor-version"`) {
			t.Fatalf("Link %q", resp.Header.Values("Link"))
		}
		var items []map[string]any
		if err := json.Unmarshal(env.Data, &items); err != nil || len(items) != 3 || items[0]["amount"] == nil {
			t.Fatalf("v1 data: %s", env.Data)
		}
	})

	t.Run("v2 does not", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=3", nil)
		env := resp.Envelope(t)
		if resp.StatusCode != 200 || env.Meta.APIVersion != "v2" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		for _, h := range []string{"Deprecation", "Sunset"} {
			if v := resp.Header.Get(h); v != "" {
				t.Fatalf("%s: %q on v2", h, v)
			}
		}
		if hasLink(resp.Header, "successor-version") {
			t.Fatalf("successor link on v2: %q", resp.Header.Values("Link"))
		}
	})

	t.Run("v9 lists the supported versions", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v9/invoices", nil)
		env := resp.Envelope(t)
		if resp.StatusCode != 400 || env.Code() != "VERSION_UNSUPPORTED" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		sup, _ := env.Errors[0].Context["supported"].([]any)
		if len(sup) != 2 || sup[0] != "v1" || sup[1] != "v2" || !strings.Contains(env.Errors[0].Message, "v1, v2") {
			t.Fatalf("supported: %s", resp.Body)
		}
	})

	t.Run("the Accept form reaches v2", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/invoices/inv_acme_0001", map[string]string{"Accept": "application/vnd.erp.v2+json"})
		env := resp.Envelope(t)
		var inv map[string]any
		if resp.StatusCode != 200 || env.Meta.APIVersion != "v2" || json.Unmarshal(env.Data, &inv) != nil {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		if _, ok := inv["total"].(map[string]any); !ok || inv["issue_date"] == nil { // the v2 shape
			t.Fatalf("not the v2 representation: %s", env.Data)
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept") {
			t.Fatalf("Vary %q", resp.Header.Values("Vary"))
		}
	})

	t.Run("API-Version header and the default", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/invoices?limit=1", map[string]string{"API-Version": "1"})
		if env := resp.Envelope(t); env.Meta.APIVersion != "v1" || resp.Header.Get("Deprecation") == "" {
			t.Fatalf("API-Version 1: %d %v %s", resp.StatusCode, resp.Header, resp.Body)
		}
		resp = httpt.Get(t, in.URL+"/api/invoices?limit=1", nil)
		if env := resp.Envelope(t); env.Meta.APIVersion != "v2" { // the highest version not deprecated
			t.Fatalf("default: %s", resp.Body)
		}
		resp = httpt.Get(t, in.URL+"/api/v1/invoices", map[string]string{"API-Version": "v2"})
		if env := resp.Envelope(t); resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" {
			t.Fatalf("path v1 + header v2: %d %s", resp.StatusCode, resp.Body)
		}
		resp = httpt.Get(t, in.URL+"/api/invoices", map[string]string{"API-Version": "v1", "Accept": "application/vnd.erp.v2+json"})
		if env := resp.Envelope(t); resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" {
			t.Fatalf("header v1 + Accept v2: %d %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("after the sunset 410 VERSION_SUNSET", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v1/archive", nil)
		env := resp.Envelope(t)
		if resp.StatusCode != 410 || env.Code() != "VERSION_SUNSET" || env.Errors[0].Context["successor"] != "/api/v2/archive" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		if resp.Header.Get("Sunset") != "Fri, 01 Jan 2021 00:00:00 GMT" || !hasLink(resp.Header, `</api/v2/archive>; rel="successor-version"`) {
			t.Fatalf("headers %v", resp.Header)
		}
		if resp := httpt.Get(t, in.URL+"/api/v2/archive?limit=1", nil); resp.StatusCode != 200 {
			t.Fatalf("v2 of archive: %d %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("unknown backends are NOT_FOUND", func(t *testing.T) {
		for _, p := range []string{"/api/v1/payroll", "/api/payroll", "/api/v1", "/api/"} {
			resp := httpt.Get(t, in.URL+p, nil)
			if env := resp.Envelope(t); resp.StatusCode != 404 || env.Code() != "NOT_FOUND" {
				t.Fatalf("%s: %d %s", p, resp.StatusCode, resp.Body)
			}
		}
	})

	t.Run("non-canonical paths are refused", func(t *testing.T) {
		for _, p := range []string{
			"/api/v1//invoices", "/api//v1/invoices", "/api/v1/invoices/%2e%2e/customers", "/api/v1/invoices/./inv_acme_0001",
			"/api/v1/invoices/inv_acme_0001%2f..%2f..%2fcustomers", "/api/v1/invoices/%2E", "/api/v1/invoices/a%5cb", "/api/v1/invoices/a%00b",
		} {
			resp := httpt.Get(t, in.URL+p, nil)
			if env := resp.Envelope(t); resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" {
				t.Fatalf("%s: %d %s", p, resp.StatusCode, resp.Body)
			}
		}
		// case is not folded: a differently cased name is simply unknown
		if resp := httpt.Get(t, in.URL+"/api/V1/Invoices", nil); resp.StatusCode != 404 {
			t.Fatalf("case variant: %d %s", resp.StatusCode, resp.Body)
		}
		// one trailing slash names the same resource
		if resp := httpt.Get(t, in.URL+"/api/v2/invoices/?limit=1", nil); resp.StatusCode != 200 {
			t.Fatalf("trailing slash: %d %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("method override headers never reach the backend", func(t *testing.T) {
		// the echo diagnostic is not a backend resource; use a 405 as witness:
		// a POST with X-HTTP-Method-Override: DELETE must be treated as a POST.
		resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v2/invoices/inv_acme_0002", []byte(`{}`),
			map[string]string{"X-HTTP-Method-Override": "DELETE"})
		if env := resp.Envelope(t); resp.StatusCode != 405 || env.Success {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		if resp := httpt.Get(t, in.URL+"/api/v2/invoices/inv_acme_0002", nil); resp.StatusCode != 200 {
			t.Fatalf("the invoice is gone: %d", resp.StatusCode)
		}
	})

	t.Run("deprecated calls are counted per company in the logs and metrics", func(t *testing.T) {
		httpt.Get(t, in.URL+"/api/v1/invoices?limit=1", nil)
		logs := in.Logs()
		if !strings.Contains(logs, "call to a deprecated API version") || !strings.Contains(logs, `"company_id":"acme"`) {
			t.Fatalf("no deprecated-call log for acme")
		}
		m := httpt.Get(t, in.AdminURL+"/metrics", nil)
		body := string(m.Body)
		for _, want := range []string{
			`erpgate_backend_requests_total{backend="invoices",version="v1"}`,
			`erpgate_backend_request_duration_seconds_count{backend="ledger",version="v1"}`,
			`erpgate_backend_upstream_errors_total{backend="invoices",version="v1"} 0`,
		} {
			if !strings.Contains(body, want) {
				t.Fatalf("metrics lack %s", want)
			}
		}
		if strings.Contains(body, `company`) && strings.Contains(body, `acme"`) {
			t.Fatalf("a company id became a metric label")
		}
	})
}

func hasLink(h http.Header, want string) bool {
	for _, v := range h.Values("Link") {
		for part := range strings.SplitSeq(v, ",") {
			if strings.Contains(strings.TrimSpace(part), want) {
				return true
			}
		}
	}
	return false
}
