package quota

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/internal/testenv"
)

// BenchmarkServeHTTP is erp_quota's cost per request (identity lookup,
// terms, decision, headers) on each store, for a standard company far from
// its limits.
func BenchmarkServeHTTP(b *testing.B) {
	url, prefix := testenv.Redis(b)
	for name, appJSON := range map[string]string{
		"memory": `{}`,
		"redis":  `{"redis":"` + url + `","key_prefix":"` + prefix + `"}`,
	} {
		b.Run(name, func(b *testing.B) {
			h := newHandler(b, appJSON, `{"timeout":"2s","plans":{"standard":{"rate":"1000000000/m","quota":1000000000000}}}`, &clock{t: time.Now()})
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "/api/v2/invoices", nil)
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
				repl := caddyhttp.NewTestReplacer(r)
				repl.Set("http.auth.user.company_id", "acme")
				repl.Set("http.auth.user.id", "alice")
				repl.Set("http.auth.user.plan", "standard")
				w := httptest.NewRecorder()
				for pb.Next() {
					if err := h.ServeHTTP(w, r, next); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
