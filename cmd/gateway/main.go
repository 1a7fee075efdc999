// Command gateway is erpgate: Caddy v2 with the erpgate modules compiled in.
//
// It imports what an xcaddy build with `--with github.com/erpgate/erpgate`
// imports (Caddy's standard modules and the erpgate package), so both
// builds hold the same modules and subcommands (`erp …`, `authsvc`); the
// subcommands register from the module packages. It owns nothing: it must
// not import a module package directly, only the root package (and through
// it caddymodules/all).
package main

import (
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/erpgate/erpgate"
)

func main() {
	// Caddy's `tracing` directive exports through OpenTelemetry's environment
	// settings. Without a collector configured, export nothing rather than
	// retry a default endpoint that is not there.
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" &&
		os.Getenv("OTEL_TRACES_EXPORTER") == "" {
		_ = os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}
	caddycmd.Main()
}
