// Package odata is the Caddy module erp.dialects.odata: the OData v4 dialect
// of backends/dialects/odata, chosen per backend in the erp app. It owns no
// state and imports nothing under caddymodules/: the erp app loads it as a
// module, not as a Go import.
package odata

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/backends/dialects/odata"
)

func init() {
	caddy.RegisterModule(Dialect{})
}

// Dialect is the OData v4 dialect: page, limit, sort and filter become
// `$top`, `$skip`, `$orderby`, `$filter` and `$count=true`; an item id
// becomes a key (`Entries('id')`, `Entries(42)`); `value`, `@odata.count`
// and `@odata.nextLink` become data and pagination; the OData error object
// becomes the envelope's errors. The backend's `path` is its entity set,
// e.g. `path /LedgerEntries` below `version v1 http://host/odata/v1`.
//
//	dialect odata
//
// It has no options. JSON: `{"name": "odata"}`.
type Dialect struct{}

// CaddyModule returns the Caddy module information.
func (Dialect) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "erp.dialects.odata",
		New: func() caddy.Module { return new(Dialect) },
	}
}

// ForBackend returns the dialect for one backend.
func (d *Dialect) ForBackend(name string) dialects.Dialect {
	return &odata.Dialect{Backend: name}
}

// UnmarshalCaddyfile accepts `odata` with no arguments and no block.
func (d *Dialect) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // dialect name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(0) {
		return disp.Errf("unknown subdirective %q: the odata dialect has no options", disp.Val())
	}
	return nil
}

// Interface guards
var (
	_ dialects.Factory      = (*Dialect)(nil)
	_ caddyfile.Unmarshaler = (*Dialect)(nil)
)
