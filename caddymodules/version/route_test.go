package version

import (
	"net/http"
	"testing"
	"time"
)

func TestHeaderVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		h        http.Header
		v        string
		conflict bool
	}{
		{http.Header{}, "", false},
		{http.Header{"Api-Version": {"v2"}}, "v2", false},
		{http.Header{"Api-Version": {" 2 "}}, "v2", false},
		{http.Header{"Accept": {"application/json, application/vnd.erp.v2+json;q=0.9"}}, "v2", false},
		{http.Header{"Accept": {"Application/Vnd.Erp.V3+JSON"}}, "v3", false},
		{http.Header{"Accept": {"application/vnd.erp.+json"}}, "", false},
		{http.Header{"Api-Version": {"v1"}, "Accept": {"application/vnd.erp.v1+json"}}, "v1", false},
		{http.Header{"Api-Version": {"v1"}, "Accept": {"application/vnd.erp.v2+json"}}, "v1", true},
		{http.Header{"Api-Version": {"v1", "v2"}}, "v1", true},
	} {
		v, conflict := headerVersion(c.h)
		if v != c.v || conflict != c.conflict {
			t.Errorf("%v: %q %v", c.h, v, conflict)
		}
	}
}

func TestHeaderValues(t *testing.T) {
	t.Parallel()
	d := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if deprecationValue(d) != "@1767225600" || sunsetValue(d) != "Thu, 01 Jan 2026 00:00:00 GMT" ||
		successorLink("/api/v2/invoices") != `</api/v2/invoices>; rel="successor-version"` {
		t.Fatal(deprecationValue(d), sunsetValue(d))
	}
}

func TestLooksLikeVersion(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"v1": true, "v2.1": true, "v10": true, "v": false, "v.1": false, "v1.": false, "invoices": false, "v1.2.3": false, "V1": false} {
		if looksLikeVersion(s) != want {
			t.Errorf("%s", s)
		}
	}
}
