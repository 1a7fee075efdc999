package handoff

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenReusePort listens on addr with SO_REUSEPORT, as Caddy does, so that
// two generations of servers can hold the same address.
func listenReusePort(t testing.TB, addr string) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// generation is one config's server: it answers with its name.
type generation struct {
	name string
	srv  *http.Server
}

// startGeneration serves addr with a server answering its name; handled,
// when set, counts how many times each request body was processed.
func startGeneration(t testing.TB, reg *Registry, addr, name string, handled *sync.Map) (*generation, string) {
	t.Helper()
	ln := listenReusePort(t, addr)
	g := &generation{name: name, srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if handled != nil && len(b) > 0 {
			v, _ := handled.LoadOrStore(string(b), new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
		}
		fmt.Fprint(w, name)
	})}}
	wrapped := reg.Wrap(ln) // before Serve, as Caddy wraps before it stops the old config
	go func() { _ = g.srv.Serve(wrapped) }()
	return g, ln.Addr().String()
}

// rawClient is one kept-alive HTTP/1.1 connection that retries nothing.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReader(c)}
}

// do sends one request and returns the body and whether the server kept
// the connection alive.
func (rc *rawClient) do(method, body string) (string, bool, error) {
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("%s / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", method, len(body), body)
	if _, err := io.WriteString(rc.c, req); err != nil {
		return "", false, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return "", false, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b), !resp.Close, err
}

// TestHandOverWithNetHTTP reloads net/http servers 40 times under 32
// kept-alive connections sending POSTs, a client that retries nothing:
// every request is answered, and processed exactly once. It pins the
// net/http internals the wrapper relies on (the callers of Close, the
// background read, the drop of a request read during Shutdown): with a Go
// release that changes them, requests fail here.
func TestHandOverWithNetHTTP(t *testing.T) {
	reg := NewRegistry()
	var handled sync.Map // request id -> times processed
	g, addr := startGeneration(t, reg, "127.0.0.1:0", "gen0", &handled)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	answered := 0
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rc *rawClient
			for n := 0; ctx.Err() == nil; n++ {
				if rc == nil {
					rc = dialRaw(t, addr)
				}
				_, keep, err := rc.do("POST", fmt.Sprintf("%d-%d", i, n))
				mu.Lock()
				if err != nil {
					errs[err.Error()]++
				} else {
					answered++
				}
				mu.Unlock()
				if err != nil || !keep {
					rc.c.Close()
					rc = nil
				}
			}
		}()
	}
	for i := range 40 {
		time.Sleep(20 * time.Millisecond)
		next, _ := startGeneration(t, reg, addr, fmt.Sprintf("gen%d", i+1), &handled)
		_ = g.srv.Shutdown(context.Background())
		g = next
	}
	cancel()
	wg.Wait()
	processed, twice := 0, 0
	handled.Range(func(_, v any) bool {
		processed++
		if v.(*atomic.Int32).Load() > 1 {
			twice++
		}
		return true
	})
	t.Logf("%d requests answered during 40 reloads", answered)
	if len(errs) > 0 {
		t.Errorf("failed exchanges: %v", errs)
	}
	if twice > 0 || processed != answered {
		t.Errorf("%d requests answered, %d processed, %d of them twice", answered, processed, twice)
	}
}

// TestHandOver checks single connections through one reload.
func TestHandOver(t *testing.T) {
	t.Run("idle connection goes to the new server", func(t *testing.T) {
		reg := NewRegistry()
		g1, addr := startGeneration(t, reg, "127.0.0.1:0", "gen1", nil)
		rc := dialRaw(t, addr)
		if body, keep, err := rc.do("GET", ""); err != nil || body != "gen1" || !keep {
			t.Fatalf("before the reload: %q %v %v", body, keep, err)
		}
		g2, _ := startGeneration(t, reg, addr, "gen2", nil)
		defer g2.srv.Close()
		if err := g1.srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if body, keep, err := rc.do("POST", "x"); err != nil || body != "gen2" || !keep {
			t.Fatalf("after the reload: %q %v %v, want gen2 on the same connection", body, keep, err)
		}
	})
	t.Run("a response with Connection: close closes", func(t *testing.T) {
		reg := NewRegistry()
		g1, addr := startGeneration(t, reg, "127.0.0.1:0", "gen1", nil)
		defer g1.srv.Close()
		g2, _ := startGeneration(t, reg, addr, "gen2", nil)
		defer g2.srv.Close()
		rc := dialRaw(t, addr)
		// a fresh connection to the superseded server goes over with its request
		if _, err := io.WriteString(rc.c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil || !resp.Close {
			t.Fatalf("want an answer with Connection: close, got %v %v", resp, err)
		}
		_, _ = io.ReadAll(resp.Body)
		if _, err := rc.br.ReadByte(); err != io.EOF {
			t.Fatalf("connection not closed after Connection: close: %v", err)
		}
	})
	t.Run("a handler that panics is not replayed", func(t *testing.T) {
		reg := NewRegistry()
		release := make(chan struct{})
		var served sync.Map
		ln := listenReusePort(t, "127.0.0.1:0")
		addr := ln.Addr().String()
		s1 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Store("gen1", true)
			<-release
			panic(http.ErrAbortHandler)
		})}
		wrapped := reg.Wrap(ln)
		go func() { _ = s1.Serve(wrapped) }()
		defer s1.Close()
		rc := dialRaw(t, addr)
		if _, err := io.WriteString(rc.c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, ok := served.Load("gen1"); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("request not served")
			}
		}
		g2, _ := startGeneration(t, reg, addr, "gen2", &served)
		defer g2.srv.Close()
		close(release)
		if _, err := http.ReadResponse(rc.br, nil); err == nil {
			t.Fatal("want the connection closed after the panic")
		}
		if _, ok := served.Load("x"); ok {
			t.Fatal("the new server processed the request the old one had panicked on")
		}
	})
	t.Run("no newer listener: closed as before", func(t *testing.T) {
		reg := NewRegistry()
		g1, addr := startGeneration(t, reg, "127.0.0.1:0", "gen1", nil)
		rc := dialRaw(t, addr)
		if _, _, err := rc.do("GET", ""); err != nil {
			t.Fatal(err)
		}
		if err := g1.srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.br.ReadByte(); err != io.EOF {
			t.Fatalf("want the idle connection closed at shutdown, got %v", err)
		}
	})
}
