package edgeauth

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/httpt"
)

// TestRevocationAcrossInstances: two edge instances on one Redis and one
// Postgres. A logout at one is refused at the other within 2 seconds;
// logout-all and refresh reuse likewise (SECURITY.md category 4).
func TestRevocationAcrossInstances(t *testing.T) {
	t.Parallel()
	inst := sharedEnv(t, 2)
	a, b := inst[0], inst[1]
	u := "/api/v2/invoices?limit=1"

	s1 := login(t, a.URL, "alice@acme.test", "acme")
	expectOK(t, httpt.Get(t, b.URL+u, bearer(s1.Access))) // verified at the other instance
	expectOK(t, httpt.Do(t, "POST", a.URL+"/api/v1/auth/logout", []byte(`{}`), bearer(s1.Access)))
	took := eventually(t, 2*time.Second, func() bool {
		return httpt.Get(t, b.URL+u, bearer(s1.Access)).StatusCode == 401
	})
	t.Logf("logout at A refused at B after %s", took.Round(time.Millisecond))
	expectCode(t, httpt.Get(t, b.URL+u, bearer(s1.Access)), 401, "TOKEN_REVOKED")
	expectCode(t, httpt.Get(t, a.URL+u, bearer(s1.Access)), 401, "TOKEN_REVOKED")
	if r := httpt.Do(t, "POST", b.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": s1.Refresh}), nil); r.StatusCode/100 == 2 {
		t.Fatalf("refresh after logout: %s", r.Body)
	}

	// logout everywhere, from the other instance
	s2 := login(t, a.URL, "alice@acme.test", "acme")
	s3 := login(t, b.URL, "alice@acme.test", "acme")
	expectOK(t, httpt.Get(t, a.URL+u, bearer(s3.Access)))
	expectOK(t, httpt.Do(t, "POST", b.URL+"/api/v1/auth/logout", []byte(`{"all":true}`), bearer(s3.Access)))
	eventually(t, 2*time.Second, func() bool {
		return httpt.Get(t, a.URL+u, bearer(s2.Access)).StatusCode == 401 && httpt.Get(t, a.URL+u, bearer(s3.Access)).StatusCode == 401
	})
	for _, rt := range []string{s2.Refresh, s3.Refresh} {
		if r := httpt.Do(t, "POST", a.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": rt}), nil); r.StatusCode/100 == 2 {
			t.Fatalf("refresh after logout-all: %s", r.Body)
		}
	}

	// refresh reuse at the other instance revokes the family, whose newest
	// access token then stops at the first instance
	s4 := login(t, a.URL, "alice@acme.test", "acme")
	r := httpt.Do(t, "POST", a.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": s4.Refresh}), nil)
	var pair struct {
		Access string `json:"access_token"`
	}
	if err := json.Unmarshal(expectOK(t, r).Data, &pair); err != nil {
		t.Fatal(err)
	}
	expectOK(t, httpt.Get(t, a.URL+u, bearer(pair.Access)))
	if r := httpt.Do(t, "POST", b.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": s4.Refresh}), nil); r.StatusCode/100 == 2 {
		t.Fatalf("reused refresh token accepted: %s", r.Body)
	}
	eventually(t, 2*time.Second, func() bool { return httpt.Get(t, a.URL+u, bearer(pair.Access)).StatusCode == 401 })

	for _, in := range inst {
		for _, secret := range []string{s1.Access, s1.Refresh, s2.Refresh, s4.Refresh, pair.Access} {
			if strings.Contains(in.Logs(), secret) {
				t.Fatal("a token reached the logs")
			}
		}
	}
}

// TestWebSocketAuthentication: upgrades authenticate like any request; the
// token travels in Sec-WebSocket-Protocol, never in the query.
func TestWebSocketAuthentication(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	in := newStubInstance(t, is)
	tok := is.sign(t, "ed-1", claims(nil), nil)
	handshake := func(path, protocol string) string {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(in.URL, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		if protocol != "" {
			req += "Sec-WebSocket-Protocol: " + protocol + "\r\n"
		}
		fmt.Fprint(conn, req+"\r\n")
		buf := make([]byte, 4096)
		n, _ := conn.Read(buf)
		return string(buf[:n])
	}
	if got := handshake("/api/_demo/ws", "bearer, "+tok); !strings.HasPrefix(got, "HTTP/1.1 101") {
		t.Fatalf("authenticated upgrade: %q", got)
	}
	if got := handshake("/api/_demo/ws", ""); !strings.HasPrefix(got, "HTTP/1.1 401") {
		t.Fatalf("upgrade without token: %q", got)
	}
	if got := handshake("/api/_demo/ws?access_token="+tok, ""); !strings.HasPrefix(got, "HTTP/1.1 401") {
		t.Fatalf("token in the query accepted: %q", got)
	}
	if got := handshake("/api/_demo/ws", "bearer, "+tok+"x"); !strings.HasPrefix(got, "HTTP/1.1 401") {
		t.Fatalf("bad token upgraded: %q", got)
	}
	if strings.Contains(in.Logs(), tok) {
		t.Fatal("a token reached the logs")
	}
}
