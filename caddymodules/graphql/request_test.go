package graphql

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestResolvePlans(t *testing.T) {
	t.Parallel()
	ps, err := resolvePlans(map[string]*Plan{"free": {MaxCost: 100}, "gold": {MaxDepth: 30, PersistedOnly: true}}, "free")
	if err != nil {
		t.Fatal(err)
	}
	free, gold, std := ps.byName["free"], ps.byName["gold"], ps.byName["standard"]
	// a listed built-in plan keeps the built-in values it does not set
	if free.limits.MaxCost != 100 || free.limits.MaxDepth != 8 || free.limits.MaxAliases != 20 || free.limits.MaxSize != 8<<10 {
		t.Fatalf("free %+v", free.limits)
	}
	// a new plan starts from free's
	if gold.limits.MaxDepth != 30 || gold.limits.MaxCost != 500 || !gold.persistedOnly {
		t.Fatalf("gold %+v", gold)
	}
	// an unlisted built-in plan is there as built
	if std == nil || std.limits.MaxCost != 5000 || std.limits.MaxSize != 32<<10 || std.maxBody != 32<<10*4+64<<10 {
		t.Fatalf("standard %+v", std)
	}
	if ps.byName["enterprise"].limits.MaxCost != 100000 || ps.byName["premium"].limits.MaxDepth != 15 {
		t.Fatal("built-in plans")
	}
	for _, tc := range []struct{ override, credential, want string }{
		{"", "standard", "standard"},
		{"gold", "standard", "gold"},
		{"", "", "free"},
		{"", "unknown", "free"},
		{"unknown", "standard", "free"}, // an override naming no plan of this handler: the default, never more
	} {
		if got := ps.forRequest(tc.override, tc.credential).name; got != tc.want {
			t.Errorf("override %q credential %q: %s, want %s", tc.override, tc.credential, got, tc.want)
		}
	}
	if _, err := resolvePlans(nil, "gold"); err == nil {
		t.Fatal("a default plan that is no plan was accepted")
	}
	if _, err := resolvePlans(map[string]*Plan{"big": {MaxSize: 2 << 20}}, "free"); err == nil {
		t.Fatal("a max_size above 1 MiB was accepted")
	}
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, target, ct, body string
		status                         int
		query, op                      string
		vars                           int
		get                            bool
	}{
		{"POST", "POST", "/api/graphql", "application/json; charset=utf-8", `{"query":"{ a }","operationName":"Q","variables":{"x":1,"y":"z"}}`, 0, "{ a }", "Q", 2, false},
		{"GET", "GET", `/api/graphql?query=%7B+a+%7D&operationName=Q&variables=%7B%22x%22%3A1%7D`, "", "", 0, "{ a }", "Q", 1, true},
		{"GET bad variables", "GET", `/api/graphql?query=x&variables=nope`, "", "", 400, "", "", 0, true},
		{"GET bad extensions", "GET", `/api/graphql?query=x&extensions=%5B%5D`, "", "", 400, "", "", 0, true},
		{"no content type", "POST", "/api/graphql", "", `{"query":"{ a }"}`, 415, "", "", 0, false},
		{"form", "POST", "/api/graphql", "application/x-www-form-urlencoded", `query=x`, 415, "", "", 0, false},
		{"graphql media type", "POST", "/api/graphql", "application/graphql", `{ a }`, 415, "", "", 0, false},
		{"not an object", "POST", "/api/graphql", "application/json", `[1]`, 400, "", "", 0, false},
		{"variables not an object", "POST", "/api/graphql", "application/json", `{"query":"{ a }","variables":[1]}`, 400, "", "", 0, false},
		{"too large", "POST", "/api/graphql", "application/json", `{"query":"` + strings.Repeat("a", 2000) + `"}`, 413, "", "", 0, false},
		{"DELETE", "DELETE", "/api/graphql", "", "", 405, "", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			req, get, ref := decodeRequest(httptest.NewRecorder(), r, 1024)
			if tc.status != 0 {
				if ref == nil || ref.status != tc.status || ref.err.Code == "" {
					t.Fatalf("want a %d refusal, got %+v %+v", tc.status, req, ref)
				}
				return
			}
			if ref != nil {
				t.Fatalf("refused: %d %s", ref.status, ref.err.Message)
			}
			if req.Query != tc.query || req.OperationName != tc.op || len(req.Variables) != tc.vars || get != tc.get {
				t.Fatalf("decoded %+v get %v", req, get)
			}
		})
	}
}

func TestResponseType(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]string{
		"":                                  contentJSON,
		"application/json":                  contentJSON,
		"*/*":                               contentJSON,
		"application/graphql-response+json": contentGraphQL,
		"application/graphql-response+json, application/json;q=0.9": contentGraphQL,
		"application/json, application/graphql-response+json;q=0":   contentJSON,
	} {
		h := http.Header{}
		if accept != "" {
			h.Set("Accept", accept)
		}
		if got := responseType(h["Accept"]); got != want {
			t.Errorf("Accept %q: %s, want %s", accept, got, want)
		}
	}
}

// BenchmarkDecodeAndPlan is the handler's own work before the schema's
// Prepare: the plan of the caller and the decoding of a typical POST.
func BenchmarkDecodeAndPlan(b *testing.B) {
	ps, err := resolvePlans(nil, "free")
	if err != nil {
		b.Fatal(err)
	}
	body := `{"query":"query Invoices($n: Int) { invoices(first: $n) { nodes { number total { amount currency } customer { display_name } } } }","operationName":"Invoices","variables":{"n":20}}`
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/api/graphql", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/graphql-response+json, application/json")
	r.ContentLength = int64(len(body))
	rd := strings.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		p := ps.forRequest("", "standard")
		if _, _, ref := decodeRequest(w, r, p.maxBody); ref != nil {
			b.Fatal(ref.err.Message)
		}
		_ = responseType(r.Header["Accept"])
	}
}

func TestDialRoundRobin(t *testing.T) {
	t.Parallel()
	br := &backendRoute{dials: []string{"a:1", "b:2", "c:3"}}
	var got []string
	for range 6 {
		got = append(got, br.dial())
	}
	if strings.Join(got, " ") != "a:1 b:2 c:3 a:1 b:2 c:3" {
		t.Fatalf("dials %v", got)
	}
	if (&backendRoute{}).dial() != "" {
		t.Fatal("a dial from no upstream")
	}
}
