package credentials

import (
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestOneCredentialPerRequest: two credentials in one request — two
// Authorization headers, two X-API-Key headers, a bearer token and an API
// key, or a WebSocket subprotocol bearer and another credential — are
// refused with 400
// BAD_REQUEST and an invalid_request challenge, at the edge and in the auth
// service alike, even when every credential in them is valid on its own.
func TestOneCredentialPerRequest(t *testing.T) {
	t.Parallel()
	const introspectionSecret = "test-introspection-secret-0123456789"
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{"ERP_INTROSPECTION_SECRET": introspectionSecret}})
	alice := login(t, in.URL)
	key := createKey(t, in.URL, alice.Access)
	bearer := "Bearer " + alice.Access
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	with := func(base http.Header, more http.Header) http.Header {
		h := http.Header{}
		for k, v := range base {
			h[k] = v
		}
		for k, v := range more {
			h[k] = v
		}
		return h
	}
	ambiguous := map[string]http.Header{
		"two bearer tokens":                {"Authorization": {bearer, bearer}},
		"bearer token and X-API-Key":       {"Authorization": {bearer}, "X-Api-Key": {key}},
		"two X-API-Key":                    {"X-Api-Key": {key, key}},
		"ApiKey scheme and X-API-Key":      {"Authorization": {"ApiKey " + key}, "X-Api-Key": {key}},
		"subprotocol bearer and X-API-Key": with(upgrade, http.Header{"Sec-Websocket-Protocol": {"bearer, " + alice.Access}, "X-Api-Key": {key}}),
		"subprotocol bearer and bearer":    with(upgrade, http.Header{"Sec-Websocket-Protocol": {"bearer, " + alice.Access}, "Authorization": {bearer}}),
	}
	type target struct {
		method, path string
		body         []byte
	}
	targets := []target{
		{http.MethodGet, "/api/v2/invoices?limit=1", nil},                                   // the edge: erp_jwt / erp_api_key
		{http.MethodGet, "/api/v1/usage", nil},                                              // the edge, authenticated_only
		{http.MethodGet, "/api/v1/auth/me", nil},                                            // the auth service
		{http.MethodGet, "/api/v1/auth/api-keys", nil},                                      // …
		{http.MethodPost, "/api/v1/auth/switch-company", []byte(`{"company_id":"globex"}`)}, // …
		{http.MethodPost, "/api/v1/auth/logout", []byte(`{}`)},                              // … (refused: alice stays logged in)
	}
	for _, tg := range targets {
		for name, h := range ambiguous {
			t.Run(tg.path+"/"+name, func(t *testing.T) {
				resp := send(t, tg.method, in.URL+tg.path, tg.body, h)
				expect(t, name, resp, http.StatusBadRequest, "BAD_REQUEST")
				if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_request"`) {
					t.Errorf("challenge %q", ch)
				}
			})
		}
	}
	// the introspection endpoint's own credential (the edge's secret)
	intro := []byte(`{"token":"` + key + `"}`)
	for name, h := range map[string]http.Header{
		"two secrets":      {"Authorization": {"Bearer " + introspectionSecret, "Bearer " + introspectionSecret}},
		"secret and a key": {"Authorization": {"Bearer " + introspectionSecret}, "X-Api-Key": {key}},
	} {
		t.Run("introspect/"+name, func(t *testing.T) {
			expect(t, name, send(t, http.MethodPost, in.URL+"/api/v1/auth/introspect", intro, h), http.StatusBadRequest, "BAD_REQUEST")
		})
	}

	// each credential alone is good: the refusals above are for the pair
	expect(t, "bearer alone", httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"Authorization": bearer}), http.StatusOK, "")
	expect(t, "key alone", httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"X-API-Key": key}), http.StatusOK, "")
	expect(t, "ApiKey scheme alone", httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"Authorization": "ApiKey " + key}), http.StatusOK, "")
	expect(t, "me", httpt.Get(t, in.URL+"/api/v1/auth/me", map[string]string{"Authorization": bearer}), http.StatusOK, "")
	expect(t, "introspect", send(t, http.MethodPost, in.URL+"/api/v1/auth/introspect", intro, http.Header{"Authorization": {"Bearer " + introspectionSecret}}), http.StatusOK, "")
}
