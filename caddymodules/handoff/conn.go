package handoff

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

// phase is where a connection stands in HTTP/1 framing, as seen from the
// bytes the server reads and writes.
type phase uint8

const (
	fresh    phase = iota // nothing read or written yet
	request               // the server reads a request
	response              // the server writes the response
	idle                  // the response is complete (net/http cleared its write deadline)
)

// conn is one accepted connection of a Listener.
//
// It records the bytes of the request the server is reading and has not
// answered yet: what a hand-over must carry to the new server when the old
// one closes without answering (net/http drops a request it finishes
// reading once it is shutting down). They include the one byte net/http's
// background read takes while the response is written: it watches for the
// client going away, and a client that sends its next request as soon as
// the response arrives gives it that request's first byte.
type conn struct {
	net.Conn
	l *Listener

	mu         sync.Mutex
	gone       bool   // handed over or closed: never touch Conn again
	prefix     []byte // handed over by an older server, not yet read by this one
	unanswered []byte // read since the last response began
	untracked  bool   // unanswered is incomplete, or the request is being served (after a 100 Continue)
	phase      phase
	keepAlive  bool // the last response kept the connection alive (true before the first)
	tainted    bool // never hand over: not plain HTTP/1, half-closed, or failed
	reading    bool // a Read is in the kernel
	pending    bool // the server closed it while a Read was in the kernel: hand over when it returns
}

// maxUnanswered bounds the bytes recorded per connection: a request head
// (and the start of its body) larger than this is not handed over.
const maxUnanswered = 64 << 10

// tlsConn is a conn over TLS: it keeps the inner connection's
// ConnectionState visible to the server.
type tlsConn struct{ *conn }

func (c tlsConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
}

// HandedIdleTimeout is how long a connection handed over without a request
// waits for one in its new server before it is closed (as the old server
// would have closed it at once). It bounds the life of connections nobody
// uses any more, such as the idle pool of a reverse proxy transport that
// the old config left behind; a client that sends at that very instant
// meets the ordinary idle-close race.
const HandedIdleTimeout = 2 * time.Second

func (l *Listener) newConn(c net.Conn, prefix []byte, handedOver bool) net.Conn {
	w := &conn{Conn: c, l: l, prefix: prefix, keepAlive: true}
	_, isTLS := c.(interface{ ConnectionState() tls.ConnectionState })
	// A TLS connection is never handed over: its first Read runs the
	// handshake, which waking it (a deadline in the past) would fail for
	// good, and crypto/tls keeps a failed write's error too. It closes as
	// it would without this wrapper.
	w.tainted = isTLS
	l.track(w)
	if handedOver && len(prefix) == 0 {
		time.AfterFunc(HandedIdleTimeout, w.closeIfUnused)
	}
	if isTLS {
		return tlsConn{w}
	}
	return w
}

// closeIfUnused closes a handed-over connection on which nothing came.
func (c *conn) closeIfUnused() {
	c.mu.Lock()
	if c.gone || c.phase != fresh {
		c.mu.Unlock()
		return
	}
	c.gone = true
	c.mu.Unlock()
	c.l.forget(c)
	_ = c.Conn.Close()
}

// wakeIfWaiting wakes a Read waiting for the client's next request, which
// then hands the connection over (the listener is superseded).
func (c *conn) wakeIfWaiting() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gone && c.reading && c.betweenRequestsLocked() {
		c.pending = true
		_ = c.Conn.SetReadDeadline(aLongTimeAgo)
	}
}

// aLongTimeAgo wakes a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

