// Package handoff is the `erp_handoff` listener wrapper: on a config reload,
// the HTTP/1.1 connections a stopping server holds open between two requests
// are handed to the new config's server for the same address instead of
// being closed under the client's feet.
//
// It owns the process's one registry of wrapped listeners (it must outlive
// every config, so it is a package variable, not the erp app's). It does not
// use the erp app; of caddymodules it imports only
// caddymodules/internal/caddyfileutil.
//
// # The race it removes
//
// A reload starts the new config's servers, then shuts the old ones down.
// Go's http.Server.Shutdown closes every connection idle between two
// requests at once, and a server that finishes a response after the
// shutdown began closes its connection right after it. Either way the
// client was promised a kept-alive connection (the last response had no
// `Connection: close`), so it may already be sending its next request when
// the FIN arrives: it reads EOF or "connection reset" and cannot know
// whether the request was processed. Go's http.Transport resends a GET
// silently; a POST fails, as does every request of a client that retries
// nothing. Caddy's own options do not close this gap: `grace_period` only
// bounds how long active requests may finish, and `shutdown_delay` applies
// only when a listener closes for good, never to a reload (the socket stays
// open, shared with SO_REUSEPORT).
//
// HTTP/1.1 has no way to withdraw a keep-alive promise once made, so the
// connection must outlive the old server. This wrapper follows its
// connections' HTTP/1 framing (the status line and Connection header of
// each response the server writes; the bytes of the request being read,
// kept until it is answered) and, once a newer listener holds the address
// (the new config's servers start before the old ones stop), hands each
// connection the client may send its next request on to that listener,
// whose server reads it as a new connection:
//
//   - a connection waiting for the client's next request, at once;
//   - the first bytes of a request on a kept-alive connection, with those
//     bytes, instead of letting the old server read them (net/http drops a
//     request it finishes reading once it is shutting down);
//   - a connection the old server closes from its own code (Shutdown
//     closing it idle, or the serving loop ending) after a complete
//     keep-alive response, or after a request it read and dropped, with
//     that request's bytes.
//
// No response was written for anything handed over, so nothing is answered
// twice (TestHandOverWithNetHTTP counts it).
//
// # What is not handed over
//
// A connection closes as before after a response with `Connection: close`
// (or an HTTP/1.0 one without keep-alive), under HTTP/2, once a handler took
// it over (WebSocket), when a handler panicked on its request, after a
// half-close, when a request head exceeds 64 KiB, when its listener has no
// newer one (the process stops), and when the new server receives it idle
// and no request comes within HandedIdleTimeout.
//
// New connections are split between the old and the new socket while both
// are open (SO_REUSEPORT); when the old one closes, Linux resets those still
// queued on it (unless net.ipv4.tcp_migrate_req=1 moves them). The wrapper
// accepts them all just before the close and hands them over too; a
// connection whose handshake completes between that last accept and the
// close, microseconds apart, is still reset. Under TLS terminated by Caddy
// nothing is handed over (a woken handshake fails for good in crypto/tls)
// and the queue is not drained: TLS connections close as without the
// wrapper. Pipelined requests (a client sending its next request before the
// answer to the previous one; browsers and Go's client do not) are not
// tracked: a connection with one in flight may be closed as before.
package handoff

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Registry holds the open listeners by address, newest last, so that a
// closing listener finds its successor. The process has one (see the
// module); tests make their own.
type Registry struct {
	mu    sync.Mutex
	byKey map[string][]*Listener
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byKey: map[string][]*Listener{}} }

func addrKey(a net.Addr) string { return a.Network() + " " + a.String() }

// Wrap returns ln as a listener whose connections can be handed over to
// (and received from) other listeners of r on the same address.
func (r *Registry) Wrap(ln net.Listener) *Listener {
	l := &Listener{
		inner:    ln,
		reg:      r,
		key:      addrKey(ln.Addr()),
		accepted: make(chan accepted),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		pumpDone: make(chan struct{}),
	}
	r.mu.Lock()
	older := append([]*Listener(nil), r.byKey[l.key]...)
	r.byKey[l.key] = append(r.byKey[l.key], l)
	r.mu.Unlock()
	for _, old := range older {
		old.supersede()
	}
	return l
}

