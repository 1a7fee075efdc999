package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "erp",
		Usage: "migrate|keys rotate|audit verify [--postgres URL]",
		Short: "erpgate maintenance: database migrations, signing-key rotation, audit-trail verification",
		CobraFunc: func(cmd *cobra.Command) {
			migrate := &cobra.Command{
				Use:   "migrate",
				Short: "Apply the auth service's embedded Postgres migrations",
				Long:  "Applies the embedded migrations not applied yet, under an advisory lock (safe while instances start). The database is --postgres or ERP_POSTGRES_URL.",
				Args:  cobra.NoArgs,
				RunE:  runMigrate,
			}
			migrate.Flags().String("postgres", "", "Postgres URL (default: $ERP_POSTGRES_URL)")
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
					"otherwise prints the first record that was edited, deleted or re-hashed and exits 1.",
				Args: cobra.NoArgs,
				RunE: runAuditVerify,
			}
			verify.Flags().String("postgres", "", "Postgres URL (default: $ERP_POSTGRES_URL)")
			audit := &cobra.Command{Use: "audit", Short: "Audit-trail tools"}
			audit.AddCommand(verify)
			cmd.AddCommand(migrate, keys, audit)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authsvc",
		Usage: "--config FILE",
		Short: "Run the auth service standalone (plain net/http)",
		Long: "Serves the auth service's endpoints without Caddy. Settings come from a YAML file and ERP_* variables " +
			"(ERP_LISTEN, ERP_POSTGRES_URL, ERP_REDIS_URL, ERP_KEY_PREFIX, ERP_MASTER_KEY, ERP_ISSUER, ERP_AUDIENCE, ERP_INTROSPECTION_SECRET, ERP_DEMO).",
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("config", "", "YAML configuration file (optional: ERP_* variables alone suffice)")
			cmd.Args = cobra.NoArgs
			cmd.RunE = runAuthService
		},
	})
}

func postgresURL(cmd *cobra.Command) (string, error) {
	u, _ := cmd.Flags().GetString("postgres")
	if u == "" {
		u = os.Getenv("ERP_POSTGRES_URL")
	}
	if u == "" {
		return "", errors.New("no database: give --postgres or set ERP_POSTGRES_URL")
	}
	return u, nil
}

func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
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
	url, err := postgresURL(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	pool, err := openPool(ctx, url)
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
	url, err := postgresURL(cmd)
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
	pool, err := openPool(ctx, url)
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
	url, err := postgresURL(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
	defer cancel()
	pool, err := openPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	check, err := store.NewPostgres(pool).VerifyAudit(ctx)
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

func runAuthService(cmd *cobra.Command, _ []string) error {
	file, _ := cmd.Flags().GetString("config")
	c, err := contract.LoadAuthService(file)
	if err != nil {
		return err
	}
	logger, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := authsvc.Config{Issuer: c.Issuer, Audience: c.Audience, IntrospectionSecret: c.IntrospectionSecret,
		AccessTTL: c.AccessTTL, RefreshTTL: c.RefreshTTL, KeyPrefix: c.KeyPrefix, Demo: c.Demo,
		PasswordHash: authsvc.Argon2Params{Memory: c.PasswordHashing.MemoryKiB, Time: c.PasswordHashing.Iterations, Threads: c.PasswordHashing.Parallelism},
		HashLimits:   authsvc.HashLimits{Concurrency: c.PasswordHashing.Concurrency, Queue: c.PasswordHashing.Queue, QueueWait: c.PasswordHashing.QueueWait}}
	if p := &cfg.PasswordHash; *p != (authsvc.Argon2Params{}) {
		// Unset fields of a partly given set take the default's.
		def := authsvc.DefaultArgon2Params
		p.Memory, p.Time, p.Threads = cmp.Or(p.Memory, def.Memory), cmp.Or(p.Time, def.Time), cmp.Or(p.Threads, def.Threads)
	}
	if c.MasterKey != "" {
		if cfg.MasterKey, err = authsvc.ParseMasterKey(c.MasterKey); err != nil {
			return fmt.Errorf("master key: %w", err)
		}
	}
	deps := authsvc.Deps{Logger: logger}
	if c.Postgres != "" {
		pcfg, err := pgxpool.ParseConfig(c.Postgres)
		if err != nil {
			return errors.New("postgres: invalid connection URL")
		}
		pool, err := pgxpool.NewWithConfig(ctx, pcfg) // connects lazily
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer pool.Close()
		deps.Pool = pool
	}
	if c.Redis != "" {
		rdb, err := redisClient(c.Redis)
		if err != nil {
			return err
		}
		defer rdb.Close()
		deps.Redis = rdb
	}
	svc, err := authsvc.New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	defer svc.Close()
	if c.Demo {
		logger.Warn("demo mode is on: demo companies and users with a published password are seeded; never use it in production")
	}
	srv := &http.Server{
		Addr:              c.Listen,
		Handler:           svc.Handler(authsvc.HTTPOptions{}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("auth service listening", zap.String("address", c.Listen), zap.Bool("postgres", deps.Pool != nil), zap.Bool("redis", deps.Redis != nil))
	go func() {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := svc.Ready(rctx); err != nil && ctx.Err() == nil {
			logger.Error("auth service not ready", zap.Error(err))
		}
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// redisClient accepts a redis:// URL or comma-separated cluster addresses.
func redisClient(addr string) (redis.UniversalClient, error) {
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			return nil, errors.New("redis: invalid URL") // never echo it: it may hold a password
		}
		return redis.NewClient(o), nil
	}
	var addrs []string
	for a := range strings.SplitSeq(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs}), nil
}
