package handoff

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestSniffResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		head               string
		interim, keepAlive bool
	}{
		{"HTTP/1.1 keeps alive", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, true},
		{"Connection: close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", false, false},
		{"close among tokens, any case", "HTTP/1.1 503 Service Unavailable\r\nconnection: Upgrade, CLOSE\r\n\r\n", false, false},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
		{"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false, true},
		{"100 Continue is interim", "HTTP/1.1 100 Continue\r\n\r\n", true, false},
		{"103 Early Hints is interim", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", true, false},
		{"101 Switching Protocols ends HTTP/1", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, false},
		{"head not complete in the write", "HTTP/1.1 200 OK\r\nX-Long: aaaa", false, false},
		{"not HTTP/1", "\x00\x00\x12\x04\x00\x00\x00\x00\x00", false, false},
		{"too short", "HTTP/1.1", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			interim, keepAlive := sniffResponse([]byte(tc.head))
			if interim != tc.interim || keepAlive != tc.keepAlive {
				t.Fatalf("sniffResponse(%q) = %v, %v; want %v, %v", tc.head, interim, keepAlive, tc.interim, tc.keepAlive)
			}
		})
	}
}

// TestPlainTCPUnderCaddyListener pins the one Caddy type drainBacklog looks
// through: with a Caddy release that changes it, the old socket's queue is
// no longer drained and this fails.
func TestPlainTCPUnderCaddyListener(t *testing.T) {
	addr, err := caddy.ParseNetworkAddress("tcp/127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := addr.Listen(context.Background(), 0, net.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.(net.Listener).Close()
	if plainTCP(ln.(net.Listener)) == nil {
		t.Fatalf("plainTCP does not see the socket under Caddy's %T", ln)
	}
}

// TestDrainBacklog: connections queued on a socket as it closes are handed
// over, not reset.
func TestDrainBacklog(t *testing.T) {
	ln := listenReusePort(t, "127.0.0.1:0")
	var queued []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		queued = append(queued, c)
	}
	// Dial returns once the kernel completed the handshake: each connection
	// is queued on the socket, accepted by nobody yet.
	var got []net.Conn
	drainBacklog(ln, func(c net.Conn) { got = append(got, c) })
	_ = ln.Close()
	if len(got) != len(queued) {
		t.Fatalf("drained %d connections, want %d", len(got), len(queued))
	}
	for i, c := range got {
		if _, err := queued[i].Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(b); err != nil {
			t.Fatalf("drained connection %d: %v", i, err)
		}
		c.Close()
	}
}

// fakeConn answers every Read with one request and swallows writes: the
// wrapper's cost per exchange without the kernel.
type fakeConn struct {
	net.Conn
	req []byte
}

func (f *fakeConn) Read(p []byte) (int, error)       { return copy(p, f.req), nil }
func (f *fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }

type fakeListener struct{ net.Listener }

func (fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// BenchmarkExchange is one request read and one response written, as
// net/http does it, through the wrapper and without.
func BenchmarkExchange(b *testing.B) {
	req := []byte("GET /api/v1/invoices?limit=5 HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer eyJhbGciOiJFZERTQSJ9.e30.sig\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: Wed, 02 Dec 2026 01:00:00 GMT\r\n\r\n{}")
	run := func(b *testing.B, c net.Conn) {
		buf := make([]byte, 4096)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.Read(buf)
			_, _ = c.Write(resp)
			_ = c.SetWriteDeadline(time.Time{})
		}
	}
	b.Run("raw", func(b *testing.B) { run(b, &fakeConn{req: req}) })
	b.Run("erp_handoff", func(b *testing.B) {
		l := NewRegistry().Wrap(fakeListener{})
		run(b, l.newConn(&fakeConn{req: req}, nil, false))
	})
}
