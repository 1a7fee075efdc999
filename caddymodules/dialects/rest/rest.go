// Package rest is the Caddy module erp.dialects.rest: the REST dialect of
// backends/dialects/rest, chosen per backend in the erp app. It owns no
// state and imports nothing under caddymodules/: the erp app loads it as a
// module, not as a Go import.
package rest

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/backends/dialects/rest"
)

func init() {
	caddy.RegisterModule(Dialect{})
}

// Dialect is the REST dialect: the request passes through with its path
// mapped onto the version's base URL; `filter=field:eq:value` becomes
// `field=value` and `filter=field:in:v1,v2` the repeated `field=v1&field=v2`
// (which the backend must read as "any of") for the listed fields (any
// other filter is a 400); answers
// are read as JSON with `X-Total-Count`/`Link` pagination and RFC 9457
// problem details.
//
//	dialect rest [{
//		filter_fields <field>…
//	}]
//
// JSON: `{"name": "rest", "filter_fields": ["status", "customer_id"]}`.
type Dialect struct {
	// FilterFields are the fields the backend filters on with
	// `field=value` (repeated: any of). Default: none (every filter is
	// refused).
	FilterFields []string `json:"filter_fields,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Dialect) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "erp.dialects.rest",
		New: func() caddy.Module { return new(Dialect) },
	}
}

// Validate checks the field names.
func (d *Dialect) Validate() error {
	for _, f := range d.FilterFields {
		if !dialects.ValidField(f) {
			return errors.New("erp.dialects.rest: filter_fields: " + f + " is not a field name")
		}
	}
	return nil
}

// ForBackend returns the dialect for one backend.
func (d *Dialect) ForBackend(name string) dialects.Dialect {
	return &rest.Dialect{Backend: name, FilterFields: d.FilterFields}
}

// UnmarshalCaddyfile reads `rest [{ filter_fields <field>… }]`.
func (d *Dialect) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // dialect name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(0) {
		switch disp.Val() {
		case "filter_fields":
			if d.FilterFields != nil {
				return disp.Err("duplicate subdirective \"filter_fields\"")
			}
			d.FilterFields = disp.RemainingArgs()
			if len(d.FilterFields) == 0 {
				return disp.ArgErr()
			}
		default:
			return disp.Errf("unknown subdirective %q", disp.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Validator       = (*Dialect)(nil)
	_ dialects.Factory      = (*Dialect)(nil)
	_ caddyfile.Unmarshaler = (*Dialect)(nil)
)
