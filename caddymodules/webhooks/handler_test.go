package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	core "github.com/erpgate/erpgate/internal/webhooks"
)

// fakeService keeps endpoints per company in memory and counts calls, so a
// test sees whether a request reached the service at all.
type fakeService struct {
	endpoints  map[string]core.Endpoint // id → endpoint
	deliveries []core.Delivery          // newest first, all of "wh_a"
	calls      int
	err        error // returned by Create when set
}

func (f *fakeService) get(company, id string) (core.Endpoint, error) {
	f.calls++
	ep, ok := f.endpoints[id]
	if !ok || ep.CompanyID != company {
		return core.Endpoint{}, fmt.Errorf("get %s: %w", id, core.ErrNotFound)
	}
	return ep, nil
}

func (f *fakeService) Create(_ context.Context, company string, in core.EndpointInput) (core.Endpoint, string, error) {
	f.calls++
	if f.err != nil {
		return core.Endpoint{}, "", f.err
	}
	ep := core.Endpoint{ID: "wh_new", CompanyID: company, URL: *in.URL, Events: in.Events, Enabled: true}
	f.endpoints[ep.ID] = ep
	return ep, "whsec_c2VjcmV0", nil
}

func (f *fakeService) List(_ context.Context, company string) ([]core.Endpoint, error) {
	f.calls++
	var out []core.Endpoint
	for _, ep := range f.endpoints {
		if ep.CompanyID == company {
			out = append(out, ep)
		}
	}
	return out, nil
}

func (f *fakeService) Get(_ context.Context, company, id string) (core.Endpoint, error) {
	return f.get(company, id)
}

func (f *fakeService) Update(_ context.Context, company, id string, in core.EndpointInput) (core.Endpoint, error) {
	ep, err := f.get(company, id)
	if err != nil {
		return ep, err
	}
	if in.URL != nil {
		if !strings.HasPrefix(*in.URL, "https://") && !strings.HasPrefix(*in.URL, "http://") {
			return ep, &core.ValidationError{Field: "url", Message: "url must be http or https"}
		}
		ep.URL = *in.URL
	}
	if in.Enabled != nil {
		ep.Enabled = *in.Enabled
	}
	f.endpoints[id] = ep
	return ep, nil
}

func (f *fakeService) Delete(_ context.Context, company, id string) error {
	if _, err := f.get(company, id); err != nil {
		return err
	}
	delete(f.endpoints, id)
	return nil
}

func (f *fakeService) RotateSecret(_ context.Context, company, id string) (string, error) {
	if _, err := f.get(company, id); err != nil {
		return "", err
	}
	return "whsec_bmV3", nil
}

func (f *fakeService) Test(_ context.Context, company, id string) (core.Delivery, error) {
	if _, err := f.get(company, id); err != nil {
		return core.Delivery{}, err
	}
	return core.Delivery{ID: "whd_ping", EndpointID: id, EventType: "erp.webhooks.ping", Attempt: 1, Status: "succeeded", HTTPStatus: 204}, nil
}

func (f *fakeService) Deliveries(_ context.Context, company, id string, limit int, before string) ([]core.Delivery, error) {
	if _, err := f.get(company, id); err != nil {
		return nil, err
	}
	list := f.deliveries
	if before != "" {
		for i, d := range list {
			if d.ID == before {
				list = list[i+1:]
				break
			}
		}
	}
	return list[:min(limit, len(list))], nil
}

func (f *fakeService) Retry(_ context.Context, company, id, deliveryID string) (core.Delivery, error) {
	if _, err := f.get(company, id); err != nil {
		return core.Delivery{}, err
	}
	for _, d := range f.deliveries {
		if d.ID == deliveryID {
			d.ID, d.Attempt = "whd_retry", d.Attempt+1
			return d, nil
		}
	}
	return core.Delivery{}, core.ErrNotFound
}

func newFake() *fakeService {
	f := &fakeService{endpoints: map[string]core.Endpoint{
		"wh_a": {ID: "wh_a", CompanyID: "acme", URL: "https://hooks.acme.test/in", Events: []string{"erp.invoices.*"}, Enabled: true},
		"wh_g": {ID: "wh_g", CompanyID: "globex", URL: "https://hooks.globex.test/in", Events: []string{"erp.*"}, Enabled: true},
	}}
	for i := 5; i >= 1; i-- {
		f.deliveries = append(f.deliveries, core.Delivery{ID: fmt.Sprintf("whd_%d", i), EndpointID: "wh_a", Attempt: i, Status: "failed"})
	}
	return f
}

