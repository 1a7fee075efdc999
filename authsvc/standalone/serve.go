package standalone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/rediscluster"
)

// Run serves the auth service with c's settings until ctx ends, then shuts
// the server down (10 s for the requests in flight).
func Run(ctx context.Context, c Config) error {
	logger, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

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
		// The service runs as erpgate_app, under row-level security.
		store.ConfigurePool(pcfg)
		pool, err := pgxpool.NewWithConfig(ctx, pcfg) // connects lazily
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer pool.Close()
		deps.Pool = pool
	}
	if c.Redis != "" {
		rdb, err := rediscluster.Open(c.Redis) // one server or a cluster, as the gateway's `redis`
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