// handOver gives h to the newest open listener for from's address other
// than from, or closes it when there is none. It reports whether h was
// handed over.
func (r *Registry) handOver(from *Listener, h handed) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byKey[from.key]
	for i := len(list) - 1; i >= 0; i-- {
		if l := list[i]; l != from && l.enqueue(h) {
			return true
		}
	}
	_ = h.c.Close()
	return false
}

func (r *Registry) remove(l *Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byKey[l.key]
	for i, x := range list {
		if x == l {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.byKey, l.key)
		return
	}
	r.byKey[l.key] = list
	for i, x := range list { // a newer listener that failed to start no longer supersedes
		x.superseded.Store(i < len(list)-1)
	}
}

// Listener accepts its own connections and those handed over by older
// listeners of the same address.
type Listener struct {
	inner net.Listener
	reg   *Registry
	key   string

	pumpOnce    sync.Once
	pumpStarted atomic.Bool
	pumpDone    chan struct{}
	accepted    chan accepted // from the goroutine accepting on inner
	wake        chan struct{} // a connection was queued

	// superseded: a newer listener for the address is open, so the
	// server behind this one is about to stop (a reload).
	superseded atomic.Bool

	mu     sync.Mutex
	conns  map[*conn]struct{} // open, not handed over
	queue  []handed           // not yet accepted
	closed bool
	done   chan struct{}
}

type accepted struct {
	c   net.Conn
	err error
}

// handed is a connection handed over, with the first bytes of the client's
// next request when the old server had read them already.
type handed struct {
	c      net.Conn
	prefix []byte
	unused bool // a new connection from the old socket's queue, not a kept-alive one
}

// Accept returns the next connection: a handed-over one first, else a new
// one from the socket.
func (l *Listener) Accept() (net.Conn, error) {
	l.pumpOnce.Do(func() {
		l.pumpStarted.Store(true)
		go l.pump()
	})
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		if len(l.queue) > 0 {
			h := l.queue[0]
			l.queue[0] = handed{}
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return l.newConn(h.c, h.prefix, !h.unused), nil
		}
		l.mu.Unlock()
		select {
		case a := <-l.accepted:
			if a.err != nil {
				return nil, a.err
			}
			return l.newConn(a.c, nil, false), nil
		case <-l.wake:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

// pump accepts on the socket, so that Accept can wait for a handed-over
// connection at the same time.
func (l *Listener) pump() {
	defer close(l.pumpDone)
	for {
		c, err := l.inner.Accept()
		select {
		case l.accepted <- accepted{c, err}:
		case <-l.done:
			if c != nil {
				l.reg.handOver(l, handed{c: c, unused: true}) // accepted as the listener closed: the successor serves it
			}
			return
		}
		if err != nil && !temporary(err) {
			return
		}
	}
}

func temporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

// enqueue queues h for Accept, unless l is closed.
func (l *Listener) enqueue(h handed) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.queue = append(l.queue, h)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// Close closes the socket; connections handed over to l and not yet
// accepted go on to l's successor. From now on, l's connections that the
// server closes between two requests are handed over too.
func (l *Listener) Close() error {
	l.reg.remove(l)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	queued := l.queue
	l.queue = nil
	close(l.done)
	l.mu.Unlock()
	if l.pumpStarted.Load() && wakeAccept(l.inner) {
		// The accepting goroutine lets go of the socket, so that the close
		// below takes effect at once, right after the queue is drained.
		<-l.pumpDone
	}
	drainBacklog(l.inner, func(c net.Conn) { l.reg.handOver(l, handed{c: c, unused: true}) })
	err := l.inner.Close()
	for _, h := range queued {
		l.reg.handOver(l, h)
	}
	return err
}

// supersede marks l as superseded by a newer listener for its address, and
// hands over at once the connections waiting for a request, so that the old
// server's Shutdown does not wait for them (it waits up to 5 seconds for a
// connection on which nothing was sent yet).
func (l *Listener) supersede() {
	l.superseded.Store(true)
	l.mu.Lock()
	waiting := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		waiting = append(waiting, c)
	}
	l.mu.Unlock()
	for _, c := range waiting {
		c.wakeIfWaiting()
	}
}

func (l *Listener) track(c *conn) {
	l.mu.Lock()
	if l.conns == nil {
		l.conns = map[*conn]struct{}{}
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
}

func (l *Listener) forget(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Addr is the socket's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }
