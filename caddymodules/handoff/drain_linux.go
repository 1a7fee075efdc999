package handoff

import (
	"net"
	"os"
	"reflect"

	"golang.org/x/sys/unix"
)

// drainBacklog accepts, without blocking, every connection already queued
// on ln's socket and passes it to deliver. Called just before the socket
// closes: Linux resets the connections still queued on a SO_REUSEPORT
// socket when it closes (unless net.ipv4.tcp_migrate_req=1), and during a
// reload the old and the new socket share the port, so clients connecting
// then are split between them. What remains is a connection completing its
// handshake between the last accept and the close, microseconds apart.
func drainBacklog(ln net.Listener, deliver func(net.Conn)) {
	tl := plainTCP(ln)
	if tl == nil {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for {
			nfd, _, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			f := os.NewFile(uintptr(nfd), "")
			c, err := net.FileConn(f) // dups the descriptor
			_ = f.Close()
			if err != nil {
				continue
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetKeepAlive(true) // as Go's Accept does
			}
			deliver(c)
		}
	})
}

// wakeAccept makes a pending Accept on ln's socket return (a deadline in
// the past); false when ln is not a plain TCP socket.
func wakeAccept(ln net.Listener) bool {
	tl := plainTCP(ln)
	return tl != nil && tl.SetDeadline(aLongTimeAgo) == nil
}

// plainTCP returns the TCP socket under ln when nothing but Caddy's
// bookkeeping wrapper stands between them; nil otherwise (under TLS a
// connection accepted here would skip the handshake layer).
func plainTCP(ln net.Listener) *net.TCPListener {
	if tl, ok := ln.(*net.TCPListener); ok {
		return tl
	}
	// Caddy's listeners on Unix are a deleteListener{net.Listener, key}
	// that counts the socket's users: look through that one type only.
	v := reflect.ValueOf(ln)
	if v.Kind() != reflect.Struct || v.Type().Name() != "deleteListener" || v.Type().PkgPath() != "github.com/caddyserver/caddy/v2" {
		return nil
	}
	f := v.FieldByName("Listener")
	if !f.IsValid() || !f.CanInterface() {
		return nil
	}
	tl, _ := f.Interface().(*net.TCPListener)
	return tl
}
