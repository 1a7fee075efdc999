// Package erpapp is the erp app: state shared by every erpgate module with the
// lifetime of one config — the Postgres pool, the Redis client and the demo switch.
//
// Postgres and Redis clients are kept in a process-wide caddy.UsagePool keyed by
// their (resolved) address, so a config reload hands the same pool to the new
// config before the old config releases it: nothing is dropped and nothing leaks.
package erpapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `erp` app, configured by the global option `erp { … }`.
//
//	{
//		erp {
//			postgres   {env.ERP_POSTGRES_URL}
//			redis      {env.ERP_REDIS_URL}
//			key_prefix erpgate:
//			demo       on
//		}
//	}
//
// With neither postgres nor redis set everything runs in-process (the embedded default).
type App struct {
	// Postgres connection URL (pgx syntax). Placeholders are resolved, so secrets
	// come from `{env.…}` or `{file.…}`. Empty: in-memory stores. Default: empty.
	Postgres string `json:"postgres,omitempty"`

	// Redis URL (`redis://…`, `rediss://…`), or several comma-separated
	// `host:port` addresses for a cluster. Empty: in-process counters and
	// revocations. Default: empty.
	Redis string `json:"redis,omitempty"`

	// KeyPrefix is put before every Redis key erpgate writes, so several
	// deployments (or tests) can share one Redis. Default: `erpgate:`.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Demo seeds the demo companies and users (see DESIGN.md). Never on in
	// production. Default: false.
	Demo bool `json:"demo,omitempty"`

	// Timeout bounds each readiness check against Postgres and Redis.
	// Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Backends are the ERP services behind the edge, by name (see Backend).
	Backends map[string]*Backend `json:"backends,omitempty"`

	// QuotaOverrides change erp_quota's numbers per company, by company id
	// (see QuotaOverride).
	QuotaOverrides map[string]*QuotaOverride `json:"quota_overrides,omitempty"`

	// RefusalAudit tunes the audit of credentials refused at the edge
	// (see RefusalAudit). Default: its defaults.
	RefusalAudit *RefusalAudit `json:"refusal_audit,omitempty"`

	// RefusalLog tunes the sampling of refusals' log lines (see
	// RefusalLog). Default: its defaults.
	RefusalLog *RefusalLog `json:"refusal_log,omitempty"`

	pg     *pgPool
	rdb    *redisClient
	pgKey  string
	rdbKey string
	logger *zap.Logger
	ctx    caddy.Context

	mu        *sync.Mutex
	providers map[string]any
	closed    bool
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "erp",
		New: func() caddy.Module { return new(App) },
	}
}

// clients shares Postgres pools and Redis clients between configs.
var clients = caddy.NewUsagePool()

type pgPool struct{ *pgxpool.Pool }

func (p *pgPool) Destruct() error { p.Close(); return nil }

type redisClient struct{ redis.UniversalClient }

func (r *redisClient) Destruct() error { return r.Close() }

// Provision sets defaults and obtains (without connecting) the shared clients.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.mu = new(sync.Mutex)
	if a.KeyPrefix == "" {
		a.KeyPrefix = "erpgate:"
	}
	if a.Timeout <= 0 {
		a.Timeout = caddy.Duration(2 * time.Second)
	}
	if err := a.provisionBackends(ctx); err != nil {
		return err
	}
	if err := a.provisionQuotaOverrides(); err != nil {
		return err
	}
	if err := a.provisionRefusalLog(); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	if dsn := repl.ReplaceAll(a.Postgres, ""); dsn != "" {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return errors.New("erp: postgres: invalid connection URL") // never echo the DSN: it may hold a password
		}
		key := "pg:" + dsn
		v, _, err := clients.LoadOrNew(key, func() (caddy.Destructor, error) {
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // lazy: connects on first use
			if err != nil {
				return nil, fmt.Errorf("erp: postgres: open pool: %w", err)
			}
			return &pgPool{pool}, nil
		})
		if err != nil {
			return err
		}
		a.pg, a.pgKey = v.(*pgPool), key
	}
	if addr := repl.ReplaceAll(a.Redis, ""); addr != "" {
		opts, err := redisOptions(addr)
		if err != nil {
			return err
		}
		key := "redis:" + addr
		v, _, err := clients.LoadOrNew(key, func() (caddy.Destructor, error) {
			return &redisClient{redis.NewUniversalClient(opts)}, nil
		})
		if err != nil {
			return err
		}
		a.rdb, a.rdbKey = v.(*redisClient), key
	}
	return nil
}

