package events

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
)

// TestWebhookAPI: who may do what, across companies, and what bad input
// gets. The demo's alice is acme's admin (webhooks:read and :write) and
// globex's viewer (neither); bob is globex's accountant (neither) until
// the platform admin makes him globex's admin.
func TestWebhookAPI(t *testing.T) {
	t.Parallel()
	s := whStart(t, true, "")
	alice := demoauth.Login(t, s.URL, "alice@acme.test", "acme")
	aliceGlobex := demoauth.Login(t, s.URL, "alice@acme.test", "globex")
	bob := demoauth.Login(t, s.URL, "bob@globex.test", "globex")
	rc := whNewReceiver(t, 200)

	ep := s.whCreate(t, alice.Access, rc.URL+"/acme", "erp.invoices.*", "erp.customers.*")

	t.Run("secret shown once", func(t *testing.T) {
		for _, p := range []string{"/api/v1/webhooks", "/api/v1/webhooks/" + ep.ID} {
			c := s.whDo(t, "GET", p, "", alice.Access)
			if c.status != 200 || strings.Contains(string(c.raw), "whsec_") || strings.Contains(string(c.raw), `"secret"`) ||
				!strings.Contains(string(c.raw), ep.ID) {
				t.Fatalf("GET %s: %d %s", p, c.status, c.raw)
			}
		}
		var list []whEndpoint
		c := s.whDo(t, "GET", "/api/v1/webhooks", "", alice.Access)
		c.data(t, &list)
		if len(list) != 1 || list[0].URL != rc.URL+"/acme" || !list[0].Enabled || list[0].CompanyID != "acme" {
			t.Fatalf("list: %s", c.raw)
		}
		if strings.Contains(s.Logs(), ep.Secret) {
			t.Fatal("the secret is in the logs")
		}
	})

	t.Run("no scope, no access", func(t *testing.T) {
		for _, tc := range []struct{ who, token, method, path, body string }{
			{"globex viewer creates", aliceGlobex.Access, "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":["erp.*"]}`},
			{"globex viewer lists", aliceGlobex.Access, "GET", "/api/v1/webhooks", ""},
			{"globex accountant creates", bob.Access, "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":["erp.*"]}`},
			{"globex accountant reads acme's id", bob.Access, "GET", "/api/v1/webhooks/" + ep.ID, ""},
			{"globex accountant deletes acme's id", bob.Access, "DELETE", "/api/v1/webhooks/" + ep.ID, ""},
		} {
			c := s.whDo(t, tc.method, tc.path, tc.body, tc.token)
			if c.status != http.StatusForbidden || c.env.Code() != "FORBIDDEN" {
				t.Errorf("%s: %d %s", tc.who, c.status, c.raw)
			}
		}
		c := s.whDo(t, "GET", "/api/v1/webhooks", "", "")
		if c.status != http.StatusUnauthorized {
			t.Errorf("no token: %d %s", c.status, c.raw)
		}
	})

	t.Run("other company's endpoint is not found", func(t *testing.T) {
		root := demoauth.Login(t, s.URL, "root@erpgate.local", "acme")
		r := httpt.Do(t, http.MethodPut, s.URL+"/api/v1/admin/memberships/globex/bob@globex.test",
			httpt.JSON(t, map[string]any{"roles": []string{"admin"}}), demoauth.Bearer(root.Access))
		if r.StatusCode != 200 && r.StatusCode != 201 {
			t.Fatalf("make bob globex's admin: %d %s", r.StatusCode, r.Body)
		}
		bobAdmin := demoauth.Login(t, s.URL, "bob@globex.test", "globex")
		grc := whNewReceiver(t, 200)
		gep := s.whCreate(t, bobAdmin.Access, grc.URL+"/globex", "erp.*")
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/api/v1/webhooks/" + gep.ID, ""},
			{"PATCH", "/api/v1/webhooks/" + gep.ID, `{"enabled":false}`},
			{"DELETE", "/api/v1/webhooks/" + gep.ID, ""},
			{"POST", "/api/v1/webhooks/" + gep.ID + "/rotate-secret", ""},
			{"POST", "/api/v1/webhooks/" + gep.ID + "/test", ""},
			{"GET", "/api/v1/webhooks/" + gep.ID + "/deliveries", ""},
		} {
			c := s.whDo(t, tc.method, tc.path, tc.body, alice.Access)
			if c.status != http.StatusNotFound || c.env.Code() != "NOT_FOUND" {
				t.Errorf("acme admin %s %s: %d %s", tc.method, tc.path, c.status, c.raw)
			}
		}
		var list []whEndpoint
		c := s.whDo(t, "GET", "/api/v1/webhooks", "", alice.Access)
		c.data(t, &list)
		if len(list) != 1 || list[0].ID != ep.ID {
			t.Fatalf("acme's list: %s", c.raw)
		}
		// globex's endpoint is untouched, and bob sees only it
		c = s.whDo(t, "GET", "/api/v1/webhooks", "", bobAdmin.Access)
		c.data(t, &list)
		if len(list) != 1 || list[0].ID != gep.ID || !list[0].Enabled {
			t.Fatalf("globex's list: %s", c.raw)
		}
		for _, rq := range grc.requests() {
			if whEvent(t, rq)["type"] == "erp.webhooks.ping" {
				t.Fatal("acme's refused test ping reached globex's receiver")
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"ftp URL", "POST", "/api/v1/webhooks", `{"url":"ftp://example.com/x","events":["erp.*"]}`, 400, "VALIDATION_FAILED", "url"},
			{"not a URL", "POST", "/api/v1/webhooks", `{"url":"not a url","events":["erp.*"]}`, 400, "VALIDATION_FAILED", "url"},
			{"URL with credentials", "POST", "/api/v1/webhooks", `{"url":"https://u:p@example.com/x","events":["erp.*"]}`, 400, "VALIDATION_FAILED", "url"},
			{"no URL", "POST", "/api/v1/webhooks", `{"events":["erp.*"]}`, 400, "VALIDATION_FAILED", "url"},
			{"bad pattern", "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":["erp..invoices"]}`, 400, "VALIDATION_FAILED", "events"},
			{"pattern with a space", "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":["erp.invoices created"]}`, 400, "VALIDATION_FAILED", "events"},
			{"no patterns", "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":[]}`, 400, "VALIDATION_FAILED", "events"},
			{"unknown field", "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":["erp.*"],"secret":"whsec_mine"}`, 400, "BAD_REQUEST", "secret"},
			{"duplicate url", "POST", "/api/v1/webhooks", `{"url":"https://example.com/a","events":["erp.*"],"url":"` + rc.URL + `"}`, 400, "BAD_REQUEST", "url"},
			{"case-variant url", "POST", "/api/v1/webhooks", `{"url":"https://example.com/a","events":["erp.*"],"URL":"` + rc.URL + `"}`, 400, "BAD_REQUEST", "URL"},
			{"events a string", "POST", "/api/v1/webhooks", `{"url":"` + rc.URL + `","events":"erp.*"}`, 422, "VALIDATION_FAILED", "events"},
			{"not JSON", "POST", "/api/v1/webhooks", `{"url":`, 400, "BAD_REQUEST", ""},
			{"patch bad URL", "PATCH", "/api/v1/webhooks/" + ep.ID, `{"url":"gopher://x"}`, 400, "VALIDATION_FAILED", "url"},
			{"patch unknown field", "PATCH", "/api/v1/webhooks/" + ep.ID, `{"company_id":"acme","enabled":true}`, 400, "BAD_REQUEST", "company_id"},
			{"patch nothing", "PATCH", "/api/v1/webhooks/" + ep.ID, `{}`, 400, "BAD_REQUEST", ""},
			{"malformed id", "GET", "/api/v1/webhooks/..%2f", "", 400, "BAD_REQUEST", ""},
			{"unknown id", "GET", "/api/v1/webhooks/wh_0000000000000000000000000000beef", "", 404, "NOT_FOUND", ""},
			{"look-alike path", "GET", "/api/v1/webhooksx", "", 0, "", ""},
			{"bad limit", "GET", "/api/v1/webhooks/" + ep.ID + "/deliveries?limit=1000", "", 400, "VALIDATION_FAILED", "limit"},
			{"bad cursor", "GET", "/api/v1/webhooks/" + ep.ID + "/deliveries?cursor=%27", "", 400, "VALIDATION_FAILED", "cursor"},
			{"wrong method", "PUT", "/api/v1/webhooks/" + ep.ID, `{}`, 405, "BAD_REQUEST", ""},
		} {
			c := s.whDo(t, tc.method, tc.path, tc.body, alice.Access)
			if tc.status == 0 { // not this API's path: never the webhook handler's answer
				if c.status == 200 || strings.Contains(string(c.raw), "webhook") {
					t.Errorf("%s: %d %s", tc.name, c.status, c.raw)
				}
				continue
			}
			if c.status != tc.status || c.env.Code() != tc.code || (len(c.env.Errors) > 0 && c.env.Errors[0].Field != tc.field) {
				t.Errorf("%s: %d %s, want %d %s field %q", tc.name, c.status, c.raw, tc.status, tc.code, tc.field)
			}
		}
	})

	t.Run("api key", func(t *testing.T) {
		// a key with webhooks:read/write and invoices:read may subscribe to
		// invoices, not to the ledger (it couldn't read it) nor to everything
		r := httpt.Do(t, http.MethodPost, s.URL+"/api/v1/auth/api-keys",
			httpt.JSON(t, map[string]any{"name": "hooks", "scope": []string{"webhooks:read", "webhooks:write", "invoices:read"}}), demoauth.Bearer(alice.Access))
		var k struct {
			Key string `json:"key"`
		}
		if r.StatusCode != http.StatusCreated || json.Unmarshal(r.Envelope(t).Data, &k) != nil || k.Key == "" {
			t.Fatalf("create key: %d %s", r.StatusCode, r.Body)
		}
		hdr := map[string]string{"X-API-Key": k.Key}
		for _, tc := range []struct {
			events string
			status int
		}{{`["erp.ledger.*"]`, 403}, {`["*"]`, 403}, {`["erp.invoices.*","erp.customers.created"]`, 403}, {`["erp.invoices.*"]`, 201}} {
			r := httpt.Do(t, "POST", s.URL+"/api/v1/webhooks", []byte(`{"url":"`+rc.URL+`/key","events":`+tc.events+`}`), hdr)
			env := r.Envelope(t)
			if r.StatusCode != tc.status || (tc.status == 403 && (env.Code() != "FORBIDDEN" || env.Errors[0].Field != "events")) {
				t.Errorf("key creates %s: %d %s", tc.events, r.StatusCode, r.Body)
			}
			if r.StatusCode == 201 {
				var kep whEndpoint
				_ = json.Unmarshal(env.Data, &kep)
				if d := httpt.Do(t, "DELETE", s.URL+"/api/v1/webhooks/"+kep.ID, nil, hdr); d.StatusCode != 200 {
					t.Errorf("key deletes: %d %s", d.StatusCode, d.Body)
				}
			}
		}
	})

	t.Run("audit trail", func(t *testing.T) {
		root := demoauth.Login(t, s.URL, "root@erpgate.local", "acme")
		r := httpt.Get(t, s.URL+"/api/v1/admin/audit?company_id=acme&type=webhook.created&limit=100", demoauth.Bearer(root.Access))
		var recs []struct {
			Type      string            `json:"type"`
			ActorID   string            `json:"actor_id"`
			CompanyID string            `json:"company_id"`
			SubjectID string            `json:"subject_id"`
			RequestID string            `json:"request_id"`
			Details   map[string]string `json:"details"`
		}
		if r.StatusCode != 200 {
			t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
		}
		if err := json.Unmarshal(r.Envelope(t).Data, &recs); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rec := range recs {
			if rec.SubjectID == ep.ID && rec.Type == "webhook.created" && rec.CompanyID == "acme" && rec.ActorID != "" &&
				rec.RequestID != "" && rec.Details["url_host"] == "127.0.0.1" && rec.Details["endpoint_id"] == ep.ID {
				found = true
			}
		}
		if !found {
			t.Fatalf("no webhook.created record of %s: %s", ep.ID, r.Body)
		}
		if strings.Contains(string(r.Body), "whsec_") || strings.Contains(string(r.Body), "/acme") {
			t.Fatalf("the audit trail holds the secret or the URL's path: %s", r.Body)
		}
	})

	t.Run("patch and delete", func(t *testing.T) {
		c := s.whDo(t, "PATCH", "/api/v1/webhooks/"+ep.ID, `{"enabled":false,"events":["erp.invoices.created"],"description":"books"}`, alice.Access)
		var got whEndpoint
		c.data(t, &got)
		if c.status != 200 || got.Enabled || len(got.Events) != 1 || got.Events[0] != "erp.invoices.created" {
			t.Fatalf("patch: %d %s", c.status, c.raw)
		}
		c = s.whDo(t, "DELETE", "/api/v1/webhooks/"+ep.ID, "", alice.Access)
		if c.status != 200 || !strings.Contains(string(c.raw), `"deleted":true`) {
			t.Fatalf("delete: %d %s", c.status, c.raw)
		}
		if c = s.whDo(t, "GET", "/api/v1/webhooks/"+ep.ID, "", alice.Access); c.status != 404 {
			t.Fatalf("after delete: %d %s", c.status, c.raw)
		}
	})
}

// TestWebhookPrivateTargets: without ERP_WEBHOOK_ALLOW_PRIVATE, endpoints
// on loopback, private, link-local or metadata addresses are refused when
// created (and changed).
func TestWebhookPrivateTargets(t *testing.T) {
	t.Parallel()
	s := whStart(t, false, "")
	alice := demoauth.Login(t, s.URL, "alice@acme.test", "acme")
	for _, u := range []string{
		"http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.0.1/hook",
		"http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://0.0.0.0/hook", "http://[fd00::1]/hook",
	} {
		c := s.whDo(t, "POST", "/api/v1/webhooks", string(httpt.JSON(t, map[string]any{"url": u, "events": []string{"erp.*"}})), alice.Access)
		if c.status != 400 || c.env.Code() != "VALIDATION_FAILED" || c.env.Errors[0].Field != "url" {
			t.Errorf("%s: %d %s", u, c.status, c.raw)
		}
	}
	c := s.whDo(t, "GET", "/api/v1/webhooks", "", alice.Access)
	if c.status != 200 || string(c.env.Data) != "[]" {
		t.Fatalf("nothing created: %d %s", c.status, c.raw)
	}
}
