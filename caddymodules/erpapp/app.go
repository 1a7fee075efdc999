// Package erpapp is the erp app: the one owner of what erpgate's modules
// share. Per config it holds the settings of the `erp { … }` block (the
// backend registry, quota overrides, refusal sampling, the auth service's
// settings), the config's refusal log, its auth service and the config's
// erp_quota handler for erp_usage; across configs, through one documented
// pool with one lifetime rule (lasting.go), what must outlive a reload:
// Postgres pool, Redis client, revocation set, the embedded auth store,
// limiter state and the modules' lasting caches.
//
// Modules get what they need from the app (Get) in Provision, through typed
// methods. Not here: per-handler state that dies with its config (such as
// erp_authz's assertion cache), the process-wide Prometheus collectors
// (internal/promreg) and erp_handoff's registry of listeners.
//
// This package may import the Caddy-free cores (authsvc, authsvc/store,
// backends/dialects/…, internal/…) and caddymodules/internal/caddyfileutil,
// never a module package of caddymodules (they import it).
package erpapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/internal/fleet"
	"github.com/erpgate/erpgate/internal/promreg"
	"github.com/erpgate/erpgate/internal/refusallog"
	"github.com/erpgate/erpgate/internal/secmon"
	"github.com/erpgate/erpgate/internal/webhooks"
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
//			authsvc {
//				master_key           {env.ERP_MASTER_KEY}
//				introspection_secret {env.ERP_INTROSPECTION_SECRET}
//			}
//		}
//	}
//
// With neither postgres nor redis set everything runs in-process (the
// embedded default); the in-process state (the auth service's store and
// keys, revocations, counters) is kept across config reloads, not
// restarts. The `authsvc` block (see AuthSvc) configures the auth service
// that erp_authsvc handlers serve.
type App struct {
	// Postgres connection URL (pgx syntax). Placeholders are resolved, so secrets
	// come from `{env.…}` or `{file.…}`. Empty: in-memory stores. Default: empty.
	Postgres string `json:"postgres,omitempty"`

	// Redis URL (`redis://…`, `rediss://…`), or for a Redis Cluster either
	// several comma-separated `host:port` seed addresses or a URL naming
	// the other seeds as `?addr=host:port&addr=…` (with the URL's
	// credentials and TLS for every node). Empty: in-process counters and
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

	// AuthSvc configures the auth service served in process by erp_authsvc
	// (see AuthSvc). Default: its defaults.
	AuthSvc *AuthSvc `json:"authsvc,omitempty"`

	// Backends are the ERP services behind the edge, by name (see Backend).
	Backends map[string]*Backend `json:"backends,omitempty"`

	// QuotaOverrides change erp_quota's numbers per company, by company id
	// (see QuotaOverride).
	QuotaOverrides map[string]*QuotaOverride `json:"quota_overrides,omitempty"`

	// RefusalAudit tunes the audit of credentials refused at the edge
	// (see RefusalAudit). Default: its defaults.
	RefusalAudit *RefusalAudit `json:"refusal_audit,omitempty"`

	// NATS is the event engine: NATS JetStream, embedded by default (see
	// NATS).
	NATS *NATS `json:"nats,omitempty"`

	// Security configures the security monitor's rules and actions (see
	// Security). Default: the default rules.
	Security *Security `json:"security,omitempty"`

	// RefusalLog tunes the sampling of refusals' log lines (see
	// RefusalLog). Default: its defaults.
	RefusalLog *RefusalLog `json:"refusal_log,omitempty"`

	// WebhooksConfig tunes the webhook engine (see Webhooks). Default: its
	// defaults.
	WebhooksConfig *Webhooks `json:"webhooks,omitempty"`

	// FleetPoll is how often, with Postgres, the fleet's stored runtime
	// changes and the company cells are read again (announcements over
	// Redis apply them at once; this catches what was missed). Default: 5s.
	FleetPoll caddy.Duration `json:"fleet_poll,omitempty"`

	// RuntimeRevision is set by the fleet sync (fleet.go) in the config it
	// loads: the revision of the fleet's runtime changes the config holds.
	// A config without it (from a file) gets the stored changes overlaid.
	// Not for admins to set.
	RuntimeRevision *int64 `json:"runtime_revision,omitempty"`

	lasting  *Lasting
	logger   *zap.Logger
	ctx      caddy.Context
	refusals *refusallog.Log
	authCfg  core.Config

	securityRules secmon.Rules

	mu      *sync.Mutex // a pointer: App is copied by value in CaddyModule
	kept    []string    // lastingPool keys taken (Keep), given back in Cleanup
	hosting bool        // an erp_authsvc handler serves this config's auth service
	svc     *core.Service
	svcErr  error
	quota   Quota
	values  map[reflect.Type]io.Closer // OfConfig

	webhooks    *webhooks.Manager // the webhook service (Webhooks), made at first use
	webhooksErr error
	closed      bool

	fleetMaps fleet.Maps // backends and overrides as served (after the overlay)
	fleetBase bool       // loaded from a file: stored entries win
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "erp",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets defaults, checks the settings and takes the lasting state
// (clients made without connecting).
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
	repl := caddy.NewReplacer()
	var err error
	if a.lasting, err = lastingFor(repl.ReplaceAll(a.Postgres, ""), repl.ReplaceAll(a.Redis, ""), a.KeyPrefix, a.natsURL()); err != nil {
		return err
	}
	if err := a.provisionFleet(); err != nil {
		return err
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
	if err := a.NATS.validate(); err != nil {
		return err
	}
	if _, err := a.WebhooksConfig.settings(); err != nil {
		return err
	}
	if err := a.provisionSecurity(ctx); err != nil {
		return err
	}
	if a.authCfg, err = a.AuthSvc.coreConfig(a); err != nil {
		return err
	}
	a.refusals = a.newRefusalLog()
	if _, err := promreg.Register(ctx.GetMetricsRegistry(), prometheus.Collector(eventsCollector{a.lasting})); err != nil {
		return fmt.Errorf("erp: metrics: %w", err)
	}
	return nil
}

// Start starts the lasting state's Redis listener, checks that the
// configured servers answer and logs the mode. An unreachable server does
// not fail the config: modules degrade as configured and Ready reports it.
func (a *App) Start() error {
	mode := "embedded (in-process stores)"
	if a.lasting.pg != nil || a.lasting.rdb != nil {
		mode = "external"
	}
	a.logger.Info("erp app starting",
		zap.String("mode", mode),
		zap.Bool("postgres", a.lasting.pg != nil),
		zap.Bool("redis", a.lasting.rdb != nil),
		zap.Bool("demo", a.Demo))
	if a.Demo {
		a.logger.Warn("demo mode is on: demo companies and users with a published password are seeded; never use it in production")
	}
	a.lasting.listen(a.logger)
	a.startFleet()
	a.lasting.startEvents(a.NATS, a.natsURL(), a.logger)
	if a.hosts() {
		// Prepare the auth service now rather than at its first request:
		// its event relay publishes what a crashed process left.
		if svc, err := a.ServedAuthService(); err == nil {
			svc.Prepared()
		}
	}
	if _, err := a.webhookManager(); err != nil { // delivery workers run in every instance
		a.logger.Error("webhooks not started", zap.Error(err))
	}
	a.lasting.startSecurity(a.securityRules, a.Security != nil && a.Security.Off, a.logger)
	ctx, cancel := context.WithTimeout(a.ctx, time.Duration(a.Timeout))
	defer cancel()
	for name, err := range a.Ready(ctx) {
		if err != nil {
			a.logger.Warn("dependency not ready", zap.String("dependency", name), zap.Error(err))
		}
	}
	return nil
}

// Stop is a no-op: the lasting state is given back in Cleanup, after the
// next config took it.
func (a *App) Stop() error { return nil }

// Cleanup closes the config's own state (its auth service, refusal log and
// OfConfig values) and gives back the lasting entries it took.
func (a *App) Cleanup() error {
	var errs []error
	// Close outside the lock: a Close may wait for a request that is
	// itself asking the app for something.
	a.mu.Lock()
	a.closed = true
	svc, hosting, values, kept := a.svc, a.hosting, a.values, a.kept
	a.values, a.kept = nil, nil
	a.mu.Unlock()
	if a.lasting != nil && hosting {
		a.lasting.removeHost(a)
	}
	if svc != nil {
		errs = append(errs, svc.Close())
	}
	for _, v := range values {
		errs = append(errs, v.Close())
	}
	errs = append(errs, a.refusals.Close())
	for _, k := range kept {
		if _, err := lastingPool.Delete(k); err != nil {
			errs = append(errs, err)
		}
	}
	if a.lasting != nil {
		if _, err := lastingPool.Delete(a.lasting.key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lasting is the state this config shares with the configs before and
// after it (see lastingPool).
func (a *App) Lasting() *Lasting { return a.lasting }

// PostgresPool is the shared pool, or nil on the embedded default.
func (a *App) PostgresPool() *pgxpool.Pool { return a.lasting.pg }

// RedisClient is the shared client, or nil on the embedded default.
func (a *App) RedisClient() redis.UniversalClient {
	if a.lasting.rdb == nil {
		return nil // not a typed nil in the interface
	}
	return a.lasting.rdb
}

// Ready checks each configured dependency; the map has one entry per
// dependency, with a nil error when it answered.
func (a *App) Ready(ctx context.Context) map[string]error {
	out := make(map[string]error, 2)
	if pg := a.lasting.pg; pg != nil {
		c, cancel := context.WithTimeout(ctx, time.Duration(a.Timeout))
		err := pg.Ping(c)
		cancel()
		if err != nil {
			err = errors.New("postgres unreachable")
		}
		out["postgres"] = err
	}
	if rdb := a.lasting.rdb; rdb != nil {
		c, cancel := context.WithTimeout(ctx, time.Duration(a.Timeout))
		err := rdb.Ping(c).Err()
		cancel()
		if err != nil {
			err = errors.New("redis unreachable")
		}
		out["redis"] = err
	}
	out["nats"] = a.lasting.eventsReadiness()
	return out
}

// OfConfig returns the config's one value of type T, made by make on first
// use and closed when the config is cleaned up (e.g. the edge's refusal
// auditor, shared by erp_jwt and erp_api_key). For state that must outlive
// the config use Keep.
func OfConfig[T io.Closer](a *App, make func() (T, error)) (T, error) {
	var zero T
	t := reflect.TypeFor[T]()
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.values[t]; ok {
		if tv, ok := v.(T); ok { // keyed by its type: always
			return tv, nil
		}
		return zero, errors.New("erp: config value of another type")
	}
	if a.closed {
		return zero, errors.New("erp: the config was unloaded")
	}
	v, err := make()
	if err != nil {
		return zero, err
	}
	if a.values == nil {
		a.values = map[reflect.Type]io.Closer{}
	}
	a.values[t] = v
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
