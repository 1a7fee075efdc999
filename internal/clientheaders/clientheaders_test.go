package clientheaders

import (
	"net/http"
	"slices"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	m, err := New(Edge, []string{DefaultWord, "X-Extra"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"X-Erp-Company-Id", "X_erp_company_id", "x-erp-assertion", "X-ERP-ASSERTION", "X_erp-Scope",
		"X-User-Id", "X_user_id", "X-USER-ID", "X-Roles", "X_roles", "X-Company-Id", "X-Tenant-Id", "X_tenant_id",
		"X-Forwarded-User", "X_forwarded_user", "X-Remote-User", "Remote-User", "Remote_user", "remote-user",
		"X-Auth-Request-User", "X-Auth-Request-Email", "X_auth_request_access_token", "X-Auth-Request-",
		"X-Extra", "X_extra",
	} {
		if !m.Match(k) {
			t.Errorf("%q not matched", k)
		}
	}
	for _, k := range []string{
		"", "Authorization", "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-User-Agent", "Accept",
		"X-Auth-Request", "X-Erp-Company", "X-Roles-Extra", "User-Id", "Remote-Addr", "X-Erp-Plan",
	} {
		if m.Match(k) {
			t.Errorf("%q matched", k)
		}
	}
}

func TestStrip(t *testing.T) {
	t.Parallel()
	m, err := New(Edge, []string{DefaultWord})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{
		"Accept": {"*/*"}, "X-User-Id": {"root"}, "X_user_id": {"root"}, "X-Auth-Request-Groups": {"admin"},
		"X-Erp-Assertion": {"forged"}, "Remote-User": {"root"}, "X-Request-Id": {"id"},
	}
	m.Strip(h)
	var keys []string
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"Accept", "X-Request-Id"}) {
		t.Fatalf("left %q", keys)
	}
}

func TestReplacedDefault(t *testing.T) {
	t.Parallel()
	m, err := New(Edge, []string{"X-Tenant"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Match("X-User-Id") || !m.Match("X_tenant") || !m.Match("X-Erp-User-Id") {
		t.Fatal("a replaced default list still matches")
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{{""}, {"*"}, {"X User"}, {"X-*-Id"}, {"X:Y"}} {
		if Check(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := Check([]string{"default", "X-A", "X-B-*", "x_c"}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkStrip: a request with no such header must not allocate.
func BenchmarkStrip(b *testing.B) {
	m, err := New(Edge, []string{DefaultWord})
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{
		"Accept": {"application/json"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"bench/1"},
		"X-Request-Id": {"0193a5d2-7c1e-7b3a-9f00-5a1c2b3d4e5f"}, "Authorization": {"Bearer eyJhbGciOi.eyJzdWIiOi.sig"},
		"Content-Type": {"application/json"}, "X-Forwarded-For": {"10.0.0.1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Strip(h)
	}
	if len(h) != 7 {
		b.Fatal("stripped a harmless header")
	}
}