// Read passes through. On a superseded listener (a reload started a newer
// one for the address), the first bytes of the client's next request hand
// the connection over, with those bytes, instead of reaching this server:
// a server that is shutting down drops a request it reads (net/http
// returns without answering it), and one that is not yet would answer it
// only to close the connection afterwards.
func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return 0, io.EOF
	}
	var n int
	var err error
	if len(c.prefix) > 0 {
		if c.betweenRequestsLocked() && c.l.superseded.Load() { // reloaded again before reading it
			return 0, c.handOverLocked(nil)
		}
		n = copy(p, c.prefix)
		c.prefix = c.prefix[n:]
	} else {
		c.reading = true
		c.mu.Unlock()
		n, err = c.Conn.Read(p)
		c.mu.Lock()
		if c.gone { // closed meanwhile (an unused handed-over connection): the server must not act on these bytes
			c.mu.Unlock()
			return 0, io.EOF
		}
		c.reading = false
		pending := c.pending
		c.pending = false
		if pending {
			_ = c.Conn.SetReadDeadline(time.Time{})
		}
		if n > 0 && c.betweenRequestsLocked() && c.l.superseded.Load() ||
			pending && n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.eligibleLocked() {
			return 0, c.handOverLocked(p[:n])
		}
	}
	c.readLocked(p, n, err)
	c.mu.Unlock()
	return n, err
}

// readLocked moves the phase on after a Read into p returned n bytes.
func (c *conn) readLocked(p []byte, n int, err error) {
	if n == 0 {
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.tainted = true // EOF, reset: nothing to hand over
		}
		return
	}
	switch c.phase {
	case fresh, idle:
		c.phase = request
	case response:
		if len(p) != 1 {
			c.tainted = true // not the background read: a body read after the response began
			return
		}
	}
	if c.untracked {
		return
	}
	if len(c.unanswered)+n > maxUnanswered {
		c.unanswered, c.untracked = nil, true
		return
	}
	c.unanswered = append(c.unanswered, p[:n]...)
}

// betweenRequestsLocked reports whether the client may send a request next:
// nothing was exchanged yet, or the last response is complete and kept the
// connection alive.
func (c *conn) betweenRequestsLocked() bool {
	return !c.tainted && !c.untracked && c.keepAlive && (c.phase == fresh || c.phase == idle)
}

// eligibleLocked reports whether the connection can be handed over when the
// server closes it: between requests, or in a request the server read (all
// of it recorded) and closed without answering.
func (c *conn) eligibleLocked() bool {
	return !c.tainted && !c.untracked && c.keepAlive && c.phase != response
}

// Write passes through; the head of each response is read to know whether
// it keeps the connection alive. Once a response has begun the connection
// is no longer reusable, so Close never hands it over during the write.
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	switch c.phase {
	case request:
		c.phase = response
		if cap(c.unanswered) > 4<<10 {
			c.unanswered = nil // a large request head: do not keep its buffer
		}
		c.unanswered, c.untracked = c.unanswered[:0], false
		interim, keepAlive := sniffResponse(p)
		if interim { // 100 Continue: the request goes on, being served now
			c.phase, c.untracked = request, true
		} else {
			c.keepAlive = keepAlive
		}
	case fresh, idle:
		c.tainted = true // written without a request: not a plain HTTP/1 exchange
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	if err != nil || n < len(p) { // a response cut short: the connection is not reusable
		c.mu.Lock()
		c.tainted = true
		c.mu.Unlock()
	}
	return n, err
}

// SetWriteDeadline passes through; net/http clears the write deadline once
// a response is complete, which marks the connection idle.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return net.ErrClosed
	}
	if t.IsZero() && c.phase == response {
		c.phase = idle
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetReadDeadline and SetDeadline pass through, under the lock: a
// connection handed over belongs to another server.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return net.ErrClosed
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return net.ErrClosed
	}
	return c.Conn.SetDeadline(t)
}