// Start checks that the configured servers answer and logs the mode.
// An unreachable server does not fail the config: modules degrade as
// configured and Ready reports it.
func (a *App) Start() error {
	mode := "embedded (in-process stores)"
	if a.pg != nil || a.rdb != nil {
		mode = "external"
	}
	a.logger.Info("erp app starting",
		zap.String("mode", mode),
		zap.Bool("postgres", a.pg != nil),
		zap.Bool("redis", a.rdb != nil),
		zap.Bool("demo", a.Demo))
	if a.Demo {
		a.logger.Warn("demo mode is on: demo companies and users with a published password are seeded; never use it in production")
	}
	ctx, cancel := context.WithTimeout(a.ctx, time.Duration(a.Timeout))
	defer cancel()
	for name, err := range a.Ready(ctx) {
		if err != nil {
			a.logger.Warn("dependency not ready", zap.String("dependency", name), zap.Error(err))
		}
	}
	return nil
}

// Stop is a no-op: clients are released in Cleanup, after the next config took them.
func (a *App) Stop() error { return nil }

// Cleanup releases the shared clients and closes what is registered with Provide.
func (a *App) Cleanup() error {
	var errs []error
	// Close outside the lock: a provider's Close may wait for a request
	// that is itself asking the app for a provider.
	a.mu.Lock()
	providers := a.providers
	a.providers = nil
	a.closed = true
	a.mu.Unlock()
	for _, p := range providers {
		if c, ok := p.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	if a.pg != nil {
		if _, err := clients.Delete(a.pgKey); err != nil {
			errs = append(errs, err)
		}
	}
	if a.rdb != nil {
		if _, err := clients.Delete(a.rdbKey); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Postgres is the shared pool, or nil on the embedded default.
func (a *App) PostgresPool() *pgxpool.Pool {
	if a.pg == nil {
		return nil
	}
	return a.pg.Pool
}

// RedisClient is the shared client, or nil on the embedded default.
func (a *App) RedisClient() redis.UniversalClient {
	if a.rdb == nil {
		return nil
	}
	return a.rdb.UniversalClient
}

// RedisKey identifies the Redis the app uses (its resolved address, for
// keying process-wide state by it), or "" on the embedded default. Redis
// itself may be a placeholder such as `{env.ERP_REDIS_URL}`, resolved only in
// Provision, so that no credential appears in the served config.
func (a *App) RedisKey() string { return a.rdbKey }

// Ready checks each configured dependency; the map has one entry per
// dependency, with a nil error when it answered.
func (a *App) Ready(ctx context.Context) map[string]error {
	out := make(map[string]error, 2)
	if a.pg != nil {
		c, cancel := context.WithTimeout(ctx, time.Duration(a.Timeout))
		err := a.pg.Ping(c)
		cancel()
		if err != nil {
			err = errors.New("postgres unreachable")
		}
		out["postgres"] = err
	}
	if a.rdb != nil {
		c, cancel := context.WithTimeout(ctx, time.Duration(a.Timeout))
		err := a.rdb.Ping(c).Err()
		cancel()
		if err != nil {
			err = errors.New("redis unreachable")
		}
		out["redis"] = err
	}
	return out
}

// Provide returns the value registered under name for this config, creating
// it with make on first use. Modules of one config (the auth service, the
// edge's providers) use it to share one instance; a value with a Close method
// is closed when the config is cleaned up.
func (a *App) Provide(name string, make func() (any, error)) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.providers[name]; ok {
		return v, nil
	}
	if a.closed {
		return nil, errors.New("erp: the config was unloaded")
	}
	v, err := make()
	if err != nil {
		return nil, err
	}
	if a.providers == nil {
		a.providers = map[string]any{}
	}
	a.providers[name] = v
	return v, nil
}

// Context is the config's context: cancelled when the config unloads.
func (a *App) Context() caddy.Context { return a.ctx }

// Get returns the erp app of ctx's config (an empty, embedded one if the
// config has no `erp` block).
func Get(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("erp")
	if err != nil {
		return nil, fmt.Errorf("erp: loading app: %w", err)
	}
	app, ok := v.(*App)
	if !ok {
		return nil, errors.New("erp: app has unexpected type")
	}
	return app, nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
