package edgeauth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// bothOrders serves the same backends twice: on ERP_LISTEN in the order
// the directives sort themselves (erp_version, then erp_auth), and on
// ERP_LISTEN_AUTH_FIRST with erp_auth first (its backend named in config,
// as a route without erp_version would). One auth service, one demo ERP.
const bothOrders = `{
	admin {$ERP_ADMIN}
	erp {
		demo on
		backend invoices {
			version v1 http://{$ERP_DEMO_LISTEN}/v1
			version v2 http://{$ERP_DEMO_LISTEN}/v2
		}
	}
}

http://{$ERP_LISTEN} {
	bind {$ERP_LISTEN}
	erp_envelope
	handle /api/v1/auth/* {
		erp_authsvc
	}
	handle /.well-known/* {
		erp_authsvc
	}
	handle /api/* {
		erp_version
		erp_auth
		reverse_proxy {
			dynamic erp
			header_up Host {upstream_hostport}
		}
	}
	error 404
	handle_errors {
		erp_envelope
	}
}

http://{$ERP_LISTEN_AUTH_FIRST} {
	bind {$ERP_LISTEN_AUTH_FIRST}
	erp_envelope
	handle /api/* {
		route {
			erp_auth {
				backend invoices
			}
			erp_version
			reverse_proxy {
				dynamic erp
				header_up Host {upstream_hostport}
			}
		}
	}
	error 404
	handle_errors {
		erp_envelope
	}
}

http://{$ERP_DEMO_LISTEN} {
	bind {$ERP_DEMO_LISTEN}
	erp_demo
}
`

// answer is what a client can tell of one response.
type answer struct {
	status  int
	success bool
	data    string // compact JSON
	code    string
	message string
}

func answerOf(t *testing.T, target string, status int, body string) answer {
	t.Helper()
	var env struct {
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
		Errors  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%.60s: %d, not an envelope: %.200q", target, status, body)
	}
	a := answer{status: status, success: env.Success, data: string(env.Data)}
	if len(env.Errors) > 0 {
		a.code, a.message = env.Errors[0].Code, env.Errors[0].Message
	}
	return a
}