// CloseWrite half-closes the connection (net/http does it before closing a
// connection whose request body it did not read); it is not handed over.
func (c *conn) CloseWrite() error {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.tainted = true
	c.mu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection, or hands it over to the newer listener for
// its address when a reload superseded this one and the server closes a
// connection the client may send its next request on: idle in Shutdown,
// after a keep-alive response when the server saw the shutdown only then,
// or after reading a request it dropped because it is shutting down.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil
	}
	if c.eligibleLocked() && c.l.superseded.Load() && closedByServer() {
		if c.reading {
			// Idle in Shutdown: the serving goroutine waits for the next
			// request in Read. Wake it; Read hands the connection over, with
			// the request's first bytes if they arrive first.
			c.pending = true
			_ = c.Conn.SetReadDeadline(aLongTimeAgo)
			c.mu.Unlock()
			return nil
		}
		_ = c.handOverLocked(nil)
		return nil
	}
	c.gone = true
	c.mu.Unlock()
	c.l.forget(c)
	return c.Conn.Close()
}

// handOverLocked gives the connection to the newer listener (it is closed
// if none is open), with what the client sent that no server answered: the
// bytes this server read (recorded, and read just now) and the prefix it
// was handed and did not read. It unlocks c.mu and returns the error this
// server's Read sees: the client left.
func (c *conn) handOverLocked(read []byte) error {
	c.gone = true
	h := handed{c: c.Conn}
	if size := len(c.unanswered) + len(c.prefix) + len(read); size > 0 {
		h.prefix = make([]byte, 0, size)
		h.prefix = append(append(append(h.prefix, c.unanswered...), c.prefix...), read...)
	}
	c.mu.Unlock()
	c.l.forget(c)
	_ = h.c.SetDeadline(time.Time{})
	c.l.reg.handOver(c.l, h)
	return io.EOF
}

// closedByServer reports whether Close was called by net/http's server for a
// connection it still owns: closing an idle connection in Shutdown, or
// ending its serving loop (a response without keep-alive, a shutdown seen
// after a response). A handler that hijacked the connection (a WebSocket
// proxy) closes it from elsewhere; a close while a handler panics
// (runtime.gopanic on the stack) is not the server's own: the handler may
// have acted on the request. The names are pinned by TestHandOver and
// TestHandOverWithNetHTTP: a Go release that renames them turns this part of
// the hand-over off (the connection is closed, as without this wrapper) and
// fails those tests.
func closedByServer() bool {
	var pcs [8]uintptr
	n := runtime.Callers(3, pcs[:]) // skip Callers, closedByServer, Close
	frames := runtime.CallersFrames(pcs[:n])
	byServer := false
	for {
		f, more := frames.Next()
		switch f.Function {
		case "net/http.(*Server).closeIdleConns", "net/http.(*conn).close":
			byServer = true
		case "runtime.gopanic":
			return false // a handler panicked: it may have acted on the request
		}
		if !more {
			return byServer
		}
	}
}

// sniffResponse reads the head of a response that starts at p: whether it
// is an interim (1xx) response, and whether it keeps the connection alive.
// A head that is not HTTP/1.x, or not complete in p, does not keep it alive
// (the connection is then closed as usual, never handed over).
func sniffResponse(p []byte) (interim, keepAlive bool) {
	const minStatusLine = len("HTTP/1.1 200")
	if len(p) < minStatusLine || !bytes.HasPrefix(p, []byte("HTTP/1.")) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' {
		return false, false
	}
	if p[9] == '1' { // 1xx: interim, but 101 Switching Protocols ends HTTP/1
		return string(p[9:12]) != "101", false
	}
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return false, false
	}
	head := p[:end+2]
	keepAlive = p[7] == '1' // HTTP/1.1 keeps alive unless told otherwise; HTTP/1.0 only when told
	for line := head[bytes.IndexByte(head, '\n')+1:]; len(line) > 0; {
		i := bytes.IndexByte(line, '\n')
		field := line[:i]
		line = line[i+1:]
		name, value, ok := bytes.Cut(field, []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("Connection")) {
			continue
		}
		for tok := range bytes.SplitSeq(value, []byte(",")) {
			switch tok = bytes.TrimSpace(tok); {
			case bytes.EqualFold(tok, []byte("close")):
				return false, false
			case bytes.EqualFold(tok, []byte("keep-alive")):
				keepAlive = true
			}
		}
	}
	return false, keepAlive
}
