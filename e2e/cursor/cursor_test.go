// Package cursor drives cursor pagination through the running gateway
// binary on Caddyfile.example: whole collections walked by `?cursor=` for
// each dialect (REST by keyset while invoices are added, REST by offset in
// another order, OData by $skiptoken, JSON-RPC by offset) with no record
// twice and none missing; tampered, foreign (another company, another
// listing) and malformed cursors, and page with cursor, refused 400 naming
// cursor; page/limit as before.
package cursor

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// page is a decoded collection answer.
type page struct {
	status int
	ids    []string
	pg     struct {
		Page       int    `json:"page"`
		Limit      int    `json:"limit"`
		Total      int64  `json:"total"`
		HasNext    bool   `json:"has_next"`
		NextCursor string `json:"next_cursor"`
	}
	env  *httpt.Envelope
	body string
}

func get(t *testing.T, base, token, path string) *page {
	t.Helper()
	resp := httpt.Get(t, base+path, demoauth.Bearer(token))
	p := &page{status: resp.StatusCode, body: string(resp.Body), env: resp.Envelope(t)}
	if resp.StatusCode != http.StatusOK {
		return p
	}
	var raw struct {
		Data       []map[string]any `json:"data"`
		Pagination json.RawMessage  `json:"pagination"`
	}
	if err := json.Unmarshal(resp.Body, &raw); err != nil || len(raw.Pagination) == 0 {
		t.Fatalf("GET %s: %v %s", path, err, resp.Body)
	}
	if err := json.Unmarshal(raw.Pagination, &p.pg); err != nil {
		t.Fatal(err)
	}
	for _, d := range raw.Data {
		p.ids = append(p.ids, fmt.Sprint(d["id"]))
	}
	return p
}

func mustGet(t *testing.T, base, token, path string) *page {
	t.Helper()
	p := get(t, base, token, path)
	if p.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, p.status, p.body)
	}
	return p
}

// refused checks a 400 BAD_REQUEST naming cursor (or field).
func refused(t *testing.T, what string, p *page, field string) {
	t.Helper()
	if p.status != http.StatusBadRequest || p.env.Code() != "BAD_REQUEST" || len(p.env.Errors) == 0 || p.env.Errors[0].Field != field {
		t.Fatalf("%s: want 400 BAD_REQUEST on %s, got %d %s", what, field, p.status, p.body)
	}
}

func with(path, cursor string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "cursor=" + url.QueryEscape(cursor)
}

// walk follows next_cursor from first to the end; between pages it calls
// between(i, p) (i the number of pages read, p the last). It fails on a record seen twice.
func walk(t *testing.T, base, token, first string, between func(int, *page)) (ids []string, pages []*page) {
	t.Helper()
	return walkOn(t, base, token, first, first, between)
}

