package erpapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// The `erp` maintenance subcommands (migrate, keys rotate, audit verify)
// register here, with the erp app, so every build that includes erpgate's
// modules (ours or an xcaddy one) has them, as caddyauth's hash-password
// does.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "erp",
		Usage: "migrate|keys rotate|audit verify [--postgres URL]",
		Short: "erpgate maintenance: database migrations, signing-key rotation, audit-trail verification",
		CobraFunc: func(cmd *cobra.Command) {
			migrate := &cobra.Command{
				Use:   "migrate",
				Short: "Apply the auth service's embedded Postgres migrations",
				Long: "Applies the embedded migrations not applied yet, under an advisory lock (safe while instances start), as the schema's owner: " +
					"the database is --postgres, else ERP_POSTGRES_OWNER_URL, else ERP_POSTGRES_URL. The URL's role must be a superuser or a member of " +
					"erpgate_owner (the first run creates the roles erpgate_owner, erpgate_app and erpgate_platform); the service itself runs as erpgate_app.",
				Args: cobra.NoArgs,
				RunE: runMigrate,
			}
			migrate.Flags().String("postgres", "", "the schema owner's Postgres URL (default: $ERP_POSTGRES_OWNER_URL, else $ERP_POSTGRES_URL)")
			rotate := &cobra.Command{
				Use:   "rotate",
				Short: "Publish a new access-token signing key (or, with --assertion, edge-assertion key)",
				Long: "Publishes a new Ed25519 signing key, sealed under ERP_MASTER_KEY (the servers' master key), that signs from --activate-in on. " +
					"The previous key stays published until every token it signed has expired. With --assertion the key signs the edge's " +
					"assertions to backends (X-ERP-Assertion; kid edge-…) instead of access tokens.",
				Args: cobra.NoArgs,
				RunE: runKeysRotate,
			}
			rotate.Flags().String("postgres", "", "Postgres URL (default: $ERP_POSTGRES_URL)")
			rotate.Flags().Bool("assertion", false, "rotate the edge-assertion key instead of the access-token key")
			rotate.Flags().Duration("activate-in", authsvc.DefaultKeyPublishDelay, "how long the key is published before it signs (at least the verifiers' JWKS cache time)")
			keys := &cobra.Command{Use: "keys", Short: "Signing-key management"}
			keys.AddCommand(rotate)
			verify := &cobra.Command{
				Use:   "verify",
				Short: "Verify the audit trail's hash chain",
				Long: "Re-computes the hash chain of the auth service's audit trail in Postgres (--postgres or ERP_POSTGRES_URL), " +
					"in sequence order, and checks the last record against the recorded head. Exits 0 when the trail is intact; " +
					"otherwise prints the first record that was edited, deleted or re-hashed and exits 1. A chain cut by audit retention starts at its " +
					"signed checkpoint, and a record pseudonymised by an erasure carries a signed attestation: both are checked with the key derived " +
					"from ERP_MASTER_KEY, which such a trail needs.",
				Args: cobra.NoArgs,
				RunE: runAuditVerify,
			}
			verify.Flags().String("postgres", "", "Postgres URL (default: $ERP_POSTGRES_URL)")
			audit := &cobra.Command{Use: "audit", Short: "Audit-trail tools"}
			audit.AddCommand(verify)
			cmd.AddCommand(migrate, keys, audit)
		},
	})
}

func commandPostgresURL(cmd *cobra.Command, envs ...string) (string, error) {
	u, _ := cmd.Flags().GetString("postgres")
	for _, e := range append(envs, "ERP_POSTGRES_URL") {
		if u == "" {
			u = os.Getenv(e)
		}
	}
	if u == "" {
		return "", errors.New("no database: give --postgres or set ERP_POSTGRES_URL")
	}
	return u, nil
}

func openCommandPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("invalid Postgres URL") // never echo it: it may hold a password
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open Postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, errors.New("postgres unreachable")
	}
	return pool, nil
}

func runMigrate(cmd *cobra.Command, _ []string) error {
	url, err := commandPostgresURL(cmd, "ERP_POSTGRES_OWNER_URL")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	pool, err := openCommandPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "database is up to date")
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "applied migrations %v\n", applied)
	return nil
}

func runKeysRotate(cmd *cobra.Command, _ []string) error {
	url, err := commandPostgresURL(cmd)
	if err != nil {
		return err
	}
	activateIn, _ := cmd.Flags().GetDuration("activate-in")
	if activateIn < 0 {
		return errors.New("--activate-in must not be negative")
	}
	raw := os.Getenv("ERP_MASTER_KEY")
	if raw == "" {
		return errors.New("ERP_MASTER_KEY is not set: the key must be sealed under the servers' master key")
	}
	mk, err := authsvc.ParseMasterKey(raw)
	if err != nil {
		return fmt.Errorf("ERP_MASTER_KEY: %w", err)
	}
	sealer, err := authsvc.NewSealer(mk)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	pool, err := openCommandPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		return err
	}
	purpose, what := store.KeyAccess, "signing key"
	if a, _ := cmd.Flags().GetBool("assertion"); a {
		purpose, what = store.KeyAssertion, "assertion key"
	}
	now := time.Now()
	k, err := authsvc.NewKey(sealer, purpose, now, now.Add(activateIn))
	if err != nil {
		return err
	}
	if err := store.NewPostgres(pool).AddSigningKey(ctx, purpose, k); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "published %s %s; it signs from %s\n", what, k.KID, k.ActivatesAt.UTC().Format(time.RFC3339))
	return nil
}

// errAuditBroken makes the command exit non-zero after its report.
var errAuditBroken = errors.New("the audit trail does not verify")

func runAuditVerify(cmd *cobra.Command, _ []string) error {
	url, err := commandPostgresURL(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
	defer cancel()
	pool, err := openCommandPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The master key verifies the signed checkpoints of chains cut by
	// retention and the attestations of records pseudonymised by an
	// erasure; a trail with neither verifies without it.
	var key store.AuditKey
	if raw := os.Getenv("ERP_MASTER_KEY"); raw != "" {
		mk, err := authsvc.ParseMasterKey(raw)
		if err != nil {
			return fmt.Errorf("ERP_MASTER_KEY: %w", err)
		}
		if key, err = store.NewAuditKey(mk); err != nil {
			return err
		}
	}
	check, err := store.NewPostgres(pool).VerifyAuditWith(ctx, key)
	if err != nil {
		return fmt.Errorf("verify the audit trail (is the database migrated? run `gateway erp migrate`): %w", err)
	}
	if !check.OK {
		fmt.Fprintln(cmd.OutOrStdout(), check.String())
		cmd.SilenceUsage = true
		return errAuditBroken
	}
	fmt.Fprintln(cmd.OutOrStdout(), check.String())
	return nil
}
