package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func cursorIDs(t *testing.T, body []byte, odata bool) []string {
	t.Helper()
	var recs []map[string]any
	if odata {
		var c struct {
			Value []map[string]any `json:"value"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatalf("%v %s", err, body)
		}
		recs = c.Value
	} else if err := json.Unmarshal(body, &recs); err != nil {
		t.Fatalf("%v %s", err, body)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i], _ = r["id"].(string)
	}
	return out
}

func TestListAfter(t *testing.T) {
	s := newTestServer()
	rec := call(t, s, "GET", "/v2/invoices?after=inv_acme_0118&limit=5", "acme", "")
	got := cursorIDs(t, rec.Body.Bytes(), false)
	if rec.Code != 200 || strings.Join(got, ",") != "inv_acme_0119,inv_acme_0120" || rec.Header().Get("X-Total-Count") != "120" || rec.Header().Get("Link") != "" {
		t.Fatalf("%d %v %v", rec.Code, got, rec.Header())
	}
	// a key that is not there: the records after where it would be; a next link while more follow
	rec = call(t, s, "GET", "/v2/invoices?after=inv_acme_0010x&limit=2&sort=id", "acme", "")
	if got := cursorIDs(t, rec.Body.Bytes(), false); strings.Join(got, ",") != "inv_acme_0011,inv_acme_0012" ||
		!strings.Contains(rec.Header().Get("Link"), "after=inv_acme_0012") || !strings.Contains(rec.Header().Get("Link"), `rel="next"`) {
		t.Fatalf("%v %v", got, rec.Header())
	}
	for _, q := range []string{"after=inv_acme_0001&page=2", "after=inv_acme_0001&sort=-id", "after=", "after=a&after=b"} {
		if rec := call(t, s, "GET", "/v2/invoices?"+q, "acme", ""); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
}

func odataPrefer(t *testing.T, s http.Handler, target string, maxPage string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	assert(req, "acme")
	if maxPage != "" {
		req.Header.Set("Prefer", "odata.maxpagesize="+maxPage)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestODataSkipToken(t *testing.T) {
	s := newTestServer()
	for _, order := range []string{"", "&$orderby=amount%20desc"} {
		seen := map[string]bool{}
		target := "/odata/v1/LedgerEntries?$count=true" + order
		for pages := 0; ; pages++ {
			rec := odataPrefer(t, s, target, "10")
			if rec.Code != 200 || rec.Header().Get("Preference-Applied") != "odata.maxpagesize=10" {
				t.Fatalf("%s: %d %v %s", target, rec.Code, rec.Header(), rec.Body)
			}
			for _, id := range cursorIDs(t, rec.Body.Bytes(), true) {
				if seen[id] {
					t.Fatalf("%s twice", id)
				}
				seen[id] = true
			}
			var c struct {
				Next string `json:"@odata.nextLink"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &c)
			if c.Next == "" {
				break
			}
			u, err := url.Parse(c.Next)
			if err != nil || u.Query().Get("$skiptoken") == "" || u.Query().Has("$skip") || pages > 10 {
				t.Fatalf("nextLink %q", c.Next)
			}
			target = "/odata/v1/" + c.Next
		}
		if len(seen) != 64 {
			t.Fatalf("order %q: %d entries, want 64", order, len(seen))
		}
	}
	for _, q := range []string{"$skiptoken=zzz", "$skiptoken=o5", "$skiptoken=k&$skip=1"} {
		if rec := odataPrefer(t, s, "/odata/v1/LedgerEntries?"+q, "5"); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", q, rec.Code)
		}
	}
}
