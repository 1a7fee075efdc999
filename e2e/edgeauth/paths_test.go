package edgeauth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// rawRequest sends the request line exactly as given (no client-side path
// cleaning) and returns the status code and body.
func rawRequest(t *testing.T, base, method, target string, header map[string]string, body string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// TestPathsAndMethods: a request is refused or authorised exactly as its
// canonical form (SECURITY.md category 7). alice is a viewer at globex: any
// write there must fail, whatever the spelling of the path or method.
func TestPathsAndMethods(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	alice := login(t, in.URL, "alice@acme.test", "acme")
	sw := httpt.Do(t, "POST", in.URL+"/api/v1/auth/switch-company", httpt.JSON(t, map[string]string{"company_id": "globex"}), bearer(alice.Access))
	var viewer struct {
		Access string `json:"access_token"`
	}
	if err := json.Unmarshal(expectOK(t, sw).Data, &viewer); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + viewer.Access}
	write := `{"customer_id":"cus_globex_001","amount":5,"currency":"USD"}`
	for _, target := range []string{
		"/api/v2/invoices",
		"/api/v2/%69nvoices",
		"/api/v2/invoices/",
		"/api//v2/invoices",
		"/api/v2/./invoices",
		"/api/v2/x/../invoices",
		"/api/v2/x/%2e%2e/invoices",
		"/api/v2/x%2f..%2finvoices",
		"/api/v2/x%5c..%5cinvoices",
		"/API/V2/INVOICES",
		"/api/V2/Invoices",
		"/api/v2/invoices;x=1",
	} {
		status, body := rawRequest(t, in.URL, "POST", target, auth, write)
		if status/100 == 2 {
			t.Errorf("viewer wrote through %s: %d %s", target, status, body)
		}
		if !json.Valid([]byte(body)) {
			t.Errorf("%s: answer is not an envelope: %q", target, body)
		}
	}
	// method overrides don't turn a read into a write
	for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		status, body := rawRequest(t, in.URL, "GET", "/api/v2/invoices?limit=1", map[string]string{"Authorization": auth["Authorization"], h: "DELETE"}, "")
		if status != 200 {
			t.Errorf("GET with %s: %d %s", h, status, body)
		}
	}
	status, _ := rawRequest(t, in.URL, "POST", "/api/v2/invoices?_method=GET", auth, write)
	if status != 403 {
		t.Errorf("POST with _method=GET: %d, want 403", status)
	}
	// the canonical form of a read is authorised
	if status, body := rawRequest(t, in.URL, "GET", "/api/v2/invoices?limit=1", auth, ""); status != 200 {
		t.Fatalf("canonical read: %d %s", status, body)
	}
}

// TestBackendSeesOnlyTheEdgesIdentity: identity and override headers from
// the client never reach the backend, nor does the credential.
func TestBackendSeesOnlyTheEdgesIdentity(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	in := newStubInstance(t, is)
	tok := is.sign(t, "ed-1", claims(nil), nil)
	status, body := rawRequest(t, in.URL, "GET", "/api/_demo/echo-headers", map[string]string{
		"Authorization":          "Bearer " + tok,
		"X-ERP-Company-ID":       "globex",
		"X_ERP_Company_ID":       "globex",
		"x-erp-user-id":          "root",
		"X-Erp-Roles":            "owner",
		"X-ERP-Scope":            "invoices:write",
		"X-HTTP-Method-Override": "DELETE",
	}, "")
	if status != 200 {
		t.Fatalf("echo: %d %s", status, body)
	}
	var env struct {
		Data struct {
			Headers map[string][]string `json:"headers"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	h := http.Header(env.Data.Headers)
	want := map[string]string{"X-Erp-Company-Id": "acme", "X-Erp-User-Id": "usr_test", "X-Erp-Roles": "accountant", "X-Erp-Scope": "invoices:read"}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("backend got %s=%v, want %s", k, got, v)
		}
	}
	for k := range h {
		lk := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if lk == "authorization" || strings.Contains(lk, "method") || (strings.HasPrefix(lk, "x-erp-") && want[http.CanonicalHeaderKey(lk)] == "") {
			t.Errorf("backend got %s: %v", k, h[k])
		}
		if _, ok := want[k]; !ok && strings.HasPrefix(lk, "x-erp-") {
			t.Errorf("backend got a client spelling %s", k)
		}
	}
}
