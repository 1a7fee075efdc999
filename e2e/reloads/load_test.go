package reloads

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// load is a fleet of HTTP/1.1 clients that retry nothing: each holds one
// kept-alive TCP connection, sends a request, reads the whole answer, and
// sends the next on the same connection; a connection is dialled again only
// when the server said `Connection: close` or the exchange failed. A failed
// exchange is counted by what the client saw, and the request is not sent
// again (unlike Go's http.Transport, which silently retries a GET that
// failed on a reused connection).
type load struct {
	addr   string            // host:port of the edge
	method string            // GET or POST
	path   string            // with the query
	header map[string]string // added to every request
	body   []byte            // POST body
	want   int               // expected status

	mu        sync.Mutex
	ok        int
	statuses  map[int]int    // unexpected statuses
	firstBody string         // the first unexpected answer
	errs      map[string]int // failed exchanges by kind
	first     map[string]string
	dials     int
}

func (l *load) record(kind, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errs == nil {
		l.errs, l.first = map[string]int{}, map[string]string{}
	}
	l.errs[kind]++
	if _, ok := l.first[kind]; !ok {
		l.first[kind] = detail
	}
}

// run drives conns connections until ctx ends.
func (l *load) run(ctx context.Context, conns int) (wait func()) {
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.client(ctx)
		}()
	}
	return wg.Wait
}

func (l *load) client(ctx context.Context) {
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	reqBytes := l.request()
	var used bool // the connection answered a request already
	for ctx.Err() == nil {
		if c == nil {
			var err error
			c, err = net.DialTimeout("tcp", l.addr, 5*time.Second)
			if err != nil {
				kind := "dial"
				if errors.Is(err, syscall.ECONNRESET) {
					// the same race at the handshake: the old socket closed
					// with this connection in its backlog; no request byte
					// was sent
					kind = "dial: connection reset (new connection)"
				}
				l.record(kind, err.Error())
				time.Sleep(10 * time.Millisecond)
				continue
			}
			br = bufio.NewReader(c)
			used = false
			l.mu.Lock()
			l.dials++
			l.mu.Unlock()
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		keep, kind, detail := l.exchange(c, br, reqBytes)
		if kind != "" {
			if used {
				kind += " (kept-alive connection)"
			} else {
				kind += " (new connection)"
			}
			l.record(kind, detail)
		}
		used = true
		if !keep {
			c.Close()
			c = nil
		}
	}
}

// exchange sends one request and reads its answer; kind is empty when the
// exchange completed.
func (l *load) exchange(c net.Conn, br *bufio.Reader, req []byte) (keep bool, kind, detail string) {
	if _, err := c.Write(req); err != nil {
		return false, "write: " + errKind(err), err.Error()
	}
	if _, err := br.Peek(1); err != nil {
		return false, "read before any answer byte: " + errKind(err), err.Error()
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, "read in the answer: " + errKind(err), err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, "read in the answer: " + errKind(err), err.Error()
	}
	l.mu.Lock()
	if resp.StatusCode == l.want {
		l.ok++
	} else {
		if l.statuses == nil {
			l.statuses = map[int]int{}
			l.firstBody = fmt.Sprintf("%d %.300s", resp.StatusCode, body)
		}
		l.statuses[resp.StatusCode]++
	}
	l.mu.Unlock()
	return !resp.Close, "", ""
}

func (l *load) request() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", l.method, l.path, l.addr)
	for k, v := range l.header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if l.body != nil {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(l.body))
	}
	b.WriteString("\r\n")
	b.Write(l.body)
	return b.Bytes()
}

// failures counts the failed exchanges: those on a kept-alive connection
// (what erp_handoff removes) and the rest; of these, a new connection reset
// before any answer byte (at its handshake, its write, or its first read,
// depending on when the RST arrives) is the one race documented as
// remaining: its handshake reached the old socket between the socket's last
// accept and its close, microseconds apart, so no server read the request.
func (l *load) failures() (keptAlive, other, newConnResets int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for kind, v := range l.errs {
		switch {
		case strings.HasSuffix(kind, "(kept-alive connection)"):
			keptAlive += v
		case kind == "dial: connection reset (new connection)",
			kind == "write: connection reset (new connection)",
			kind == "read before any answer byte: connection reset (new connection)":
			newConnResets += v
		default:
			other += v
		}
	}
	return keptAlive, other, newConnResets
}

func (l *load) unexpected() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.statuses {
		n += v
	}
	return n
}

func (l *load) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var kinds []string
	for k := range l.errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d answered %d, other statuses %v, %d dials", l.method, l.path, l.ok, l.want, l.statuses, l.dials)
	if l.firstBody != "" {
		fmt.Fprintf(&b, " (first other answer: %s)", l.firstBody)
	}
	for _, k := range kinds {
		fmt.Fprintf(&b, "; %d × %s (first: %s)", l.errs[k], k, l.first[k])
	}
	return b.String()
}

func errKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// reloader loads a Caddyfile through the admin API, even when unchanged.
func reloader(t *testing.T, in *stacktest.Instance, caddyfile string) func() {
	// a connection of its own per load: the admin server a load replaces
	// closes its idle connections after answering
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, in.AdminURL+"/load", strings.NewReader(caddyfile))
		req.Header.Set("Content-Type", "text/caddyfile")
		req.Header.Set("Cache-Control", "must-revalidate") // reload even though unchanged
		req.Close = true                                   // a load restarts the admin server: no keep-alive across loads
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reload: %d %s", resp.StatusCode, b)
		}
	}
}
