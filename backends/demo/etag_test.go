package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// callH is call with extra request headers.
func callH(t *testing.T, s http.Handler, method, target, company, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	if rd != nil {
		req = httptest.NewRequest(method, target, rd)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	assert(req, company)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestItemETagsAndPreconditions(t *testing.T) {
	s := newTestServer()
	const item = "/v1/customers/cus_acme_001"
	get := call(t, s, http.MethodGet, item, "acme", "")
	tag := get.Header().Get("ETag")
	if get.Code != http.StatusOK || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 3 {
		t.Fatalf("GET = %d, ETag %q", get.Code, tag)
	}
	if again := call(t, s, http.MethodGet, item, "acme", ""); again.Header().Get("ETag") != tag {
		t.Fatalf("ETag not stable: %q then %q", tag, again.Header().Get("ETag"))
	}
	if v2 := call(t, s, http.MethodGet, "/v2/customers/cus_acme_001", "acme", ""); v2.Header().Get("ETag") == tag {
		t.Fatal("v1 and v2 representations share a strong ETag")
	}
	for _, inm := range []string{tag, "W/" + tag, `"x", ` + tag, "*"} {
		if nm := callH(t, s, http.MethodGet, item, "acme", "", map[string]string{"If-None-Match": inm}); nm.Code != http.StatusNotModified || nm.Body.Len() != 0 || nm.Header().Get("ETag") != tag {
			t.Fatalf("If-None-Match %s: %d %q body %q", inm, nm.Code, nm.Header().Get("ETag"), nm.Body)
		}
	}
	if nm := callH(t, s, http.MethodGet, item, "acme", "", map[string]string{"If-None-Match": `"other"`}); nm.Code != http.StatusOK {
		t.Fatalf("If-None-Match other: %d", nm.Code)
	}
	// a weak tag never passes If-Match (strong comparison)
	if p := callH(t, s, http.MethodPatch, item, "acme", `{"name":"A"}`, map[string]string{"If-Match": "W/" + tag}); p.Code != http.StatusPreconditionFailed || p.Header().Get("ETag") != tag {
		t.Fatalf("weak If-Match: %d %s", p.Code, p.Body)
	}
	ok := callH(t, s, http.MethodPatch, item, "acme", `{"name":"Renamed"}`, map[string]string{"If-Match": tag})
	newTag := ok.Header().Get("ETag")
	if ok.Code != http.StatusOK || newTag == "" || newTag == tag {
		t.Fatalf("PATCH with current If-Match: %d ETag %q", ok.Code, newTag)
	}
	if g := call(t, s, http.MethodGet, item, "acme", ""); g.Header().Get("ETag") != newTag {
		t.Fatalf("GET after PATCH: ETag %q, the PATCH said %q", g.Header().Get("ETag"), newTag)
	}
	stale := callH(t, s, http.MethodPatch, item, "acme", `{"name":"Lost"}`, map[string]string{"If-Match": tag})
	if stale.Code != http.StatusPreconditionFailed || decodeProblem(t, stale).Status != http.StatusPreconditionFailed {
		t.Fatalf("stale PATCH: %d %s", stale.Code, stale.Body)
	}
	if g := call(t, s, http.MethodGet, item, "acme", ""); strings.Contains(g.Body.String(), "Lost") {
		t.Fatal("a stale PATCH was applied")
	}
	if p := callH(t, s, http.MethodPut, item, "acme", `{"name":"P","email":"p@example.com"}`, map[string]string{"If-Match": "*"}); p.Code != http.StatusOK {
		t.Fatalf("PUT If-Match *: %d %s", p.Code, p.Body)
	}
	if d := callH(t, s, http.MethodDelete, "/v1/products/prd_acme_001", "acme", "", map[string]string{"If-Match": `"nope"`}); d.Code != http.StatusPreconditionFailed {
		t.Fatalf("stale DELETE: %d %s", d.Code, d.Body)
	}
	ptag := call(t, s, http.MethodGet, "/v1/products/prd_acme_001", "acme", "").Header().Get("ETag")
	if d := callH(t, s, http.MethodDelete, "/v1/products/prd_acme_001", "acme", "", map[string]string{"If-Match": ptag}); d.Code != http.StatusNoContent {
		t.Fatalf("DELETE with current If-Match: %d %s", d.Code, d.Body)
	}
	if c := call(t, s, http.MethodPost, "/v1/customers", "acme", `{"name":"N","email":"n@example.com"}`); c.Code != http.StatusCreated || c.Header().Get("ETag") == "" {
		t.Fatalf("POST: %d ETag %q", c.Code, c.Header().Get("ETag"))
	}
}

func TestODataETags(t *testing.T) {
	s := newTestServer()
	list := call(t, s, http.MethodGet, "/odata/v1/LedgerEntries?$top=1", "acme", "")
	var doc struct {
		Value []map[string]any `json:"value"`
	}
	if err := json.Unmarshal(list.Body.Bytes(), &doc); err != nil || len(doc.Value) != 1 {
		t.Fatalf("list: %v %s", err, list.Body)
	}
	tag, _ := doc.Value[0]["@odata.etag"].(string)
	id, _ := doc.Value[0]["id"].(string)
	if tag == "" || id == "" {
		t.Fatalf("no @odata.etag in %s", list.Body)
	}
	one := call(t, s, http.MethodGet, "/odata/v1/LedgerEntries('"+id+"')", "acme", "")
	if one.Code != 200 || one.Header().Get("ETag") != tag || !strings.Contains(one.Body.String(), `"@odata.etag"`) {
		t.Fatalf("entity: %d ETag %q, list said %q", one.Code, one.Header().Get("ETag"), tag)
	}
	if nm := callH(t, s, http.MethodGet, "/odata/v1/LedgerEntries('"+id+"')", "acme", "", map[string]string{"If-None-Match": tag}); nm.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", nm.Code)
	}
}
