// Package jsonrpc is the Caddy module erp.dialects.jsonrpc: the JSON-RPC 2.0
// dialect (Odoo call_kw style) of backends/dialects/jsonrpc, chosen per
// backend in the erp app. It owns no state and imports nothing under
// caddymodules/: the erp app loads it as a module, not as a Go import.
package jsonrpc

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/backends/dialects/jsonrpc"
)

func init() {
	caddy.RegisterModule(Dialect{})
}

// Dialect is the JSON-RPC 2.0 dialect: a GET of the collection becomes a
// POST of a batch [search_read, search_count] on the model with an Odoo
// domain, offset, limit and order; a GET of /{id} a search_read on the id.
// The version's upstream URL is the JSON-RPC endpoint itself
// (`version v1 http://host/jsonrpc`). Only GET is mapped.
//
//	dialect jsonrpc {
//		model  <model>
//		fields <field>…
//	}
//
// JSON: `{"name": "jsonrpc", "model": "product.product", "fields": ["id", "name"]}`.
type Dialect struct {
	// Model every call names, e.g. `product.product`. Required.
	Model string `json:"model,omitempty"`
	// Fields search_read returns. Default: all.
	Fields []string `json:"fields,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Dialect) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "erp.dialects.jsonrpc",
		New: func() caddy.Module { return new(Dialect) },
	}
}

// Validate requires a model and checks the field names.
func (d *Dialect) Validate() error {
	if d.Model == "" {
		return errors.New("erp.dialects.jsonrpc: model is required")
	}
	for _, c := range d.Model {
		if !(c == '.' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return errors.New("erp.dialects.jsonrpc: model " + d.Model + " is not a model name")
		}
	}
	for _, f := range d.Fields {
		if !dialects.ValidField(f) {
			return errors.New("erp.dialects.jsonrpc: fields: " + f + " is not a field name")
		}
	}
	return nil
}

// ForBackend returns the dialect for one backend.
func (d *Dialect) ForBackend(name string) dialects.Dialect {
	return &jsonrpc.Dialect{Backend: name, Model: d.Model, Fields: d.Fields}
}

// UnmarshalCaddyfile reads `jsonrpc { model <model>; fields <field>… }`.
func (d *Dialect) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // dialect name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	seen := map[string]bool{}
	for disp.NextBlock(0) {
		sub := disp.Val()
		if seen[sub] {
			return disp.Errf("duplicate subdirective %q", sub)
		}
		seen[sub] = true
		switch sub {
		case "model":
			args := disp.RemainingArgs()
			if len(args) != 1 {
				return disp.ArgErr()
			}
			d.Model = args[0]
		case "fields":
			d.Fields = disp.RemainingArgs()
			if len(d.Fields) == 0 {
				return disp.ArgErr()
			}
		default:
			return disp.Errf("unknown subdirective %q", sub)
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
