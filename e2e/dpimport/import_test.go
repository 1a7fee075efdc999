// Package dpimport drives erp_import (POST /api/{v}/{backend}/import)
// through the running gateway binary on Caddyfile.example: NDJSON and CSV
// imports whose rows REST then shows, a malformed line and an invalid row
// reported by line while the others are created, a dry run that creates
// nothing, a viewer whose every row is refused, and the quota counted
// once per row.
package dpimport

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

type result struct {
	Line   int    `json:"line"`
	Status int    `json:"status"`
	ID     string `json:"id"`
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"errors"`
}

type summary struct {
	DryRun         bool     `json:"dry_run"`
	Rows           int      `json:"rows"`
	Created        int      `json:"created"`
	Failed         int      `json:"failed"`
	Results        []result `json:"results"`
	ResultsOmitted int      `json:"results_omitted"`
	Stopped        *struct {
		Line int    `json:"line"`
		Code string `json:"code"`
	} `json:"stopped"`
}

func (s *summary) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

func importRows(t *testing.T, base, token, path, contentType, body string) *summary {
	t.Helper()
	resp := httpt.Do(t, http.MethodPost, base+path, []byte(body), map[string]string{
		"Authorization": "Bearer " + token, "Content-Type": contentType,
	})
	env := resp.Envelope(t)
	if resp.StatusCode != 200 || !env.Success {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, resp.Body)
	}
	var s summary
	if err := json.Unmarshal(env.Data, &s); err != nil {
		t.Fatalf("data: %v: %s", err, resp.Body)
	}
	return &s
}

// customer reads one customer over REST (v1), or returns the status.
func customer(t *testing.T, base, token, id string) (map[string]any, int) {
	t.Helper()
	resp := httpt.Get(t, base+"/api/v1/customers/"+id, demoauth.Bearer(token))
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Envelope(t).Data, &m); err != nil {
		t.Fatal(err)
	}
	return m, 200
}

func total(t *testing.T, base, token string) int64 {
	t.Helper()
	resp := httpt.Get(t, base+"/api/v1/customers?limit=1", demoauth.Bearer(token))
	env := resp.Envelope(t)
	if resp.StatusCode != 200 || env.Pagination == nil {
		t.Fatalf("customers: %d %s", resp.StatusCode, resp.Body)
	}
	return env.Pagination.Total
}

// quotaUsed is the caller's company's monthly quota use (erp_usage does
// not count itself).
func quotaUsed(t *testing.T, base, token string) int64 {
	t.Helper()
	resp := httpt.Get(t, base+"/api/v1/usage", demoauth.Bearer(token))
	if resp.StatusCode != 200 {
		t.Fatalf("usage: %d %s", resp.StatusCode, resp.Body)
	}
	var u struct {
		Quota struct {
			Used *int64 `json:"used"`
		} `json:"quota"`
	}
	if err := json.Unmarshal(resp.Envelope(t).Data, &u); err != nil || u.Quota.Used == nil {
		t.Fatalf("usage: %v %s", err, resp.Body)
	}
	return *u.Quota.Used
}

func TestImport(t *testing.T) {
	in := stacktest.Start(t, stacktest.Options{})
	admin := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access    // acme admin: customers:write
	viewer := demoauth.Login(t, in.URL, "alice@acme.test", "globex").Access // globex viewer: read only

	t.Run("ndjson", func(t *testing.T) {
		before := total(t, in.URL, admin)
		usedBefore := quotaUsed(t, in.URL, admin)
		body := `{"name":"Imp One","email":"imp1@example.test"}
{"name": broken
{"name":"Imp Three","email":"not-an-email"}

{"name":"Imp Five","email":"imp5@example.test"}
`
		s := importRows(t, in.URL, admin, "/api/v1/customers/import", "application/x-ndjson", body)
		// each of the three rows that reached the chain counts (the malformed one did not)
		if got := quotaUsed(t, in.URL, admin) - usedBefore; got != 3 {
			t.Fatalf("quota used grew by %d, want 3 (one per well-formed row)", got)
		}
		if s.DryRun || s.Rows != 4 || s.Created != 2 || s.Failed != 2 || len(s.Results) != 4 || s.ResultsOmitted != 0 || s.Stopped != nil {
			t.Fatalf("summary %s", s)
		}
		byLine := map[int]result{}
		for _, r := range s.Results {
			byLine[r.Line] = r
		}
		if r := byLine[2]; r.Status != 400 || len(r.Errors) != 1 || r.Errors[0].Code != "BAD_REQUEST" {
			t.Fatalf("line 2 (malformed): %+v", r)
		}
		if r := byLine[3]; r.Status != 422 || len(r.Errors) == 0 || r.Errors[0].Code != "VALIDATION_FAILED" || r.Errors[0].Field != "email" {
			t.Fatalf("line 3 (bad email): %+v", r)
		}
		for line, name := range map[int]string{1: "Imp One", 5: "Imp Five"} {
			r := byLine[line]
			if r.Status != 201 || r.ID == "" {
				t.Fatalf("line %d: %+v", line, r)
			}
			c, st := customer(t, in.URL, admin, r.ID)
			if st != 200 || c["name"] != name {
				t.Fatalf("line %d: customer %s is %d %v", line, r.ID, st, c)
			}
		}
		if got := total(t, in.URL, admin); got != before+2 {
			t.Fatalf("customers %d → %d, want +2", before, got)
		}
	})

	t.Run("csv", func(t *testing.T) {
		before := total(t, in.URL, admin)
		body := "display_name,email\r\nCsv One,csv1@example.test\r\n\"Csv, \"\"Two\"\"\",csv2@example.test\r\nonly-one-cell\r\nCsv Four,csv4@example.test\r\n"
		s := importRows(t, in.URL, admin, "/api/v2/customers/import", "text/csv; charset=utf-8", body)
		if s.Rows != 4 || s.Created != 3 || s.Failed != 1 || len(s.Results) != 4 {
			t.Fatalf("summary %s", s)
		}
		if r := s.Results[2]; r.Line != 4 || r.Status != 400 {
			t.Fatalf("line 4 (one cell): %+v", r)
		}
		if r := s.Results[1]; r.Line != 3 || r.Status != 201 {
			t.Fatalf("line 3: %+v", r)
		}
		c, st := customer(t, in.URL, admin, s.Results[1].ID)
		if st != 200 || c["name"] != `Csv, "Two"` || c["email"] != "csv2@example.test" {
			t.Fatalf("customer %s: %d %v", s.Results[1].ID, st, c)
		}
		if got := total(t, in.URL, admin); got != before+3 {
			t.Fatalf("customers %d → %d, want +3", before, got)
		}
	})

	t.Run("dry_run", func(t *testing.T) {
		before := total(t, in.URL, admin)
		usedBefore := quotaUsed(t, in.URL, admin)
		body := "{\"name\":\"Dry One\",\"email\":\"dry1@example.test\"}\nnot json\n{\"name\":\"Dry Three\",\"email\":\"dry3@example.test\"}\n"
		s := importRows(t, in.URL, admin, "/api/v1/customers/import?dry_run=true", "application/x-ndjson", body)
		if got := quotaUsed(t, in.URL, admin) - usedBefore; got != 0 {
			t.Fatalf("a dry run counted %d against the quota", got)
		}
		if !s.DryRun || s.Rows != 3 || s.Created != 2 || s.Failed != 1 || s.Results[1].Line != 2 || s.Results[1].Status != 400 {
			t.Fatalf("summary %s", s)
		}
		for _, r := range s.Results {
			if r.ID != "" {
				t.Fatalf("a dry run gave an id: %s", s)
			}
		}
		if got := total(t, in.URL, admin); got != before {
			t.Fatalf("a dry run changed the customers: %d → %d", before, got)
		}
	})

	t.Run("viewer", func(t *testing.T) {
		before := total(t, in.URL, viewer)
		var b strings.Builder
		for i := range 5 {
			fmt.Fprintf(&b, "{\"name\":\"View %d\",\"email\":\"view%d@example.test\"}\n", i, i)
		}
		s := importRows(t, in.URL, viewer, "/api/v1/customers/import", "application/x-ndjson", b.String())
		if s.Rows != 5 || s.Created != 0 || s.Failed != 5 || len(s.Results) != 5 {
			t.Fatalf("summary %s", s)
		}
		for i, r := range s.Results {
			if r.Line != i+1 || r.Status != 403 || len(r.Errors) == 0 || r.Errors[0].Code != "FORBIDDEN" {
				t.Fatalf("row %d: %+v", i+1, r)
			}
		}
		if got := total(t, in.URL, viewer); got != before {
			t.Fatalf("a viewer's import changed the customers: %d → %d", before, got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		// no credential: erp_auth refuses the import itself
		resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/customers/import", []byte("{}\n"), map[string]string{"Content-Type": "application/x-ndjson"})
		if resp.StatusCode != 401 {
			t.Fatalf("anonymous: %d %s", resp.StatusCode, resp.Body)
		}
		resp = httpt.Do(t, http.MethodPost, in.URL+"/api/v1/customers/import", []byte(`{}`), map[string]string{
			"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
		if resp.StatusCode != 415 {
			t.Fatalf("JSON body: %d %s", resp.StatusCode, resp.Body)
		}
		resp = httpt.Do(t, http.MethodPost, in.URL+"/api/v1/customers/import", []byte("a,a\n1,2\n"), map[string]string{
			"Authorization": "Bearer " + admin, "Content-Type": "text/csv"})
		if resp.StatusCode != 400 || resp.Envelope(t).Code() != "BAD_REQUEST" {
			t.Fatalf("bad CSV header: %d %s", resp.StatusCode, resp.Body)
		}
		// an unknown backend: each row's create is the chain's 404
		s := importRows(t, in.URL, admin, "/api/v1/nosuch/import", "application/x-ndjson", "{\"a\":1}\n")
		if s.Failed != 1 || s.Results[0].Status != 404 {
			t.Fatalf("unknown backend: %s", s)
		}
	})
}