// TestCanonicalPathsInEitherOrder: each tricky spelling of a path is either
// refused with a clear envelope error or served exactly as its canonical
// form, and the answer does not depend on whether erp_version or erp_auth
// runs first (SECURITY.md category 7; internal/reqpath is the rule, its
// table test the full list). Spellings Go's HTTP server refuses before
// Caddy sees them (%zz, raw control bytes and spaces) are not here.
func TestCanonicalPathsInEitherOrder(t *testing.T) {
	t.Parallel()
	authFirst := stacktest.FreePort(t)
	in := stacktest.Start(t, stacktest.Options{Config: bothOrders,
		Env: map[string]string{"ERP_LISTEN_AUTH_FIRST": "127.0.0.1:" + strconv.Itoa(authFirst)}})
	sites := map[string]string{"erp_version first": in.URL, "erp_auth first": "http://127.0.0.1:" + strconv.Itoa(authFirst)}
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	auth := map[string]string{"Authorization": "Bearer " + alice.Access}

	get := func(base, target string) answer {
		status, body := rawRequest(t, base, http.MethodGet, target, auth, "")
		return answerOf(t, target, status, body)
	}

	// Served as the canonical form: the same answer as the canonical
	// spelling, on both sites.
	served := map[string]string{
		"/api/v2/invoices/inv_acme_0001":       "/api/v2/invoices/inv_acme_0001",
		"/api/v2/invoices/inv_acme_0001/":      "/api/v2/invoices/inv_acme_0001",
		"/api/v2/invoices/?limit=2":            "/api/v2/invoices?limit=2",
		"/api/v1/invoices/inv_acme_0002":       "/api/v1/invoices/inv_acme_0002",
		"/api/v2/invoices/inv%c3%a9":           "/api/v2/invoices/inv%C3%A9",
		"/api/v2/invoices/inv_acme_0001%3bx":   "/api/v2/invoices/inv_acme_0001%3Bx",
		"/api/v2/invoices/..inv_acme_0001":     "/api/v2/invoices/..inv_acme_0001",
		"/API/v2/invoices":                     "/API/v2/invoices",
		"/api/V2/Invoices":                     "/api/V2/Invoices",
		"/api/v2/INVOICES/inv_acme_0001":       "/api/v2/INVOICES/inv_acme_0001",
		"/api/v2/invoices/inv_acme_0001?x=%2e": "/api/v2/invoices/inv_acme_0001?x=%2e",
	}
	for target, canonical := range served {
		want := get(in.URL, canonical)
		for site, base := range sites {
			if got := get(base, target); got != want {
				t.Errorf("%s: %s answers %+v, its canonical form %s %+v", site, target, got, canonical, want)
			}
		}
	}
	// the canonical forms themselves are served as expected
	if a := get(in.URL, "/api/v2/invoices/inv_acme_0001"); a.status != 200 || !a.success || !strings.Contains(a.data, "inv_acme_0001") {
		t.Fatalf("canonical read: %+v", a)
	}
	if a := get(in.URL, "/API/v2/invoices"); a.status != 404 || a.code != "NOT_FOUND" {
		t.Fatalf("upper-case prefix: %+v", a)
	}

	// Refused, with the same status, code and message on both sites.
	refused := []string{
		"/api/v2/invoices/%41",
		"/api/v2/%69nvoices",
		"/%61pi/v2/invoices",
		"/api/v%32/invoices",
		"/api/v2/invoices/inv%5Facme_0001",
		"/api/v2/invoices/%2e%2e",
		"/api/v2/invoices/%2E",
		"/api/v2/invoices/.%2e/customers",
		"/api/v2/x/../invoices",
		"/api/v2/./invoices",
		"/x/../api/v2/invoices",
		"/API/v2/invoices/%2e%2e",
		"/api//v2/invoices",
		"/api/v2//invoices",
		"/api/v2/invoices//",
		"/api/v2/invoices/inv_acme_0001%2f..%2f..%2fcustomers",
		"/api/v2/invoices%2Finv_acme_0001",
		"/api/v2/invoices%5cinv_acme_0001",
		`/api/v2/invoices\inv_acme_0001`,
		"/api/v2/invoices/%252e%252e",
		"/api/v2/invoices/%252f",
		"/api/v2/invoices/100%25",
		"/api/v2/invoices/%c0%ae%c0%ae",
		"/api/v2/invoices/%c0%af",
		"/api/v2/invoices/%00",
		"/api/v2/invoices/a%0d%0aX-ERP-Company-ID:globex",
		"/api/v2/invoices/a%7f",
		"/api/v2/invoices;x=1",
		"/api/v2/x/..;/invoices",
		"/api/v2/invoices/inv_acme_0001;jsessionid=x",
		"/api/v2/%EF%BD%89nvoices",
		"/api/v2/invoices/%EF%BC%8E%EF%BC%8E",
		"/api/v2/invoices/%E2%80%A5",
		"/api/v2/invoices/a%EF%BC%8Fb",
		"/api/v2/invoices/a%E2%88%95b",
		"/api/v2/invoices/a%E2%80%AEb",
		"/api/v2/invoices/" + strings.Repeat("a", 5000),
		"/api" + strings.Repeat("/v2", 40),
	}
	for _, target := range refused {
		var first answer
		for _, base := range []string{in.URL, sites["erp_auth first"]} {
			a := get(base, target)
			if a.success || (a.status != 400 && a.status != 414) || a.code != "BAD_REQUEST" || !strings.Contains(a.message, "path") {
				t.Errorf("%.60s on %s: %+v, want a 400 or 414 BAD_REQUEST about the path", target, base, a)
			}
			if first.status == 0 {
				first = a
			} else if a != first {
				t.Errorf("%.60s: erp_version first %+v, erp_auth first %+v", target, first, a)
			}
		}
	}
}
