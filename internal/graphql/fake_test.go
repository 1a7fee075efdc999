package graphql

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/erpgate/erpgate/contract"
)

// fakeFetcher serves fixture collections the way the dialects answer: item
// by id, lists filtered (eq, and in with JSON-quoted strings), paged, with
// a total. It counts Fetch calls and records every call.
type fakeFetcher struct {
	mu      sync.Mutex
	data    map[string][]map[string]any // backend → items
	fail    map[string]*Error           // backend → every call fails
	noTotal bool
	fetches int
	calls   []Call
}

func (f *fakeFetcher) Fetch(_ context.Context, calls []Call) []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	f.calls = append(f.calls, calls...)
	out := make([]Result, len(calls))
	for i, c := range calls {
		out[i] = f.one(c)
	}
	return out
}

func (f *fakeFetcher) one(c Call) Result {
	if err := f.fail[c.Backend]; err != nil {
		return Result{Err: err}
	}
	items := f.data[c.Backend]
	switch c.Op {
	case OpItem:
		for _, it := range items {
			if fmt.Sprint(it["id"]) == c.ID {
				return Result{Data: mustJSON(it), Total: -1}
			}
		}
		return Result{Err: &Error{Message: "not found", Code: contract.CodeNotFound}}
	case OpCreate, OpUpdate:
		var body map[string]any
		if err := json.Unmarshal(c.Body, &body); err != nil {
			return Result{Err: &Error{Message: err.Error(), Code: contract.CodeBadRequest}}
		}
		body["id"] = "new"
		if c.Op == OpUpdate {
			body["id"] = c.ID
		}
		return Result{Data: mustJSON(body), Total: -1}
	case OpDelete:
		return Result{Total: -1}
	case OpList:
		var matched []map[string]any
		for _, it := range items {
			if matches(it, c.Query["filter"]) {
				matched = append(matched, it)
			}
		}
		page, _ := strconv.Atoi(c.Query.Get("page"))
		limit, _ := strconv.Atoi(c.Query.Get("limit"))
		if page < 1 || limit < 1 || limit > 200 {
			return Result{Err: &Error{Message: "bad page/limit " + c.Query.Encode(), Code: contract.CodeBadRequest}}
		}
		from := min((page-1)*limit, len(matched))
		to := min(from+limit, len(matched))
		total := int64(len(matched))
		if f.noTotal {
			total = -1
		}
		return Result{Data: mustJSON(matched[from:to]), Total: total, HasNext: to < len(matched)}
	}
	return Result{Err: &Error{Message: "bad op", Code: contract.CodeBadRequest}}
}

// matches applies the envelope's filters field:eq:v and field:in:v1,v2.
func matches(it map[string]any, filters []string) bool {
	for _, fl := range filters {
		parts := strings.SplitN(fl, ":", 3)
		if len(parts) != 3 {
			return false
		}
		got := fmt.Sprint(it[parts[0]])
		switch parts[1] {
		case "eq":
			if got != parts[2] {
				return false
			}
		case "in":
			found := false
			for _, v := range splitIn(parts[2]) {
				found = found || v == got
			}
			if !found {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// splitIn splits an `in` list: JSON strings (which may hold commas) or
// bare values.
func splitIn(s string) []string {
	var out []string
	for len(s) > 0 {
		if s[0] == '"' {
			dec := json.NewDecoder(strings.NewReader(s))
			var v string
			if err := dec.Decode(&v); err != nil {
				return append(out, "!bad")
			}
			out = append(out, v)
			s = s[dec.InputOffset():]
		} else {
			i := strings.IndexByte(s, ',')
			if i < 0 {
				i = len(s)
			}
			out = append(out, s[:i])
			s = s[i:]
		}
		s = strings.TrimPrefix(s, ",")
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// fixtures: n invoices over 7 customers, 3 products (numeric ids) with
// inventory items (string ids).
func fixtures(n int) *fakeFetcher {
	f := &fakeFetcher{data: map[string][]map[string]any{}, fail: map[string]*Error{}}
	for i := 1; i <= n; i++ {
		f.data["invoices"] = append(f.data["invoices"], map[string]any{
			"id": "inv-" + strconv.Itoa(i), "number": "N" + strconv.Itoa(i), "customer_id": "c-" + strconv.Itoa(i%7),
			"total": map[string]any{"amount": strconv.Itoa(i) + ".00", "currency": "EUR"}, "status": "open",
		})
	}
	for j := 0; j < 7; j++ {
		f.data["customers"] = append(f.data["customers"], map[string]any{
			"id": "c-" + strconv.Itoa(j), "display_name": "Customer, " + strconv.Itoa(j), "email": strconv.Itoa(j) + "@example.com",
		})
	}
	for k := 1; k <= 3; k++ {
		f.data["products"] = append(f.data["products"], map[string]any{"id": k, "sku": "SKU" + strconv.Itoa(k), "name": "P" + strconv.Itoa(k)})
		f.data["inventory"] = append(f.data["inventory"], map[string]any{"id": strconv.Itoa(k), "sku": "SKU" + strconv.Itoa(k), "stock": 10 * k})
	}
	return f
}

// run prepares and executes q, failing the test on request errors.
func run(t testing.TB, s *Schema, f Fetcher, allow Authorizer, q string, vars map[string]any) *Response {
	t.Helper()
	p, errs := s.Prepare(&Request{Query: q, Variables: vars}, Limits{})
	if errs != nil {
		t.Fatalf("prepare: %+v", *errs[0])
	}
	return s.Execute(context.Background(), p, f, allow)
}

// decoded is a response's data, decoded.
func decoded(t testing.TB, r *Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	return m
}
