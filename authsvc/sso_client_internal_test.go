package authsvc

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The SSO client refuses loopback targets unless private addresses are
// allowed, and fails an answer past its size limit (with or without a
// Content-Length) instead of reading it whole.
func TestSSOClientLimits(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			_, _ = io.WriteString(w, "ok")
		case "/huge": // streamed: no Content-Length
			chunk := strings.Repeat("x", 64<<10)
			for range (ssoMaxBody / len(chunk)) + 2 {
				_, _ = io.WriteString(w, chunk)
				w.(http.Flusher).Flush()
			}
		case "/sized":
			w.Header().Set("Content-Length", "2097152")
			_, _ = io.WriteString(w, strings.Repeat("y", 2<<20))
		}
	}))
	defer srv.Close()

	if _, err := newSSOClient(false).Get(srv.URL + "/small"); !errors.Is(err, errSSOBlocked) {
		t.Fatalf("loopback without allow-private: %v", err)
	}
	c := newSSOClient(true)
	get := func(path string) ([]byte, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	if b, err := get("/small"); err != nil || string(b) != "ok" {
		t.Fatalf("small: %q %v", b, err)
	}
	if b, err := get("/huge"); err == nil || len(b) > ssoMaxBody {
		t.Fatalf("huge: read %d bytes, err %v", len(b), err)
	}
	if _, err := get("/sized"); err == nil {
		t.Fatal("an answer declaring 2 MiB was read")
	}
}
