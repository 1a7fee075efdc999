// Package archtest holds no code: its test enforces where erpgate's
// packages live and what each may import, by reading `go list`'s import
// graph of the module. The layout, one place per kind of package:
//
//   - caddymodules/<module>: one Caddy module (or one family, such as the
//     dialects) per package: the Caddy glue (CaddyModule, Provision,
//     ServeHTTP, Caddyfile parsing) and nothing a test needs Caddy to run.
//     A module does not import another module's package: what modules
//     share, they get from the erp app (caddymodules/erpapp), its typed
//     owner (the one exception: erp_auth's Caddyfile expansion fills its
//     providers' config types).
//     caddymodules/internal/<helper>: Caddy-dependent helpers the modules
//     share (edgeauth, placeholders, caddyfileutil, adapttest).
//     caddymodules/all imports every module; only cmd/ and the module's
//     root package (what xcaddy's --with imports) import it.
//   - internal/<core>: every Caddy-free core the edge is built from (the
//     limiter, the envelope, credentials, revocation, …) and the test
//     harnesses, private to this module. A module's pure logic goes here,
//     not in a sub-package of its module: one convention, not four.
//   - backends/<lib>: Caddy-free libraries for the services behind the
//     edge (the dialects' query model, the edge-assertion verifier, the
//     demo ERP). Other Go modules import them, so they are public; they
//     import no Caddy and nothing under caddymodules/.
//   - authsvc/…: the auth service, embedded by caddymodules/authsvc or run
//     standalone by authsvc/standalone; no Caddy. Only authsvc/standalone
//     imports viper (its YAML file).
//   - contract/: the names the edge and the auth service share (error
//     codes, headers, claims, request variables, Redis keys); the standard
//     library only, nothing of ours, no viper.
//   - cmd/: binaries.
//
// Only caddymodules/, cmd/ and the root package import Caddy, directly or
// through any dependency; everything else can be tested and benchmarked
// without it.
//
// A module package imports no other module package (the test names the one
// exception: caddymodules/authz imports companyjwt and apikey, whose configs
// erp_auth builds). It owns these rules only; it imports nothing of ours.
package archtest
