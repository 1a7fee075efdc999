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
//		keyset <field> [<param>]
//	}]
//
// `keyset id` says the backend can continue a listing after a key: a
// cursor (`?cursor=`) of a listing in that field's order (no sort, or
// sort=<field>) goes on as `sort=<field>&<param>=<last key>` (param default
// `after`); the backend answers the records after the key and a
// `Link: rel="next"` while more follow, and its default order must be the
// key's. Without it, cursors go on by page.
//
// JSON: `{"name": "rest", "filter_fields": ["status", "customer_id"], "keyset": "id", "keyset_param": "after"}`.
type Dialect struct {
	// FilterFields are the fields the backend filters on with
	// `field=value` (repeated: any of). Default: none (every filter is
	// refused).
	FilterFields []string `json:"filter_fields,omitempty"`
	// Keyset is the unique field, sorted on by the backend, that a listing
	// continues after. Default: none (cursors are offsets).
	Keyset string `json:"keyset,omitempty"`
	// KeysetParam is the backend's query parameter taking the last key.
	// Default: `after`.
	KeysetParam string `json:"keyset_param,omitempty"`
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
	if d.Keyset != "" && !dialects.ValidField(d.Keyset) {
		return errors.New("erp.dialects.rest: keyset: " + d.Keyset + " is not a field name")
	}
	if d.KeysetParam != "" && (d.Keyset == "" || !dialects.ValidField(d.KeysetParam)) {
		return errors.New("erp.dialects.rest: keyset: the parameter " + d.KeysetParam + " is not a parameter name, or no key field is given")
	}
	return nil
}

// ForBackend returns the dialect for one backend.
func (d *Dialect) ForBackend(name string) dialects.Dialect {
	return &rest.Dialect{Backend: name, FilterFields: d.FilterFields, Keyset: d.Keyset, KeysetParam: d.KeysetParam}
}

// UnmarshalCaddyfile reads `rest [{ filter_fields <field>…; keyset <field> [<param>] }]`.
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
		case "keyset":
			if d.Keyset != "" {
				return disp.Err("duplicate subdirective \"keyset\"")
			}
			args := disp.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return disp.ArgErr()
			}
			d.Keyset = args[0]
			if len(args) == 2 {
				d.KeysetParam = args[1]
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
