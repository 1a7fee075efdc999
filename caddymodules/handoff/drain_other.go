//go:build !linux

package handoff

import "net"

// drainBacklog is Linux only (see drain_linux.go).
func drainBacklog(net.Listener, func(net.Conn)) {}

// wakeAccept is Linux only (see drain_linux.go).
func wakeAccept(net.Listener) bool { return false }
