package batch

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func items(spec ...string) []Item {
	// "a", "b<a,c" : id and dependencies
	out := make([]Item, len(spec))
	for i, s := range spec {
		id, deps, _ := strings.Cut(s, "<")
		out[i] = Item{ID: id, Method: "GET", Path: "/api/v1/x"}
		if deps != "" {
			out[i].DependsOn = strings.Split(deps, ",")
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name  string
		items []Item
		field string // "" when valid
	}{
		{"valid", items("a", "b<a", "c<a,b"), ""},
		{"empty", nil, "requests"},
		{"no id", items("a", ""), "requests[1].id"},
		{"duplicate", items("a", "b", "a"), "requests[2].id"},
		{"unknown", items("a", "b<z"), "requests[1].dependsOn"},
		{"self", items("a<a"), "requests[0].dependsOn"},
		{"cycle", items("a<c", "b<a", "c<b"), "requests[0].dependsOn"},
		{"cycle off the root", items("x", "a<b", "b<a"), "requests[1].dependsOn"},
	}
	for _, c := range cases {
		p := Check(c.items)
		if c.field == "" {
			if p != nil {
				t.Errorf("%s: refused: %v", c.name, p)
			}
			continue
		}
		if p == nil || p.Field != c.field {
			t.Errorf("%s: got %v, want a problem at %s", c.name, p, c.field)
		}
	}
}

func TestRunOrderDependenciesAndFailure(t *testing.T) {
	its := items("a", "b<a", "c", "d<c", "e<d", "f<b")
	var mu sync.Mutex
	var ran []string
	finished := map[string]bool{}
	do := func(_ context.Context, it *Item) (int, json.RawMessage) {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range it.DependsOn {
			if !finished[d] {
				t.Errorf("%s ran before its dependency %s finished", it.ID, d)
			}
		}
		ran = append(ran, it.ID)
		finished[it.ID] = true
		if it.ID == "c" {
			return 403, json.RawMessage(`{"success":false}`)
		}
		return 200, json.RawMessage(`{"id":"` + it.ID + `"}`)
	}
	failed := func(it *Item, dep string) json.RawMessage {
		return json.RawMessage(strconv.Quote(it.ID + " needs " + dep))
	}
	res := Run(context.Background(), its, 2, do, failed)
	want := []struct {
		status int
		body   string
	}{{200, `{"id":"a"}`}, {200, `{"id":"b"}`}, {403, `{"success":false}`}, {424, `"d needs c"`}, {424, `"e needs d"`}, {200, `{"id":"f"}`}}
	for i, w := range want {
		if res[i].ID != its[i].ID || res[i].Status != w.status || string(res[i].Body) != w.body {
			t.Errorf("result %d: %+v (%s), want %s %d %s", i, res[i], res[i].Body, its[i].ID, w.status, w.body)
		}
	}
	if len(ran) != 4 {
		t.Errorf("ran %v, want a, b, c, f only", ran)
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	its := make([]Item, 20)
	for i := range its {
		its[i] = Item{ID: strconv.Itoa(i)}
	}
	var running, most atomic.Int32
	gate := make(chan struct{})
	var started atomic.Int32
	do := func(context.Context, *Item) (int, json.RawMessage) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if started.Add(1) == 3 {
			close(gate) // the third start: three run at once, nobody has finished
		}
		<-gate
		running.Add(-1)
		return 204, nil
	}
	res := Run(context.Background(), its, 3, do, nil)
	if most.Load() != 3 {
		t.Fatalf("at most %d ran at once, want exactly 3", most.Load())
	}
	for i, r := range res {
		if r.ID != strconv.Itoa(i) || r.Status != 204 {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
}

func TestPathProblem(t *testing.T) {
	refused := []string{"batch", "auth", "admin"}
	ok := []string{"/api/v1/invoices", "/api/v1/invoices/42?x=1", "/api/v2/ledger/", "/api/graphql", "/api/invoices/auth"}
	bad := []string{"", "/health/live", "api/v1/x", "/api/v1/batch", "/api/V1/Batch", "/api/v1/auth/login", "/api/auth",
		"/api/v1/admin/users", "/api/v1/../v1/batch", "/api/v1/x/./y", "/api/v1//x", "/api/v1/%2e%2e/batch", "/api/v1/a%2Fb",
		"/api/v1/x y", "/api/v1/x#f", "/api/v1/x\\y", "/api/v1/x\n"}
	for _, p := range ok {
		if msg := PathProblem(p, refused); msg != "" {
			t.Errorf("%q refused: %s", p, msg)
		}
	}
	for _, p := range bad {
		if PathProblem(p, refused) == "" {
			t.Errorf("%q accepted", p)
		}
	}
}

func BenchmarkCheckAndRun(b *testing.B) {
	its := items("a", "b<a", "c", "d<c", "e", "f", "g<a,c", "h", "i", "j<i")
	do := func(context.Context, *Item) (int, json.RawMessage) { return 200, nil }
	b.ReportAllocs()
	for b.Loop() {
		if p := Check(its); p != nil {
			b.Fatal(p)
		}
		Run(context.Background(), its, 4, do, nil)
	}
}