// walkOn is walk with the cursors sent on path next (first without page).
func walkOn(t *testing.T, base, token, first, next string, between func(int, *page)) (ids []string, pages []*page) {
	t.Helper()
	seen := map[string]bool{}
	p := mustGet(t, base, token, first)
	for i := 1; ; i++ {
		pages = append(pages, p)
		for _, id := range p.ids {
			if seen[id] {
				t.Fatalf("%s: %s seen twice (page %d)", first, id, i)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if !p.pg.HasNext {
			if p.pg.NextCursor != "" {
				t.Fatalf("%s: a next_cursor on the last page", first)
			}
			return ids, pages
		}
		if p.pg.NextCursor == "" || len(p.ids) == 0 {
			t.Fatalf("%s: page %d has a next page but no next_cursor: %s", first, i, p.body)
		}
		if i > 100 {
			t.Fatalf("%s: more than 100 pages", first)
		}
		if between != nil {
			between(i, p)
		}
		p = mustGet(t, base, token, with(next, p.pg.NextCursor))
	}
}

func allIDs(t *testing.T, base, token, path string) []string {
	t.Helper()
	p := mustGet(t, base, token, path)
	if p.pg.HasNext {
		t.Fatalf("%s is more than one page", path)
	}
	return p.ids
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	w := map[string]bool{}
	for _, id := range want {
		w[id] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for _, id := range got {
		if !w[id] {
			t.Fatalf("%s: %s is not in the collection", what, id)
		}
	}
}

func TestCursorPagination(t *testing.T) {
	in := stacktest.Start(t, stacktest.Options{})
	acme := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	globex := demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access

	t.Run("REST keyset while invoices are added", func(t *testing.T) {
		before := allIDs(t, in.URL, acme, "/api/v2/invoices?limit=200")
		var added []string
		h := demoauth.Bearer(acme)
		h["Content-Type"] = "application/json"
		// Between pages, invoices are added and one already seen is deleted:
		// by offset, the deletion would shift a record the client has not
		// seen onto the page it already read.
		ids, pages := walk(t, in.URL, acme, "/api/v2/invoices?limit=25", func(i int, p *page) {
			if i == 2 {
				del := httpt.Do(t, http.MethodDelete, in.URL+"/api/v2/invoices/"+p.ids[0], nil, demoauth.Bearer(acme))
				if del.StatusCode/100 != 2 {
					t.Fatalf("DELETE %s: %d %s", p.ids[0], del.StatusCode, del.Body)
				}
			}
			if i > 3 {
				return
			}
			resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v2/invoices",
				[]byte(`{"customer_id":"cus_acme_001","total":{"amount":"12.50","currency":"EUR"}}`), h)
			var inv struct {
				ID string `json:"id"`
			}
			if resp.StatusCode != http.StatusCreated || json.Unmarshal(resp.Envelope(t).Data, &inv) != nil || inv.ID == "" {
				t.Fatalf("POST invoice: %d %s", resp.StatusCode, resp.Body)
			}
			added = append(added, inv.ID)
		})
		sameSet(t, "invoices walked", ids, append(before, added...))
		for i := 1; i < len(ids); i++ {
			if ids[i-1] >= ids[i] {
				t.Fatalf("not in id order: %s before %s", ids[i-1], ids[i])
			}
		}
		if p := pages[1].pg; p.Page != 0 || p.Limit != 25 || p.Total < int64(len(before)) {
			t.Fatalf("a keyset page's pagination: %+v", p)
		}
	})

	t.Run("REST offset in another order, limit changing", func(t *testing.T) {
		want := allIDs(t, in.URL, acme, "/api/v2/products?limit=200")
		ids, _ := walk(t, in.URL, acme, "/api/v2/products?sort=-sku&limit=8", nil)
		sameSet(t, "products by -sku", ids, want)
		// limit may change when it divides the records before the page
		first := mustGet(t, in.URL, acme, "/api/v2/products?sort=-sku&limit=8")
		p := mustGet(t, in.URL, acme, with("/api/v2/products?sort=-sku&limit=4", first.pg.NextCursor))
		if p.pg.Page != 3 || len(p.ids) != 4 || p.ids[0] != ids[8] {
			t.Fatalf("limit 4 after 8: %+v %v", p.pg, p.ids)
		}
		refused(t, "a limit that does not divide the offset", get(t, in.URL, acme, with("/api/v2/products?sort=-sku&limit=5", first.pg.NextCursor)), "limit")
	})

	t.Run("OData skiptoken", func(t *testing.T) {
		want := allIDs(t, in.URL, acme, "/api/v1/ledger?limit=200")
		ids, pages := walk(t, in.URL, acme, "/api/v1/ledger?limit=10", nil)
		sameSet(t, "ledger", ids, want)
		if len(pages) != (len(want)+9)/10 || pages[1].pg.Total != int64(len(want)) {
			t.Fatalf("ledger: %d pages for %d entries; %+v", len(pages), len(want), pages[1].pg)
		}
		// with a filter and another order (the service's token is then an offset)
		wantPosted := allIDs(t, in.URL, acme, "/api/v1/ledger?limit=200&filter=status:eq:posted")
		ids, _ = walk(t, in.URL, acme, "/api/v1/ledger?limit=7&filter=status:eq:posted&sort=-amount", nil)
		sameSet(t, "posted ledger by -amount", ids, wantPosted)
		// a page asked by number goes on by offset
		ids, pages = walkOn(t, in.URL, acme, "/api/v1/ledger?page=1&limit=9", "/api/v1/ledger?limit=9", nil)
		if p := pages[2].pg; p.Page != 3 || p.Limit != 9 {
			t.Fatalf("ledger page 3 by offset: %+v", p)
		}
		sameSet(t, "ledger from page 1", ids, want)
	})

	t.Run("JSON-RPC offset", func(t *testing.T) {
		want := allIDs(t, in.URL, acme, "/api/v1/inventory?limit=200")
		ids, pages := walk(t, in.URL, acme, "/api/v1/inventory?limit=7", nil)
		sameSet(t, "inventory", ids, want)
		if p := pages[1].pg; p.Page != 2 || p.Limit != 7 {
			t.Fatalf("inventory page 2: %+v", p)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		first := mustGet(t, in.URL, acme, "/api/v2/invoices?limit=5&filter=status:eq:paid")
		c := first.pg.NextCursor
		if c == "" {
			t.Fatalf("no next_cursor: %s", first.body)
		}
		if p := mustGet(t, in.URL, acme, with("/api/v2/invoices?limit=5&filter=status:eq:paid", c)); len(p.ids) == 0 || p.ids[0] <= first.ids[4] {
			t.Fatalf("continued: %v after %v", p.ids, first.ids)
		}
		// tampered: one character of the payload changed
		b := []byte(c)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		refused(t, "tampered", get(t, in.URL, acme, with("/api/v2/invoices?limit=5&filter=status:eq:paid", string(b))), "cursor")
		refused(t, "garbage", get(t, in.URL, acme, with("/api/v2/invoices?limit=5", "not-a-cursor")), "cursor")
		// another company replaying it
		refused(t, "globex with acme's cursor", get(t, in.URL, globex, with("/api/v2/invoices?limit=5&filter=status:eq:paid", c)), "cursor")
		// the filter changed, the sort changed, another collection, another version
		refused(t, "filter dropped", get(t, in.URL, acme, with("/api/v2/invoices?limit=5", c)), "cursor")
		refused(t, "sort added", get(t, in.URL, acme, with("/api/v2/invoices?limit=5&filter=status:eq:paid&sort=id", c)), "cursor")
		refused(t, "other collection", get(t, in.URL, acme, with("/api/v2/customers?limit=5&filter=status:eq:paid", c)), "cursor")
		refused(t, "other version", get(t, in.URL, acme, with("/api/v1/invoices?limit=5&filter=status:eq:paid", c)), "cursor")
		// page and cursor together
		refused(t, "page with cursor", get(t, in.URL, acme, with("/api/v2/invoices?limit=5&page=2&filter=status:eq:paid", c)), "cursor")
		refused(t, "cursor twice", get(t, in.URL, acme, "/api/v2/invoices?cursor=a&cursor=b"), "cursor")
		// a valid cursor without a credential: 401, no data
		if resp := httpt.Get(t, in.URL+with("/api/v2/invoices?limit=5&filter=status:eq:paid", c), nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no credential: %d %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("page and limit as before", func(t *testing.T) {
		all := allIDs(t, in.URL, globex, "/api/v2/invoices?limit=200")
		p := mustGet(t, in.URL, globex, "/api/v2/invoices?page=2&limit=10")
		if p.pg.Page != 2 || p.pg.Limit != 10 || !p.pg.HasNext || p.pg.Total != int64(len(all)) || strings.Join(p.ids, ",") != strings.Join(all[10:20], ",") {
			t.Fatalf("page 2: %+v %v", p.pg, p.ids)
		}
		last := mustGet(t, in.URL, globex, fmt.Sprintf("/api/v2/invoices?page=%d&limit=10", (len(all)+9)/10))
		if last.pg.HasNext || last.pg.NextCursor != "" {
			t.Fatalf("last page: %+v", last.pg)
		}
		// the next_cursor of a numbered page goes on after it
		n := mustGet(t, in.URL, globex, with("/api/v2/invoices?limit=10", p.pg.NextCursor))
		if strings.Join(n.ids, ",") != strings.Join(all[20:30], ",") {
			t.Fatalf("after page 2: %v", n.ids)
		}
	})
}

// TestCursorAcrossInstances: instances sharing ERP_MASTER_KEY continue each
// other's cursors; an instance with another key refuses them.
func TestCursorAcrossInstances(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ERP_MASTER_KEY": base64.StdEncoding.EncodeToString(key)}
	a := stacktest.Start(t, stacktest.Options{Env: env})
	b := stacktest.Start(t, stacktest.Options{Env: env})
	other := stacktest.Start(t, stacktest.Options{})
	first := mustGet(t, a.URL, demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access, "/api/v1/ledger?limit=10")
	if first.pg.NextCursor == "" {
		t.Fatalf("no next_cursor: %s", first.body)
	}
	next := mustGet(t, b.URL, demoauth.Login(t, b.URL, "alice@acme.test", "acme").Access, with("/api/v1/ledger?limit=10", first.pg.NextCursor))
	if len(next.ids) != 10 || next.ids[0] == first.ids[0] || next.ids[0] <= first.ids[9] {
		t.Fatalf("the other instance's page: %v after %v", next.ids, first.ids)
	}
	refused(t, "an instance with another key", get(t, other.URL, demoauth.Login(t, other.URL, "alice@acme.test", "acme").Access,
		with("/api/v1/ledger?limit=10", first.pg.NextCursor)), "cursor")
}
