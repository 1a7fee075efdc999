package erpgate

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// TestXcaddyBuildHasEverything checks what an xcaddy build gets from
// `--with github.com/erpgate/erpgate`: xcaddy's generated main imports only
// Caddy's command package, its standard modules and this package, so what
// this package's imports register is what that binary has. cmd/gateway
// imports the same, so this checks our own binary too.
func TestXcaddyBuildHasEverything(t *testing.T) {
	commands := caddycmd.Commands()
	for name, subs := range map[string][]string{
		"erp":     {"migrate", "keys rotate", "audit verify"},
		"authsvc": {""},
	} {
		c, ok := commands[name]
		if !ok || c.CobraFunc == nil {
			t.Errorf("subcommand %q is not registered", name)
			continue
		}
		root := &cobra.Command{Use: name}
		c.CobraFunc(root)
		for _, sub := range subs {
			found, rest, err := root.Find(strings.Fields(sub))
			if err != nil || len(rest) != 0 || found.RunE == nil {
				t.Errorf("`%s %s` has no action (%v)", name, sub, err)
			}
		}
	}

	for _, id := range []string{
		"erp", "erp.dialects.rest", "erp.dialects.odata", "erp.dialects.jsonrpc",
		"http.handlers.erp_authsvc", "http.handlers.erp_authz", "http.handlers.erp_demo",
		"http.handlers.erp_envelope", "http.handlers.erp_health", "http.handlers.erp_quota",
		"http.handlers.erp_usage", "http.handlers.erp_version", "http.handlers.erp_webhooks",
		"http.handlers.erp_events", "http.handlers.erp_ip_block", "http.handlers.erp_graphql",
		"http.handlers.erp_batch", "http.handlers.erp_batch_credentials", "http.handlers.erp_bulk",
		"http.handlers.erp_import", "http.handlers.erp_cache", "http.handlers.erp_idempotency",
		"http.handlers.erp_merge", "http.handlers.erp_export_jobs", "http.handlers.erp_export_credentials",
		"http.authentication.providers.erp_jwt", "http.authentication.providers.erp_api_key",
		"http.reverse_proxy.upstreams.erp", "caddy.listeners.erp_handoff",
		"caddy.logging.encoders.filter.erp_redact_query",
	} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s is not registered: %v", id, err)
		}
	}
}
