package erpapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/backends/dialects/rest"
	"github.com/erpgate/erpgate/internal/reqpath"
)

func init() {
	subdirectives["backend"] = parseBackend
	repeatable["backend"] = true
}

// Backend is an ERP service registered with the edge, in the `backends` map
// of the erp app (keyed by the backend's name, which is the path segment
// clients use: /api/{version}/{name}/…). At run time it is changed through
// Caddy's admin API like any config, e.g.
//
//	POST   /config/apps/erp/backends/ledger   {"dialect":{"name":"odata"},"versions":{"v1":{"upstreams":["http://10.0.0.5:8080/odata/v1"]}}}
//	PATCH  /config/apps/erp/backends/ledger/versions/v1/upstreams  ["http://10.0.0.6:8080/odata/v1"]
//	DELETE /config/apps/erp/backends/ledger
//
// and Caddy reloads the config gracefully: requests in flight finish on the
// old config.
//
// Names are lowercase ([a-z][a-z0-9_-]*, at most 63 bytes), must not look
// like a version (v1) and must not be one the edge serves itself (auth,
// admin, usage, docs).
type Backend struct {
	// The dialect the backend speaks: a module of namespace erp.dialects
	// (`rest`, `odata`, `jsonrpc`) with its options. Default: rest with no
	// filterable fields.
	DialectRaw json.RawMessage `json:"dialect,omitempty" caddy:"namespace=erp.dialects inline_key=name"`

	// Path is the backend's path below each version's upstream URL path; a
	// request for /api/v1/invoices/inv_1 goes to <v1 URL path><path>/inv_1.
	// "/" means none (the version URL is the resource itself). Default:
	// "/" + the backend's name.
	Path string `json:"path,omitempty"`

	// DefaultVersion serves requests that name no version (no version in
	// the path, no API-Version header, no vnd.erp Accept type). Default:
	// the highest version that is not deprecated, else the highest.
	DefaultVersion string `json:"default_version,omitempty"`

	// Versions maps a version name (v1, v2, v2.1) to where it is served.
	// At least one is required.
	Versions map[string]*Version `json:"versions,omitempty"`

	// Events says which events the edge publishes for successful writes
	// through this backend (see BackendEvents). Default: on, named after
	// the backend.
	Events *BackendEvents `json:"events,omitempty"`

	// GraphQL is the backend's part of the schema erp_graphql serves
	// (see BackendGraphQL). Default: none; the backend is not in the graph.
	GraphQL *BackendGraphQL `json:"graphql,omitempty"`

	name     string
	dialect  dialects.Dialect
	resource string
	ordered  []*Version // ascending
	def      *Version
}

// Version is one API version of a backend.
type Version struct {
	// Upstreams are the base URLs serving this version
	// (`http://127.0.0.1:9001/v1`); requests are load-balanced among them by
	// `reverse_proxy { dynamic erp }`, with its lb_policy and health checks.
	// All must have the same scheme and path. Placeholders such as
	// {env.LEDGER_URL} are resolved when the config loads. Required.
	Upstreams []string `json:"upstreams,omitempty"`

	// Deprecated is the date (2026-01-31, or an RFC 3339 time) from which
	// the version is deprecated. Answers carry `Deprecation: @<unix time>`
	// (RFC 9745, which has no form without a date) and, from that date on,
	// calls are counted per company. Default: not deprecated.
	Deprecated string `json:"deprecated,omitempty"`

	// Cells are named groups of upstreams serving this version for the
	// companies assigned to them (`PUT /api/v1/admin/companies/{id}/cell`),
	// by cell name (`eu`, `us`), in the Caddyfile `cell eu http://…` inside
	// the version's block. A company with no cell, or with a cell this
	// version does not have, is served by Upstreams. The same rules as for
	// Upstreams apply, and every URL of the version (Upstreams and cells)
	// shares one scheme and path. Default: none.
	Cells map[string][]string `json:"cells,omitempty"`

	// Sunset is the date (or RFC 3339 time) from which the version answers
	// 410 VERSION_SUNSET. Before it, answers carry `Sunset: <HTTP-date>`
	// (RFC 8594). A version with a sunset counts as deprecated. Default: none.
	Sunset string `json:"sunset,omitempty"`

	// Successor is what replaces this version, sent as
	// `Link: <…>; rel="successor-version"` with deprecated answers: a
	// version name of the same backend (linked as /api/<successor>/<backend>),
	// a path, or an http(s) URL. Default: the lowest higher version that is
	// not deprecated, if any.
	Successor string `json:"successor,omitempty"`

	name         string
	backend      *Backend
	scheme       string
	basePath     string
	dials        []string
	cellDials    map[string][]string
	deprecatedAt time.Time
	sunsetAt     time.Time
	successor    string // resolved: a version name, path or URL
	successorVer *Version
	major, minor int
}

