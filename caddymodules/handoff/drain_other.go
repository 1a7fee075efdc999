//go:build !linux

package handoff

import "net"

// drainBacklog is Linux only (see drain_linux.go).
func drainBacklog(net.Listener, func(net.Conn)) {}
