package erpapp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// BackendGraphQL is a backend's part of the GraphQL schema that erp_graphql
// serves at /api/graphql: types, root fields and relations in SDL
// (conventions in internal/graphql's package doc). In the Caddyfile:
//
//	backend invoices {
//		graphql {
//			sdl <<SDL
//				type Invoice { id: ID! … }
//				extend type Query { invoices(first: Int = 20, after: String): InvoiceConnection }
//				SDL
//			# or: sdl_file /etc/erpgate/invoices.graphql
//			version v2
//		}
//		…
//	}
//
// Added or changed through the admin API (`PUT
// /config/apps/erp/backends/<name>/graphql`), the schema is composed again
// with the reloaded config: no restart.
type BackendGraphQL struct {
	// SDL is the schema document, inline.
	SDL string `json:"sdl,omitempty"`
	// SDLFile is a file holding the schema document, read when the config
	// loads. One of SDL and SDLFile is required.
	SDLFile string `json:"sdl_file,omitempty"`
	// Version is the version GraphQL's calls go to. Default: the backend's
	// default version.
	Version string `json:"version,omitempty"`

	sdl string
	ver *Version
}

// maxSDLBytes bounds one backend's schema document.
const maxSDLBytes = 1 << 20

func (g *BackendGraphQL) provision(b *Backend) error {
	switch {
	case g.SDL != "" && g.SDLFile != "":
		return errors.New("graphql: sdl and sdl_file are exclusive")
	case g.SDL != "":
		g.sdl = g.SDL
	case g.SDLFile != "":
		st, err := os.Stat(g.SDLFile)
		if err != nil {
			return fmt.Errorf("graphql: sdl_file: %w", err)
		}
		if st.Size() > maxSDLBytes {
			return fmt.Errorf("graphql: sdl_file %s is larger than %d bytes", g.SDLFile, maxSDLBytes)
		}
		raw, err := os.ReadFile(g.SDLFile)
		if err != nil {
			return fmt.Errorf("graphql: sdl_file: %w", err)
		}
		g.sdl = string(raw)
	default:
		return errors.New("graphql: sdl or sdl_file is required")
	}
	if len(g.sdl) > maxSDLBytes {
		return fmt.Errorf("graphql: the SDL is larger than %d bytes", maxSDLBytes)
	}
	g.ver = b.def
	if g.Version != "" {
		v, ok := b.Versions[g.Version]
		if !ok {
			return fmt.Errorf("graphql: version %q is not a version of this backend", g.Version)
		}
		g.ver = v
	}
	return nil
}

// GraphQLSDL is the backend's schema document, "" when it declares none.
func (b *Backend) GraphQLSDL() string {
	if b.GraphQL == nil {
		return ""
	}
	return b.GraphQL.sdl
}

// GraphQLVersion is the version GraphQL's calls to this backend go to.
func (b *Backend) GraphQLVersion() *Version {
	if b.GraphQL == nil || b.GraphQL.ver == nil {
		return b.def
	}
	return b.GraphQL.ver
}

// parseBackendGraphQL reads
//
//	graphql {
//		sdl <text>          (a heredoc, <<SDL … SDL, for more than one line)
//		sdl_file <path>
//		version <name>
//	}
func parseBackendGraphQL(d *caddyfile.Dispenser, backend string) (*BackendGraphQL, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	g := &BackendGraphQL{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("backend %s: graphql: duplicate subdirective %q", backend, sub)
		}
		seen[sub] = true
		args := d.RemainingArgs()
		if len(args) != 1 {
			return nil, d.ArgErr()
		}
		switch sub {
		case "sdl":
			g.SDL = strings.TrimSpace(args[0])
		case "sdl_file":
			g.SDLFile = args[0]
		case "version":
			g.Version = args[0]
		default:
			return nil, d.Errf("backend %s: graphql: unknown subdirective %q", backend, sub)
		}
	}
	if g.SDL == "" && g.SDLFile == "" {
		return nil, d.Errf("backend %s: graphql: sdl or sdl_file is required", backend)
	}
	return g, nil
}
