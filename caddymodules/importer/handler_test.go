package importer

import (
	"net/http/httptest"
	"testing"
)

func TestTarget(t *testing.T) {
	h := &Handler{}
	if err := h.Provision(caddyContext()); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/api/v1/customers/import":      "/api/v1/customers",
		"/api/customers/import":         "/api/customers",
		"/api/v2.1/ledger/import":       "/api/v2.1/ledger",
		"/api/v1/customers":             "",
		"/api/x/customers/import":       "",
		"/api/v1/customers/import/more": "",
		"/api/v1/customers/export":      "",
		"/other/customers/import":       "",
		"/api/v1/%2e%2e/import":         "",
	} {
		got, ok := h.target(httptest.NewRequest("POST", path, nil))
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", path, got, ok, want)
		}
	}
}

func TestRecorderResult(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   string
	}{
		{201, `{"success":true,"data":{"id":"cus_1","name":"A"},"meta":{}}`, "201 cus_1 []"},
		{201, `{"success":true,"data":{"id":42},"meta":{}}`, "201 42 []"},
		{403, `{"success":false,"data":null,"errors":[{"code":"FORBIDDEN","message":"no"}]}`, "403  [FORBIDDEN:no:]"},
		{422, `{"success":false,"errors":[{"code":"VALIDATION_FAILED","message":"bad","field":"email"}]}`, "422  [VALIDATION_FAILED:bad:email]"},
		{502, `not json`, "502  [UPSTREAM_UNAVAILABLE:Bad Gateway:]"},
	}
	for _, c := range cases {
		rr := &recorder{header: map[string][]string{}}
		rr.WriteHeader(c.status)
		rr.Write([]byte(c.body))
		r := rr.result()
		got := fmtResult(r.Status, r.ID, r.Errors)
		if got != c.want {
			t.Errorf("%d %s: %s, want %s", c.status, c.body, got, c.want)
		}
	}
}
