// Package redactquery is the erp_redact_query log field filter: it replaces
// the value of every query parameter whose name looks like a credential in a
// logged URL (the access log's `request>uri`, a `Referer`, `Location` or
// `Link` header), where Caddy's own `query` filter takes exact names only.
// It owns no state; of caddymodules it imports only
// caddymodules/internal/caddyfileutil.
package redactquery

import (
	"fmt"
	"reflect"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Filter{})
}

// Filter is a log field filter (`caddy.logging.encoders.filter.erp_redact_query`)
// for fields holding a URL or a list of them (logged headers):
//
//	log {
//		format filter {
//			request>uri erp_redact_query
//			request>headers>Referer erp_redact_query
//			resp_headers>Location erp_redact_query
//			resp_headers>Link erp_redact_query
//		}
//	}
//
// A parameter matches when its name, percent-decoded and lower-cased,
// matches one of `names`: `*` at the start or end is a wildcard (`auth*`,
// `*token*`, `*_token`), anything else is exact. Matched values are replaced
// with `value`; the parameter's name and every other parameter stay, so
// `?page=2&access_token=abc` is logged as `?page=2&access_token=REDACTED`.
type Filter struct {
	// Names are the parameter name patterns. The word `default` stands for
	// the default list, so `["default", "x-goog-*"]` extends it and a list
	// without `default` replaces it. Default: `["default"]`, that is `jwt`,
	// `bearer`, `code`, `auth*`, `*token*`, `*key*`, `*secret*`,
	// `*password*`, `passwd`, `pwd`, `sig*`, `*signature*`, `*credential*`,
	// `session*`.
	Names []string `json:"names,omitempty"`
	// Value replaces each matched value. Default: `REDACTED`.
	Value string `json:"value,omitempty"`

	redactor *Redactor
}

// CaddyModule returns the Caddy module information.
func (Filter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.filter.erp_redact_query",
		New: func() caddy.Module { return new(Filter) },
	}
}

// Provision compiles the patterns.
func (f *Filter) Provision(caddy.Context) error {
	names := f.Names
	if len(names) == 0 {
		names = []string{DefaultWord}
	}
	value := f.Value
	if value == "" {
		value = "REDACTED"
	}
	r, err := Compile(names, value)
	if err != nil {
		return fmt.Errorf("erp_redact_query: %w", err)
	}
	f.redactor = r
	return nil
}

// Validate checks the patterns.
func (f *Filter) Validate() error {
	if _, err := Compile(f.Names, f.Value); err != nil {
		return fmt.Errorf("erp_redact_query: %w", err)
	}
	return nil
}

// stringArray is a logged list of strings (a header's values).
type stringArray []string

func (a stringArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range a {
		enc.AppendString(s)
	}
	return nil
}

var stringsType = reflect.TypeOf([]string(nil))

// Filter implements logging.LogFieldFilter.
func (f *Filter) Filter(in zapcore.Field) zapcore.Field {
	if in.Type == zapcore.StringType {
		in.String = f.redactor.Redact(in.String)
		return in
	}
	// a logged header: Caddy's own []string type, which it keeps internal
	if in.Interface == nil {
		return in
	}
	v := reflect.ValueOf(in.Interface)
	if v.Kind() != reflect.Slice || !v.Type().ConvertibleTo(stringsType) {
		return in
	}
	vals := v.Convert(stringsType).Interface().([]string)
	out := make(stringArray, len(vals))
	for i, s := range vals {
		out[i] = f.redactor.RedactHeader(s)
	}
	in.Interface = out
	return in
}

// Interface guards
var (
	_ caddy.Provisioner = (*Filter)(nil)
	_ caddy.Validator   = (*Filter)(nil)
)
