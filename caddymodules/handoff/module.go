package handoff

import (
	"net"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(Wrapper{})
}

// Wrapper is the listener wrapper `caddy.listeners.erp_handoff`: a reload
// hands the kept-alive HTTP/1.1 connections of the old config's servers to
// the new config's servers instead of closing them (see the package
// documentation for the race it removes and its limits). It has no options;
// it goes in the global `servers` option, for every server:
//
//	{
//		servers {
//			listener_wrappers {
//				erp_handoff
//			}
//		}
//	}
//
// or in JSON, on each server of the http app:
//
//	"listener_wrappers": [{"wrapper": "erp_handoff"}]
//
// Behind TLS terminated by Caddy it must come after `tls` (the default
// position): what is handed over is the TLS connection itself.
type Wrapper struct{}

// CaddyModule returns the Caddy module information.
func (Wrapper) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.listeners.erp_handoff",
		New: func() caddy.Module { return new(Wrapper) },
	}
}

// listeners is the process's registry: every config's wrapped listeners,
// so that an old config's listener finds the new one for its address.
var listeners = NewRegistry()

// WrapListener wraps ln.
func (Wrapper) WrapListener(ln net.Listener) net.Listener {
	return listeners.Wrap(ln)
}

// Interface guards
var (
	_ caddy.ListenerWrapper = (*Wrapper)(nil)
)
