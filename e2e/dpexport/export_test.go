// Package dpexport drives erp_bulk's streamed export
// (GET /api/v1/{backend}/export?format=ndjson|csv) through the running
// gateway binary on Caddyfile.example: the export of a REST, an OData and a
// JSON-RPC backend equals the walk of the collection's pages through the
// edge, in both formats, with and without a filter.
package dpexport

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// pageWalk is every record of path's collection, read through the edge page
// by page (limit 200) until pagination.has_next is false.
func pageWalk(t *testing.T, base, token, path string, params url.Values) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	for page := 1; page < 1000; page++ {
		q := url.Values{}
		for k, v := range params {
			q[k] = v
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("limit", "200")
		resp := httpt.Get(t, base+path+"?"+q.Encode(), demoauth.Bearer(token))
		if resp.StatusCode != 200 {
			t.Fatalf("%s page %d: %d %.500s", path, page, resp.StatusCode, resp.Body)
		}
		var env struct {
			Data       []json.RawMessage `json:"data"`
			Pagination struct {
				HasNext bool `json:"has_next"`
			} `json:"pagination"`
		}
		if err := json.Unmarshal(resp.Body, &env); err != nil {
			t.Fatalf("%s: %v %.300s", path, err, resp.Body)
		}
		all = append(all, env.Data...)
		if !env.Pagination.HasNext {
			return all
		}
	}
	t.Fatalf("%s: no end of pages", path)
	return nil
}

// canon is a record re-encoded with sorted keys, for comparing.
func canon(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%v: %.200s", err, raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestExportEqualsPageWalk(t *testing.T) {
	in := stacktest.Start(t, stacktest.Options{})
	token := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	for _, c := range []struct {
		backend string
		params  url.Values
	}{
		{"customers", nil},
		{"invoices", url.Values{"filter": {"status:eq:paid"}}},
		{"ledger", nil},
		{"ledger", url.Values{"sort": {"-id"}}},
		{"inventory", nil},
	} {
		t.Run(c.backend+"?"+c.params.Encode(), func(t *testing.T) {
			want := pageWalk(t, in.URL, token, "/api/v1/"+c.backend, c.params)
			if len(want) == 0 {
				t.Fatalf("empty collection: the comparison would prove nothing")
			}
			q := url.Values{"format": {"ndjson"}}
			for k, v := range c.params {
				q[k] = v
			}
			resp := httpt.Get(t, in.URL+"/api/v1/"+c.backend+"/export?"+q.Encode(), demoauth.Bearer(token))
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("ndjson: %d %q %.500s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body)
			}
			lines := bytes.Split(bytes.TrimSuffix(resp.Body, []byte("\n")), []byte("\n"))
			if len(lines) != len(want) {
				t.Fatalf("ndjson: %d records, the pages hold %d", len(lines), len(want))
			}
			for i := range want {
				if g, w := canon(t, lines[i]), canon(t, want[i]); g != w {
					t.Fatalf("record %d: export %s, page walk %s", i, g, w)
				}
			}

			q.Set("format", "csv")
			resp = httpt.Get(t, in.URL+"/api/v1/"+c.backend+"/export?"+q.Encode(), demoauth.Bearer(token))
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
				t.Fatalf("csv: %d %.500s", resp.StatusCode, resp.Body)
			}
			rows, err := csv.NewReader(bytes.NewReader(resp.Body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(want)+1 {
				t.Fatalf("csv: %d rows for %d records", len(rows), len(want))
			}
			col := -1
			for i, h := range rows[0] {
				if h == "id" {
					col = i
				}
			}
			if col < 0 {
				t.Fatalf("csv header without id: %q", rows[0])
			}
			for i, w := range want {
				var rec map[string]any
				_ = json.Unmarshal(w, &rec)
				if got := rows[i+1][col]; got != fmt.Sprint(rec["id"]) {
					t.Fatalf("csv row %d: id %q, page walk %v", i, got, rec["id"])
				}
			}
		})
	}
}

func TestExportRefusesPagingParams(t *testing.T) {
	in := stacktest.Start(t, stacktest.Options{})
	token := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	for _, q := range []string{"format=xml", "page=2", "limit=10"} {
		resp := httpt.Get(t, in.URL+"/api/v1/customers/export?"+q, demoauth.Bearer(token))
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d %.300s", q, resp.StatusCode, resp.Body)
		}
	}
	if resp := httpt.Get(t, in.URL+"/api/v1/customers/export", nil); resp.StatusCode != 401 {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}