func newHandler(f *fakeService) *Handler {
	return &Handler{Company: "{http.auth.user.company_id}", Prefix: "/api/v1/webhooks", logger: zap.NewNop(),
		service: func() (Service, error) { return f, nil }, now: time.Now}
}

type result struct {
	status int
	code   string
	field  string
	header http.Header
	body   map[string]any
	raw    string
}

// do serves one request as company acme with the given scope.
func do(t *testing.T, h *Handler, method, path, body, scope string) result {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.company_id", "acme")
	repl.Set("http.auth.user.id", "usr_alice")
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{contract.VarScope: scope})
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, nil)
	res := result{header: w.Header(), raw: w.Body.String()}
	if err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatalf("%s %s: not a handler error: %v", method, path, err)
		}
		res.status = he.StatusCode
		e, ok := contract.AsError(err)
		if !ok {
			t.Fatalf("%s %s: no envelope error: %v", method, path, err)
		}
		res.code, res.field = e.Code, e.Field
		return res
	}
	res.status = w.Code
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, w.Body)
	}
	_ = json.Unmarshal(env.Data, &res.body)
	return res
}

const rw = "invoices:read webhooks:read webhooks:write"

func TestRoutesAndScopes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path, body, scope string
		status                          int
		code, field                     string
		reaches                         bool // the service is called
	}{
		{"list", "GET", "/api/v1/webhooks", "", "webhooks:read", 200, "", "", true},
		{"list without scope", "GET", "/api/v1/webhooks", "", "invoices:read invoices:write", 403, "FORBIDDEN", "", false},
		{"list with write only", "GET", "/api/v1/webhooks", "", "webhooks:write", 403, "FORBIDDEN", "", false},
		{"create with read only", "POST", "/api/v1/webhooks", `{"url":"https://x.test","events":["erp.*"]}`, "webhooks:read", 403, "FORBIDDEN", "", false},
		{"scope prefix is no scope", "GET", "/api/v1/webhooks", "", "webhooks:readx", 403, "FORBIDDEN", "", false},
		{"create for events not readable", "POST", "/api/v1/webhooks", `{"url":"https://x.test/in","events":["erp.ledger.*"]}`, rw, 403, "FORBIDDEN", "events", false},
		{"create for auth events without webhooks:read", "POST", "/api/v1/webhooks", `{"url":"https://x.test/in","events":["erp.invoices.*","erp.auth.*"]}`, "invoices:read webhooks:write", 403, "FORBIDDEN", "events", false},
		{"patch to events not readable", "PATCH", "/api/v1/webhooks/wh_a", `{"events":["erp.customers.created"]}`, rw, 403, "FORBIDDEN", "events", false},
		{"create", "POST", "/api/v1/webhooks", `{"url":"https://x.test/in","events":["erp.invoices.*"]}`, rw, 201, "", "", true},
		{"create unknown field", "POST", "/api/v1/webhooks", `{"url":"https://x.test","events":["erp.*"],"secret":"mine"}`, rw, 400, "BAD_REQUEST", "secret", false},
		{"create enabled is no create field", "POST", "/api/v1/webhooks", `{"url":"https://x.test","events":["erp.*"],"enabled":false}`, rw, 400, "BAD_REQUEST", "enabled", false},
		{"create without url", "POST", "/api/v1/webhooks", `{"events":["erp.*"]}`, rw, 400, "VALIDATION_FAILED", "url", false},
		{"create without events", "POST", "/api/v1/webhooks", `{"url":"https://x.test"}`, rw, 400, "VALIDATION_FAILED", "events", false},
		{"create events wrong type", "POST", "/api/v1/webhooks", `{"url":"https://x.test","events":"erp.*"}`, rw, 422, "VALIDATION_FAILED", "events", false},
		{"create not JSON", "POST", "/api/v1/webhooks", `url=x`, rw, 400, "BAD_REQUEST", "", false},
		{"create too large", "POST", "/api/v1/webhooks", `{"url":"https://x.test/` + strings.Repeat("a", maxBody) + `","events":["erp.*"]}`, rw, 413, "PAYLOAD_TOO_LARGE", "", false},
		{"get", "GET", "/api/v1/webhooks/wh_a", "", rw, 200, "", "", true},
		{"get other company's", "GET", "/api/v1/webhooks/wh_g", "", rw, 404, "NOT_FOUND", "", true},
		{"get missing", "GET", "/api/v1/webhooks/wh_zz", "", rw, 404, "NOT_FOUND", "", true},
		{"get malformed id", "GET", "/api/v1/webhooks/abc", "", rw, 404, "NOT_FOUND", "", false},
		{"get id with a quote", "GET", "/api/v1/webhooks/wh_a'", "", rw, 404, "NOT_FOUND", "", false},
		{"get long id", "GET", "/api/v1/webhooks/wh_" + strings.Repeat("a", 65), "", rw, 404, "NOT_FOUND", "", false},
		{"look-alike prefix", "GET", "/api/v1/webhooksx", "", rw, 404, "NOT_FOUND", "", false},
		{"trailing slash", "GET", "/api/v1/webhooks/", "", rw, 404, "NOT_FOUND", "", false},
		{"unknown subpath", "GET", "/api/v1/webhooks/wh_a/secret", "", rw, 404, "NOT_FOUND", "", false},
		{"patch", "PATCH", "/api/v1/webhooks/wh_a", `{"enabled":false}`, rw, 200, "", "", true},
		{"patch nothing", "PATCH", "/api/v1/webhooks/wh_a", `{}`, rw, 400, "BAD_REQUEST", "", false},
		{"patch bad url", "PATCH", "/api/v1/webhooks/wh_a", `{"url":"ftp://x"}`, rw, 400, "VALIDATION_FAILED", "url", true},
		{"patch other company's", "PATCH", "/api/v1/webhooks/wh_g", `{"enabled":false}`, rw, 404, "NOT_FOUND", "", true},
		{"put", "PUT", "/api/v1/webhooks/wh_a", `{}`, rw, 405, "BAD_REQUEST", "", false},
		{"delete other company's", "DELETE", "/api/v1/webhooks/wh_g", "", rw, 404, "NOT_FOUND", "", true},
		{"delete with read only", "DELETE", "/api/v1/webhooks/wh_a", "", "webhooks:read", 403, "FORBIDDEN", "", false},
		{"rotate", "POST", "/api/v1/webhooks/wh_a/rotate-secret", "", rw, 200, "", "", true},
		{"rotate GET", "GET", "/api/v1/webhooks/wh_a/rotate-secret", "", rw, 405, "BAD_REQUEST", "", false},
		{"rotate other company's", "POST", "/api/v1/webhooks/wh_g/rotate-secret", "", rw, 404, "NOT_FOUND", "", true},
		{"test", "POST", "/api/v1/webhooks/wh_a/test", "", rw, 200, "", "", true},
		{"test other company's", "POST", "/api/v1/webhooks/wh_g/test", "", rw, 404, "NOT_FOUND", "", true},
		{"deliveries", "GET", "/api/v1/webhooks/wh_a/deliveries", "", "webhooks:read", 200, "", "", true},
		{"deliveries of other company's", "GET", "/api/v1/webhooks/wh_g/deliveries", "", rw, 404, "NOT_FOUND", "", true},
		{"deliveries limit 0", "GET", "/api/v1/webhooks/wh_a/deliveries?limit=0", "", rw, 400, "VALIDATION_FAILED", "limit", false},
		{"deliveries limit 101", "GET", "/api/v1/webhooks/wh_a/deliveries?limit=101", "", rw, 400, "VALIDATION_FAILED", "limit", false},
		{"deliveries limit x", "GET", "/api/v1/webhooks/wh_a/deliveries?limit=x", "", rw, 400, "VALIDATION_FAILED", "limit", false},
		{"deliveries bad cursor", "GET", "/api/v1/webhooks/wh_a/deliveries?cursor=1'--", "", rw, 400, "VALIDATION_FAILED", "cursor", false},
		{"retry", "POST", "/api/v1/webhooks/wh_a/deliveries/whd_3/retry", "", rw, 200, "", "", true},
		{"retry missing delivery", "POST", "/api/v1/webhooks/wh_a/deliveries/whd_9/retry", "", rw, 404, "NOT_FOUND", "", true},
		{"retry malformed delivery", "POST", "/api/v1/webhooks/wh_a/deliveries/x/retry", "", rw, 404, "NOT_FOUND", "", false},
		{"retry other company's", "POST", "/api/v1/webhooks/wh_g/deliveries/whd_3/retry", "", rw, 404, "NOT_FOUND", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			res := do(t, newHandler(f), tc.method, tc.path, tc.body, tc.scope)
			if res.status != tc.status || res.code != tc.code || res.field != tc.field {
				t.Fatalf("got %d %s field %q, want %d %s field %q (%s)", res.status, res.code, res.field, tc.status, tc.code, tc.field, res.raw)
			}
			if (f.calls > 0) != tc.reaches {
				t.Fatalf("service called %d times, want reached=%v", f.calls, tc.reaches)
			}
			if res.status == 405 && res.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
}

// TestSecretShownOnce: the secret is in the create and rotate answers, and
// in no read.
func TestSecretShownOnce(t *testing.T) {
	t.Parallel()
	f := newFake()
	h := newHandler(f)
	res := do(t, h, "POST", "/api/v1/webhooks", `{"url":"https://x.test/in","events":["erp.invoices.*"],"description":"books"}`, rw)
	if res.status != 201 || res.body["secret"] != "whsec_c2VjcmV0" || res.body["id"] != "wh_new" || res.body["url"] != "https://x.test/in" {
		t.Fatalf("create: %d %s", res.status, res.raw)
	}
	if res.header.Get("Location") != "/api/v1/webhooks/wh_new" || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create headers: %v", res.header)
	}
	for _, p := range []string{"/api/v1/webhooks", "/api/v1/webhooks/wh_new"} {
		if r := do(t, h, "GET", p, "", rw); r.status != 200 || strings.Contains(r.raw, "whsec_") || strings.Contains(r.raw, "secret") {
			t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
		}
	}
	if r := do(t, h, "POST", "/api/v1/webhooks/wh_new/rotate-secret", "", rw); r.body["secret"] != "whsec_bmV3" {
		t.Fatalf("rotate: %s", r.raw)
	}
	if r := do(t, h, "GET", "/api/v1/webhooks", "", rw); strings.Contains(r.raw, "wh_g") {
		t.Fatalf("list shows another company's endpoint: %s", r.raw)
	}
}

