package ipblock

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/secmon"
)

func request(ip string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/auth/login", nil)
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: ip})
	return r.WithContext(ctx)
}

var next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
})

func TestHandler(t *testing.T) {
	bl := secmon.NewBlocklist(nil, "", nil, nil)
	h := &Handler{bl: bl}
	if _, err := bl.Block(context.Background(), netip.MustParseAddr("203.0.113.9"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"203.0.113.10", "", "garbage", "127.0.0.1"} {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, request(ip), next); err != nil || w.Code != http.StatusNoContent {
			t.Fatalf("%q: %v %d", ip, err, w.Code)
		}
	}
	for _, ip := range []string{"203.0.113.9", "::ffff:203.0.113.9"} {
		err := h.ServeHTTP(httptest.NewRecorder(), request(ip), next)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
			t.Fatalf("%q: %v", ip, err)
		}
		ce, ok := contract.AsError(err)
		if !ok || ce.Code != contract.CodeForbidden || ce.Context["reason"] != "address_blocked" || ce.Header.Get("Retry-After") == "" {
			t.Fatalf("%q: %+v", ip, ce)
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for in, ok := range map[string]bool{"erp_ip_block": true, "erp_ip_block x": false, "erp_ip_block {\n foo\n}": false} {
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if (err == nil) != ok {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// BenchmarkHandler is what every request pays when nothing is blocked
// (the usual case) and when some addresses are.
func BenchmarkHandler(b *testing.B) {
	for _, blocked := range []int{0, 1000} {
		bl := secmon.NewBlocklist(nil, "", nil, nil)
		for i := range blocked {
			_, _ = bl.Block(context.Background(), netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), time.Hour)
		}
		h := &Handler{bl: bl}
		r := request("192.0.2.1")
		w := httptest.NewRecorder()
		nop := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
		name := "none_blocked"
		if blocked > 0 {
			name = "1000_blocked"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := h.ServeHTTP(w, r, nop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest
// (erp_ip_block sorts itself first, after erp_envelope, before header).
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}
