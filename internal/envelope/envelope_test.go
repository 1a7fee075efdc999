package envelope

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	keep := "0F8FAD5B-D9CB-469F-A165-70867728950E"
	if got := RequestID(keep); got != keep {
		t.Fatalf("valid id not kept: %s", got)
	}
	for _, bad := range []string{"", "abc", "00000000-0000-0000-0000-000000000000", "0f8fad5bd9cb469fa16570867728950e", `"><script>`, strings.Repeat("a", 36)} {
		got := RequestID(bad)
		u, err := uuid.Parse(got)
		if err != nil || u.Version() != 7 || got == bad {
			t.Fatalf("RequestID(%q) = %q, want a new UUIDv7", bad, got)
		}
	}
}

func TestAppendEnvelopes(t *testing.T) {
	t.Parallel()
	m := &Meta{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RequestID: "id", CompanyID: "acme\"x", UserID: "u\x01", APIVersion: "v2"}
	ok := AppendSuccess(nil, []byte(`[1]`), m, &Pagination{Page: 2, Limit: 10, Total: 25, HasNext: true})
	want := `{"success":true,"data":[1],"meta":{"timestamp":"2026-01-02T03:04:05.000Z","request_id":"id","company_id":"acme\"x","user_id":"u\u0001","api_version":"v2"},"pagination":{"page":2,"limit":10,"total":25,"has_next":true}}`
	if string(ok) != want {
		t.Fatalf("got  %s\nwant %s", ok, want)
	}
	fail := AppendFailure(nil, &Meta{RequestID: "id"}, Error{Code: "VALIDATION_FAILED", Message: "bad \xff", Field: "amount", Context: map[string]any{"min": 1}})
	var v struct {
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
		Errors  []Error         `json:"errors"`
	}
	if err := json.Unmarshal(fail, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", fail, err)
	}
	if v.Success || string(v.Data) != "null" || v.Errors[0].Field != "amount" || v.Errors[0].Message != "bad \ufffd" || v.Errors[0].Context["min"] != float64(1) {
		t.Fatalf("unexpected failure envelope %s", fail)
	}
}

func TestRESTTranslate(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "/v1/invoices?page=3&limit=20", nil)
	cases := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantStatus int
		wantCodes  []string
		wantPage   *Pagination
	}{
		{"object", 200, nil, `{"id":1}`, 200, nil, nil},
		{"collection", 200, http.Header{"X-Total-Count": {"65"}}, `[{"id":1}]`, 200, nil, &Pagination{Page: 3, Limit: 20, Total: 65, HasNext: true}},
		{"last page", 200, http.Header{"X-Total-Count": {"60"}}, `[]`, 200, nil, &Pagination{Page: 3, Limit: 20, Total: 60}},
		{"header page wins", 200, http.Header{"X-Total-Count": {"60"}, "X-Page": {"1"}, "X-Per-Page": {"50"}}, `[]`, 200, nil, &Pagination{Page: 1, Limit: 50, Total: 60, HasNext: true}},
		{"array without total", 200, nil, `[1,2]`, 200, nil, nil},
		{"empty", 201, nil, ``, 201, nil, nil},
		{"invalid", 200, nil, `{"a":`, 502, []string{"UPSTREAM_UNAVAILABLE"}, nil},
		{"problem with fields", 422, nil, `{"type":"x","title":"Validation failed","status":422,"errors":[{"field":"amount","code":"must_be_positive","message":"amount must be > 0"},{"field":"currency","message":"unknown"}]}`, 422, []string{"VALIDATION_FAILED", "VALIDATION_FAILED"}, nil},
		{"upstream code kept", 409, nil, `{"error":{"code":"DUPLICATE_SKU","message":"sku taken"}}`, 409, []string{"DUPLICATE_SKU"}, nil},
		{"non-JSON error", 500, nil, `oops`, 500, []string{"INTERNAL"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			res := REST.Translate(&Answer{Request: req, Status: tc.status, Header: h, Body: []byte(tc.body)})
			if res.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d", res.Status, tc.wantStatus)
			}
			if len(res.Errors) != len(tc.wantCodes) {
				t.Fatalf("errors %+v, want codes %v", res.Errors, tc.wantCodes)
			}
			for i, c := range tc.wantCodes {
				if res.Errors[i].Code != c {
					t.Fatalf("error %d code %s, want %s", i, res.Errors[i].Code, c)
				}
			}
			if (res.Pagination == nil) != (tc.wantPage == nil) || (res.Pagination != nil && *res.Pagination != *tc.wantPage) {
				t.Fatalf("pagination %+v, want %+v", res.Pagination, tc.wantPage)
			}
		})
	}
}

func BenchmarkAppendSuccess(b *testing.B) {
	data := []byte(`[{"id":"inv_acme_0001","number":"ACME-0001","amount":1234.5,"currency":"EUR","status":"paid"}]`)
	m := &Meta{Timestamp: time.Now(), RequestID: "0f8fad5b-d9cb-469f-a165-70867728950e", CompanyID: "acme", UserID: "usr_1", APIVersion: "v1"}
	p := &Pagination{Page: 1, Limit: 50, Total: 120, HasNext: true}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf = AppendSuccess(buf[:0], data, m, p)
	}
}

func BenchmarkStream(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 2000 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"id":"inv_acme_0001","number":"ACME-0001","amount":1234.5,"currency":"EUR","status":"paid","note":"a \"quoted\" word"}`)
	}
	sb.WriteString("]")
	doc := []byte(sb.String())
	s := NewStream(nopWriter{})
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		s.Reset(nopWriter{})
		for off := 0; off < len(doc); off += 32 << 10 {
			_, _ = s.Write(doc[off:min(off+32<<10, len(doc))])
		}
		if ok, _ := s.Finish(); !ok {
			b.Fatal("invalid")
		}
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