func TestDeliveriesPages(t *testing.T) {
	t.Parallel()
	h := newHandler(newFake())
	var seen []string
	path := "/api/v1/webhooks/wh_a/deliveries?limit=2"
	for range 5 {
		res := do(t, h, "GET", path, "", rw)
		if res.status != 200 {
			t.Fatalf("%s: %s", path, res.raw)
		}
		for _, d := range res.body["deliveries"].([]any) {
			seen = append(seen, d.(map[string]any)["id"].(string))
		}
		next, _ := res.body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/api/v1/webhooks/wh_a/deliveries?limit=2&cursor=" + next
	}
	if got := strings.Join(seen, " "); got != "whd_5 whd_4 whd_3 whd_2 whd_1" {
		t.Fatalf("pages: %s", got)
	}
}

func TestServiceErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err         error
		status      int
		code, field string
	}{
		{fmt.Errorf("create: %w", &core.ValidationError{Field: "events", Message: "unknown pattern"}), 400, "VALIDATION_FAILED", "events"},
		{fmt.Errorf("create: %w", core.ErrLimit), 409, "CONFLICT", ""},
		{core.ErrEventGone, 409, "CONFLICT", ""},
		{core.ErrNotReady, 503, "SERVICE_UNAVAILABLE", ""},
		{errors.New("pq: something internal at 10.0.0.5"), 500, "INTERNAL", ""},
		{context.DeadlineExceeded, 503, "SERVICE_UNAVAILABLE", ""},
	} {
		f := newFake()
		f.err = tc.err
		res := do(t, newHandler(f), "POST", "/api/v1/webhooks", `{"url":"https://x.test","events":["erp.*"]}`, rw)
		if res.status != tc.status || res.code != tc.code || res.field != tc.field {
			t.Errorf("%v: got %d %s %q", tc.err, res.status, res.code, res.field)
		}
	}
}

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	h := newHandler(newFake())
	h.Company = "{http.auth.user.nothing}"
	if res := do(t, h, "GET", "/api/v1/webhooks", "", rw); res.status != 401 || res.code != "UNAUTHENTICATED" {
		t.Fatalf("got %d %s", res.status, res.code)
	}
}

func TestPatternScopes(t *testing.T) {
	t.Parallel()
	backends := []string{"invoices", "ledger"}
	for _, tc := range []struct {
		patterns []string
		want     string
	}{
		{[]string{"erp.invoices.*"}, "invoices:read"},
		{[]string{"erp.invoices.created", "erp.invoices.*"}, "invoices:read"},
		{[]string{"erp.ledger.updated", "erp.auth.*"}, "ledger:read webhooks:read"},
		{[]string{"erp.security.*", "erp.webhooks.ping", "erp.admin.*"}, "webhooks:read"},
		{[]string{"*"}, "webhooks:read invoices:read ledger:read"},
		{[]string{"erp.*"}, "webhooks:read invoices:read ledger:read"},
		{[]string{"erp.*.created"}, "webhooks:read invoices:read ledger:read"},
		{[]string{"*.invoices.created"}, "webhooks:read invoices:read ledger:read"},
		{[]string{"other.thing"}, "webhooks:read"},
		{[]string{"erp..x", ""}, ""},
	} {
		if got := strings.Join(patternScopes(tc.patterns, backends), " "); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.patterns, got, tc.want)
		}
	}
}