// reservedNames are path segments under /api/ the edge serves itself.
var reservedNames = []string{"auth", "admin", "usage", "docs", "openapi.json", "exports", "batch"}

// provisionBackends checks the registry and loads the dialects.
func (a *App) provisionBackends(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	for _, name := range sortedNames(a.Backends) {
		b := a.Backends[name]
		if b == nil {
			return fmt.Errorf("erp: backend %q: empty", name)
		}
		if err := b.provision(ctx, repl, name); err != nil {
			return fmt.Errorf("erp: backend %q: %w", name, err)
		}
	}
	return nil
}

func (b *Backend) provision(ctx caddy.Context, repl *caddy.Replacer, name string) error {
	if !validBackendName(name) {
		return errors.New("invalid name: use [a-z][a-z0-9_-]* (at most 63 bytes), not a version like v1, not " + strings.Join(reservedNames, ", "))
	}
	b.name = name
	if err := b.Events.validate(); err != nil {
		return err
	}
	if b.DialectRaw != nil {
		mod, err := ctx.LoadModule(b, "DialectRaw")
		if err != nil {
			return fmt.Errorf("loading dialect: %w", err)
		}
		f, ok := mod.(dialects.Factory)
		if !ok {
			return fmt.Errorf("dialect module %T is not a dialect", mod)
		}
		b.dialect = f.ForBackend(name)
	} else {
		b.dialect = &rest.Dialect{Backend: name}
	}
	b.resource = "/" + name
	if b.Path != "" {
		if b.Path != "/" && !reqpath.Plain(b.Path) {
			return fmt.Errorf("path %q: must start with / and have no empty, . or .. segments", b.Path)
		}
		b.resource = strings.TrimSuffix(b.Path, "/")
	}
	if len(b.Versions) == 0 {
		return errors.New("at least one version is required")
	}
	b.ordered = make([]*Version, 0, len(b.Versions))
	for vname, v := range b.Versions {
		if v == nil {
			return fmt.Errorf("version %q: empty", vname)
		}
		if err := v.provision(repl, vname); err != nil {
			return fmt.Errorf("version %q: %w", vname, err)
		}
		v.backend = b
		b.ordered = append(b.ordered, v)
	}
	slices.SortFunc(b.ordered, func(x, y *Version) int {
		if x.major != y.major {
			return x.major - y.major
		}
		return x.minor - y.minor
	})
	for i, v := range b.ordered {
		switch {
		case v.Successor == "":
			for _, w := range b.ordered[i+1:] {
				if !w.IsDeprecated() {
					v.successor, v.successorVer = w.name, w
					break
				}
			}
		case validVersionName(v.Successor):
			w, ok := b.Versions[v.Successor]
			if !ok || w == v {
				return fmt.Errorf("version %q: successor %q is not another version of this backend", v.name, v.Successor)
			}
			v.successor, v.successorVer = w.name, w
		case strings.HasPrefix(v.Successor, "/") && reqpath.Plain(v.Successor):
			v.successor = v.Successor
		default:
			u, err := url.Parse(v.Successor)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(v.Successor, "<>\" \r\n") {
				return fmt.Errorf("version %q: successor %q: want a version name, a path or an http(s) URL", v.name, v.Successor)
			}
			v.successor = v.Successor
		}
	}
	if b.DefaultVersion != "" {
		d, ok := b.Versions[b.DefaultVersion]
		if !ok {
			return fmt.Errorf("default_version %q is not a version of this backend", b.DefaultVersion)
		}
		b.def = d
	} else {
		b.def = b.ordered[len(b.ordered)-1]
		for i := len(b.ordered) - 1; i >= 0; i-- {
			if !b.ordered[i].IsDeprecated() {
				b.def = b.ordered[i]
				break
			}
		}
	}
	if b.GraphQL != nil {
		if err := b.GraphQL.provision(b); err != nil {
			return err
		}
	}
	return nil
}

