package credential_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/erpgate/erpgate/internal/credential"
)

func TestCookieCredential(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://edge.test/api/v1/x", nil)
	r.AddCookie(&http.Cookie{Name: "other", Value: "1"})
	if c, err := credential.FromRequest(r); err != nil || c.Kind != credential.None {
		t.Fatalf("no access cookie: %+v %v", c, err)
	}
	r.AddCookie(&http.Cookie{Name: credential.AccessCookie, Value: "tok"})
	c, err := credential.FromRequest(r)
	if err != nil || c.Kind != credential.Bearer || c.Source != credential.FromCookie || c.Value != "tok" {
		t.Fatalf("access cookie: %+v %v", c, err)
	}
	// a header credential wins over the cookie
	r.Header.Set("Authorization", "Bearer hdr")
	c, err = credential.FromRequest(r)
	if err != nil || c.Source != credential.FromAuthorization || c.Value != "hdr" {
		t.Fatalf("bearer and cookie: %+v %v", c, err)
	}
	r.Header.Del("Authorization")
	r.Header.Set("X-API-Key", "k")
	c, err = credential.FromRequest(r)
	if err != nil || c.Kind != credential.APIKey {
		t.Fatalf("API key and cookie: %+v %v", c, err)
	}
}

func TestCheckCSRF(t *testing.T) {
	req := func(method string, h map[string]string, csrfCookie string) *http.Request {
		r := httptest.NewRequest(method, "http://edge.test/api/v1/x", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		if csrfCookie != "" {
			r.AddCookie(&http.Cookie{Name: credential.CSRFCookie, Value: csrfCookie})
		}
		return r
	}
	allowed := []string{"https://app.example/"}
	for _, tc := range []struct {
		name   string
		method string
		h      map[string]string
		cookie string
		want   error
	}{
		{"GET needs nothing", http.MethodGet, nil, "", nil},
		{"HEAD needs nothing", http.MethodHead, nil, "", nil},
		{"own origin and token", http.MethodPost, map[string]string{"Origin": "http://edge.test", "X-CSRF-Token": "s"}, "s", nil},
		{"allowed origin", http.MethodDelete, map[string]string{"Origin": "https://app.example", "X-CSRF-Token": "s"}, "s", nil},
		{"referer instead of origin", http.MethodPut, map[string]string{"Referer": "http://edge.test/page?x=1", "X-CSRF-Token": "s"}, "s", nil},
		{"other origin", http.MethodPost, map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": "s"}, "s", credential.ErrCSRFOrigin},
		{"origin null", http.MethodPost, map[string]string{"Origin": "null", "X-CSRF-Token": "s"}, "s", credential.ErrCSRFOrigin},
		{"no origin", http.MethodPatch, map[string]string{"X-CSRF-Token": "s"}, "s", credential.ErrCSRFOrigin},
		{"no header", http.MethodPost, map[string]string{"Origin": "http://edge.test"}, "s", credential.ErrCSRFToken},
		{"no cookie", http.MethodPost, map[string]string{"Origin": "http://edge.test", "X-CSRF-Token": "s"}, "", credential.ErrCSRFToken},
		{"mismatch", http.MethodPost, map[string]string{"Origin": "http://edge.test", "X-CSRF-Token": "t"}, "s", credential.ErrCSRFToken},
	} {
		err := credential.CheckCSRF(req(tc.method, tc.h, tc.cookie), allowed)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err != nil {
			if e := credential.CSRFRefusal(err); e.Status != http.StatusForbidden || e.Code != "FORBIDDEN" {
				t.Errorf("%s: refusal %+v", tc.name, e)
			}
		}
	}
}

func BenchmarkFromRequestCookie(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "http://edge.test/api/v1/x", nil)
	r.Header.Set("Cookie", "a=1; "+credential.AccessCookie+"=tok; "+credential.CSRFCookie+"=s")
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := credential.FromRequest(r); c.Source != credential.FromCookie {
			b.Fatal(c)
		}
	}
}

func TestRemoveCookies(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; " + credential.AccessCookie + "=t; " + credential.CSRFCookie + "=s", credential.RefreshCookie + "=r; b=2"}}
	credential.RemoveCookies(h)
	if got := h.Get("Cookie"); got != "a=1; b=2" {
		t.Fatalf("Cookie %q", got)
	}
	h = http.Header{"Cookie": {credential.AccessCookie + "=t"}}
	credential.RemoveCookies(h)
	if _, has := h["Cookie"]; has {
		t.Fatalf("Cookie %q", h["Cookie"])
	}
}
