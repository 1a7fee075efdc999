package handoff

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

func startGeneration(t testing.TB, reg *Registry, addr, name string) (*generation, string) {
	t.Helper()
	ln := listenReusePort(t, addr)
	g := &generation{name: name, srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, name)
	})}}
	var sl net.Listener = reg.Wrap(ln)
	if noWrap {
		sl = ln
	}
	go func() { _ = g.srv.Serve(sl) }()
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

func TestReloadStress(t *testing.T) {
	reg := NewRegistry()
	g, addr := startGeneration(t, reg, "127.0.0.1:0", "gen0")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	ok := 0
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rc *rawClient
			used := false
			for ctx.Err() == nil {
				if rc == nil {
					rc = dialRaw(t, addr)
					used = false
				}
				_, keep, err := rc.do("POST", `{"a":1}`)
				mu.Lock()
				if err != nil {
					k := fmt.Sprintf("%v used=%v", errors.Unwrap(err), used)
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
						k = "EOF used=" + fmt.Sprint(used)
					}
					errs[k]++
				} else {
					ok++
				}
				mu.Unlock()
				used = true
				if err != nil || !keep {
					rc.c.Close()
					rc = nil
				}
			}
		}()
	}
	for i := range 40 {
		time.Sleep(20 * time.Millisecond)
		next, _ := startGeneration(t, reg, addr, fmt.Sprintf("gen%d", i+1))
		_ = g.srv.Shutdown(context.Background())
		g = next
	}
	cancel()
	wg.Wait()
	t.Logf("ok %d errs %v", ok, errs)
	_ = strings.ToLower
}

var noWrap = false
