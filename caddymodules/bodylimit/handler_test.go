package bodylimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
)

// sink reads the whole body as a proxy would and records what it got.
type sink struct {
	got    int64
	err    error
	called bool
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	s.called = true
	s.got, s.err = io.Copy(io.Discard, r.Body)
	if s.err != nil {
		return caddyhttp.Error(http.StatusBadGateway, s.err)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func request(plan string, body io.Reader, length int64) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v2/invoices/1/attachments", body)
	r.ContentLength = length
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.plan", plan)
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

// chunked hides the reader's length, as a chunked body has none.
type chunked struct{ io.Reader }

func TestLimits(t *testing.T) {
	t.Parallel()
	h := &Handler{Plans: map[string]int64{"free": 100, "standard": 1000}, Default: 10}
	for _, tc := range []struct {
		name    string
		plan    string
		size    int
		known   bool
		refused bool
		called  bool
	}{
		{"free under, length known", "free", 100, true, false, true},
		{"free over, length known: never reaches the backend", "free", 101, true, true, false},
		{"free over, chunked: cut off", "free", 5000, false, true, true},
		{"free exactly the limit, chunked", "free", 100, false, false, true},
		{"standard over free's limit", "standard", 1000, false, false, true},
		{"unknown plan: default", "gold", 11, true, true, false},
		{"no plan: default", "", 10, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := io.Reader(bytes.NewReader(bytes.Repeat([]byte("x"), tc.size)))
			length := int64(tc.size)
			if !tc.known {
				body, length = chunked{body}, -1
			}
			s := &sink{}
			err := h.ServeHTTP(httptest.NewRecorder(), request(tc.plan, body, length), s)
			if s.called != tc.called {
				t.Fatalf("backend called %v, want %v", s.called, tc.called)
			}
			if !tc.refused {
				if err != nil || s.got != int64(tc.size) {
					t.Fatalf("err %v, backend got %d of %d", err, s.got, tc.size)
				}
				return
			}
			var he caddyhttp.HandlerError
			ce, ok := contract.AsError(err)
			if !errors.As(err, &he) || he.StatusCode != http.StatusRequestEntityTooLarge || !ok || ce.Code != contract.CodePayloadTooLarge {
				t.Fatalf("err %v, want 413 PAYLOAD_TOO_LARGE", err)
			}
			if lim, _ := ce.Context["limit"].(int64); lim != h.Plans[tc.plan] && lim != h.Default {
				t.Fatalf("context %v", ce.Context)
			}
			if tc.called && (s.err == nil || s.got > h.Plans[tc.plan]) {
				t.Fatalf("the backend read %d bytes without an error (limit %d)", s.got, h.Plans[tc.plan])
			}
		})
	}
}

func TestCaddyfile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // "" : an error
	}{
		{"erp_body_limit {\n plan free 1MiB\n plan standard 1GB\n default 512KB\n}", "free=1048576 standard=1000000000 default=512000"},
		{"erp_body_limit", "default=0"},
		{"erp_body_limit x", ""},
		{"erp_body_limit {\n plan free 1MiB\n plan free 2MiB\n}", ""},
		{"erp_body_limit {\n plan free\n}", ""},
		{"erp_body_limit {\n plan free lots\n}", ""},
		{"erp_body_limit {\n default 1MiB\n default 2MiB\n}", ""},
		{"erp_body_limit {\n max 1MiB\n}", ""},
	} {
		h := new(Handler)
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var got []string
		for _, p := range []string{"free", "standard"} {
			if n, ok := h.Plans[p]; ok {
				got = append(got, p+"="+itoa(n))
			}
		}
		got = append(got, "default="+itoa(h.Default))
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, strings.Join(got, " "), tc.want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// BenchmarkChunkedBody is the per-request cost on a streamed 1 MiB body.
func BenchmarkChunkedBody(b *testing.B) {
	h := &Handler{Plans: map[string]int64{"standard": 10 << 20}, Default: 1 << 20}
	payload := bytes.Repeat([]byte("x"), 1<<20)
	s := &sink{}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		r := request("standard", chunked{bytes.NewReader(payload)}, -1)
		if err := h.ServeHTTP(httptest.NewRecorder(), r, s); err != nil {
			b.Fatal(err)
		}
	}
}