func (v *Version) provision(repl *caddy.Replacer, name string) error {
	maj, mnr, ok := parseVersionName(name)
	if !ok {
		return errors.New("invalid version name: use v<major>[.<minor>], e.g. v1 or v2.1")
	}
	v.name, v.major, v.minor = name, maj, mnr
	v.scheme, v.basePath = "", ""
	if len(v.Upstreams) == 0 && len(v.Cells) == 0 {
		return errors.New("at least one upstream URL (or a cell) is required")
	}
	v.dials = make([]string, 0, len(v.Upstreams))
	for _, raw := range v.Upstreams {
		d, err := v.dialOf(repl, raw)
		if err != nil {
			return err
		}
		v.dials = append(v.dials, d)
	}
	if err := v.provisionCells(repl); err != nil {
		return err
	}
	var err error
	if v.Deprecated != "" {
		if v.deprecatedAt, err = parseDate(v.Deprecated); err != nil {
			return fmt.Errorf("deprecated: %v", err)
		}
	}
	if v.Sunset != "" {
		if v.sunsetAt, err = parseDate(v.Sunset); err != nil {
			return fmt.Errorf("sunset: %v", err)
		}
		if !v.deprecatedAt.IsZero() && v.sunsetAt.Before(v.deprecatedAt) {
			return errors.New("sunset is before the deprecation date")
		}
	}
	return nil
}

