package authsvc

import (
	"os"
	"os/signal"
	"syscall"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/erpgate/erpgate/authsvc/standalone"
)

// The `authsvc` subcommand registers here, with the module, so every build
// that includes erp_authsvc (ours or an xcaddy one) has it, as caddyauth's
// hash-password does. What it runs is authsvc/standalone.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authsvc",
		Usage: "--config FILE",
		Short: "Run the auth service standalone (plain net/http)",
		Long: "Serves the auth service's endpoints without Caddy. Settings come from a YAML file and ERP_* variables " +
			"(ERP_LISTEN, ERP_POSTGRES_URL, ERP_REDIS_URL, ERP_KEY_PREFIX, ERP_MASTER_KEY, ERP_ISSUER, ERP_AUDIENCE, ERP_INTROSPECTION_SECRET, ERP_DEMO).",
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("config", "", "YAML configuration file (optional: ERP_* variables alone suffice)")
			cmd.Args = cobra.NoArgs
			cmd.RunE = runStandalone
		},
	})
}

func runStandalone(cmd *cobra.Command, _ []string) error {
	file, _ := cmd.Flags().GetString("config")
	c, err := standalone.Load(file)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return standalone.Run(ctx, c)
}