// dialOf checks one upstream URL of the version and returns its dial
// address; the first URL checked sets the version's scheme and path, which
// every other must share.
func (v *Version) dialOf(repl *caddy.Replacer, raw string) (string, error) {
	s := repl.ReplaceAll(raw, "")
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("upstream %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("upstream %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("upstream %q: want scheme://host[:port][/path], without user, query or fragment", raw)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if p != "" && !reqpath.Plain(p) {
		return "", fmt.Errorf("upstream %q: the path must have no empty, . or .. segments", raw)
	}
	if u.RawPath != "" {
		return "", fmt.Errorf("upstream %q: the path must not contain escaped characters", raw)
	}
	if v.scheme == "" {
		v.scheme, v.basePath = u.Scheme, p
	} else if u.Scheme != v.scheme || p != v.basePath {
		return "", fmt.Errorf("upstream %q: all upstreams of a version must share scheme and path (%s://…%s)", raw, v.scheme, v.basePath)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("upstream %q: invalid port", raw)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// parseDate reads 2026-01-31 (midnight UTC) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-01-31) or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// ---- read access for erp_version and the erp upstream source ----

// BackendNames lists the registered backends, sorted.
func (a *App) BackendNames() []string { return sortedNames(a.Backends) }

// Backend returns the registered backend, or nil.
func (a *App) Backend(name string) *Backend {
	b := a.Backends[name]
	if b == nil || b.dialect == nil {
		return nil
	}
	return b
}

// Name is the backend's name.
func (b *Backend) Name() string { return b.name }

// Dialect is the backend's provisioned dialect.
func (b *Backend) Dialect() dialects.Dialect { return b.dialect }

// Resource is the backend's path below each version's URL path ("" for none).
func (b *Backend) Resource() string { return b.resource }

// Version returns the version by name, or nil.
func (b *Backend) Version(name string) *Version { return b.Versions[name] }

// Default is the version used when a request names none.
func (b *Backend) Default() *Version { return b.def }

// Ordered lists the versions in ascending order.
func (b *Backend) Ordered() []*Version { return b.ordered }

// Name is the version's name (v1).
func (v *Version) Name() string { return v.name }

// Backend is the version's backend.
func (v *Version) Backend() *Backend { return v.backend }

// BasePath is the path of the version's upstream URLs, without a trailing slash.
func (v *Version) BasePath() string { return v.basePath }

// Dials are the host:port addresses of the version's upstreams.
func (v *Version) Dials() []string { return v.dials }

// Scheme is http or https.
func (v *Version) Scheme() string { return v.scheme }

// DeprecatedAt is the deprecation date, zero when none is set.
func (v *Version) DeprecatedAt() time.Time { return v.deprecatedAt }

// SunsetAt is the sunset date, zero when none is set.
func (v *Version) SunsetAt() time.Time { return v.sunsetAt }

// IsDeprecated reports whether the version has a deprecation or a sunset date.
func (v *Version) IsDeprecated() bool {
	return v.Deprecated != "" || v.Sunset != ""
}

// SuccessorRef is the resolved successor: a version name of the same
// backend, a path or a URL; "" when there is none. SuccessorVersion is set
// for the first form.
func (v *Version) SuccessorRef() string { return v.successor }

// SuccessorVersion is the successor version of the same backend, or nil.
func (v *Version) SuccessorVersion() *Version { return v.successorVer }

// ---- names and paths ----

func validBackendName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' || slices.Contains(reservedNames, s) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return !validVersionName(s)
}

func validVersionName(s string) bool {
	_, _, ok := parseVersionName(s)
	return ok
}

// parseVersionName reads v<major>[.<minor>], numbers without leading zeros,
// at most 4 digits.
func parseVersionName(s string) (int, int, bool) {
	if len(s) < 2 || s[0] != 'v' {
		return 0, 0, false
	}
	majS, minS, hasMinor := strings.Cut(s[1:], ".")
	maj, ok := smallNumber(majS)
	if !ok {
		return 0, 0, false
	}
	if !hasMinor {
		return maj, -1, true
	}
	mnr, ok := smallNumber(minS)
	return maj, mnr, ok
}

func smallNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ---- Caddyfile ----

// parseBackend parses one `backend` subdirective of the erp block:
//
//	backend <name> {
//		dialect <rest|odata|jsonrpc> [{ <dialect options> }]
//		path    <path>
//		default <version>
//		version <name> [<url>…] [{
//			cell       <name> <url> [<url>…]
//			deprecated <date>
//			sunset     <date>
//			successor  <version|path|url>
//		}]
//		events  off | { resource <name> }
//		graphql { sdl <<SDL … SDL | sdl_file <path>; version <name> }
//	}
//
// version repeats (once per version name), cell once per cell name;
// everything else appears at most once. A version needs upstream URLs, cells or both. Dates are 2026-01-31 or RFC 3339 times.
func parseBackend(a *App, d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	name := d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if _, dup := a.Backends[name]; dup {
		return d.Errf("duplicate backend %q", name)
	}
	b := &Backend{Versions: map[string]*Version{}}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && sub != "version" {
			return d.Errf("backend %s: duplicate subdirective %q", name, sub)
		}
		seen[sub] = true
		switch sub {
		case "dialect":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dname := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "erp.dialects."+dname)
			if err != nil {
				return err
			}
			b.DialectRaw = caddyconfig.JSONModuleObject(unm, "name", dname, nil)
		case "path", "default":
			if !d.NextArg() {
				return d.ArgErr()
			}
			val := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if d.NextBlock(d.Nesting()) {
				return d.Errf("backend %s: %s takes no block", name, sub)
			}
			if sub == "path" {
				b.Path = val
			} else {
				b.DefaultVersion = val
			}
		case "version":
			if err := parseVersion(d, b, name); err != nil {
				return err
			}
		case "events":
			ev, err := parseBackendEvents(d, name)
			if err != nil {
				return err
			}
			b.Events = ev
		case "graphql":
			g, err := parseBackendGraphQL(d, name)
			if err != nil {
				return err
			}
			b.GraphQL = g
		default:
			return d.Errf("backend %s: unknown subdirective %q", name, sub)
		}
	}
	if len(b.Versions) == 0 {
		return d.Errf("backend %s: at least one version is required", name)
	}
	if a.Backends == nil {
		a.Backends = map[string]*Backend{}
	}
	a.Backends[name] = b
	return nil
}

func parseVersion(d *caddyfile.Dispenser, b *Backend, backend string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	vname := d.Val()
	if _, dup := b.Versions[vname]; dup {
		return d.Errf("backend %s: duplicate version %q", backend, vname)
	}
	v := &Version{Upstreams: d.RemainingArgs()}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if sub == "cell" {
			if err := parseCell(d, v, backend, vname); err != nil {
				return err
			}
			continue
		}
		if seen[sub] {
			return d.Errf("backend %s: version %s: duplicate subdirective %q", backend, vname, sub)
		}
		seen[sub] = true
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		switch sub {
		case "deprecated":
			v.Deprecated = args[0]
		case "sunset":
			v.Sunset = args[0]
		case "successor":
			v.Successor = args[0]
		default:
			return d.Errf("backend %s: version %s: unknown subdirective %q", backend, vname, sub)
		}
	}
	if len(v.Upstreams) == 0 && len(v.Cells) == 0 {
		return d.Errf("backend %s: version %s needs at least one upstream URL or cell", backend, vname)
	}
	b.Versions[vname] = v
	return nil
}
