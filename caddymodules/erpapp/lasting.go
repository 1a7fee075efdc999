package erpapp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/celltable"
	"github.com/erpgate/erpgate/internal/deprecations"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/limit"
	"github.com/erpgate/erpgate/internal/rediscluster"
	"github.com/erpgate/erpgate/internal/revocation"
	"github.com/erpgate/erpgate/internal/secmon"
	"github.com/erpgate/erpgate/internal/tracing"
)

// What outlives a config reload.
//
// Caddy provisions a new config while the old one still serves, and cleans
// the old one up while its last requests may still be in flight. State that
// must survive this — connections, caches, counters, the embedded auth
// store — therefore lives in one place, lastingPool, under one rule:
//
//	an entry is made by the first config that asks for it, taken over by
//	every later config that asks with the same key (a reload asks before
//	the old config lets go), and destroyed when the last config holding it
//	is cleaned up.
//
// The base entry (a Lasting) is keyed by what defines it: the resolved
// Postgres URL, Redis address, key prefix and NATS URL. It holds the Postgres pool,
// the Redis client, the revocation set and its Redis listener, the
// embedded auth store (without Postgres), the event engine (an embedded
// nats-server or a connection to NATS), the master key made up when none
// is configured, the in-memory limiter state, the counts of calls to
// deprecated versions and the list of live configs that serve an auth
// service. Modules keep their own lasting values (the
// verified-token cache, the API-key cache, the demo's assertion verifier)
// in the same pool with Keep, keyed by their settings and this Lasting.
// The App records every entry it took and gives each back in Cleanup: no
// module has a pool or a Cleanup of its own for lasting state.
var lastingPool = caddy.NewUsagePool()

// RevocationTTL is how long a revocation is remembered at the edge: longer
// than any access token lives (15 minutes) plus leeway.
const RevocationTTL = 20 * time.Minute

// Lasting is the state shared by the configs with the same Postgres, Redis
// and key prefix, across reloads (see lastingPool). Its methods are safe
// for concurrent use.
type Lasting struct {
	key    string
	prefix string
	ctx    context.Context // ends when the entry is destroyed
	cancel context.CancelFunc

	pg  *pgxpool.Pool         // nil: embedded
	rdb redis.UniversalClient // nil: embedded

	revocations *revocation.Set
	listenOnce  sync.Once

	authStore store.Store // the embedded auth store; nil with Postgres

	keyOnce   sync.Once
	masterKey []byte // made up when no master key is configured
	keyErr    error

	memOnce sync.Once
	memory  *limit.Memory

	deprecations *deprecations.Counter // calls to deprecated versions (erp_version, erp_usage)

	mu    sync.Mutex
	hosts []*App // live configs with an erp_authsvc handler, oldest first

	instance    string // this process in events' source (/erpgate/<instance>)
	eventsOnce  sync.Once
	events      atomic.Pointer[events.Engine] // nil until started
	eventsReady chan struct{}                 // closed when events is set

	secOnce   sync.Once
	blocklist *secmon.Blocklist
	monOnce   sync.Once
	monRun    sync.Once
	monitor   *secmon.Monitor
	// riskMon is monitor once made, for the auth service's risk signals
	// (read from request goroutines).
	riskMon atomic.Pointer[secmon.Monitor]

	netOnce    sync.Once
	apiKeyNets *secmon.NetSeen

	cells celltable.Table // company cells, read by `dynamic erp` per request
	fleet fleetSync       // runtime changes shared with the other instances
}

// Destruct ends the background work and closes the clients.
func (l *Lasting) Destruct() error {
	l.cancel()
	if e := l.events.Load(); e != nil {
		e.Close()
	}
	if l.pg != nil {
		l.pg.Close()
	}
	if l.rdb != nil {
		return l.rdb.Close()
	}
	return nil
}

// lastingFor takes (or makes) the Lasting of the resolved settings; the
// clients are made without connecting.
func lastingFor(dsn, redisAddr, prefix, natsURL string) (*Lasting, error) {
	key := "lasting\x00" + dsn + "\x00" + redisAddr + "\x00" + prefix + "\x00" + natsURL
	v, _, err := lastingPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		l := &Lasting{key: key, prefix: prefix, revocations: revocation.NewSet(time.Now), deprecations: deprecations.New(),
			instance: fmt.Sprintf("%s-%d", hostnameOr("edge"), os.Getpid()), eventsReady: make(chan struct{})}
		if dsn != "" {
			cfg, err := pgxpool.ParseConfig(dsn)
			if err != nil {
				return nil, errors.New("erp: postgres: invalid connection URL") // never echo the DSN: it may hold a password
			}
			// The app's queries run as erpgate_app, under row-level security.
			store.ConfigurePool(cfg)
			// a span per query of a traced request
			cfg.ConnConfig.Tracer = tracing.PGX{}
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // lazy: connects on first use
			if err != nil {
				return nil, fmt.Errorf("erp: postgres: open pool: %w", err)
			}
			l.pg = pool
		} else {
			l.authStore = store.NewMemory()
		}
		if redisAddr != "" {
			// on a cluster, a failover is learnt at the first failure, not within 10 s
			rdb, err := rediscluster.Open(redisAddr)
			if err != nil {
				if l.pg != nil {
					l.pg.Close()
				}
				return nil, fmt.Errorf("erp: %w", err)
			}
			l.rdb = rdb
			l.rdb.AddHook(tracing.Redis{}) // a span per command of a traced request
			l.revocations.Unconfirm()      // not current until the listener's first resync
		}
		l.ctx, l.cancel = context.WithCancel(context.Background()) // lives as long as the entry
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	l, ok := v.(*Lasting)
	if !ok {
		return nil, errors.New("erp: lasting state of another type")
	}
	return l, nil
}

// Context ends when the Lasting is destroyed: background work of lasting
// values runs under it.
func (l *Lasting) Context() context.Context { return l.ctx }

// Revocations is the edge's revocation set, fed from Redis (every
// instance's revocations, once the app started) and from the auth services
// of this process.
func (l *Lasting) Revocations() *revocation.Set { return l.revocations }

// listen starts the Redis revocation listener once (from the app's Start:
// Provision does no network I/O).
func (l *Lasting) listen(logger *zap.Logger) {
	if l.rdb == nil {
		return
	}
	l.listenOnce.Do(func() {
		rl := &revocation.Listener{Redis: l.rdb, Prefix: l.prefix, Set: l.revocations, TTL: RevocationTTL, Logger: logger}
		go rl.Run(l.ctx)
	})
}

// QuotaMemory is the in-process limiter state (erp_quota's counters without
// Redis, and its local fallback), pruned in the background.
func (l *Lasting) QuotaMemory() *limit.Memory {
	l.memOnce.Do(func() {
		l.memory = limit.NewMemory()
		go l.memory.Run(l.ctx, limit.SystemClock{}, time.Minute)
	})
	return l.memory
}

// Deprecations counts each company's calls to deprecated backend versions:
// erp_version adds, erp_usage lists.
func (l *Lasting) Deprecations() *deprecations.Counter { return l.deprecations }

// ephemeralMasterKey is the master key of configs that give none: one per
// Lasting, so that keys sealed under it survive a reload.
func (l *Lasting) ephemeralMasterKey(logger *zap.Logger) ([]byte, error) {
	l.keyOnce.Do(func() {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			l.keyErr = fmt.Errorf("erp: authsvc: ephemeral master key: %w", err)
			return
		}
		l.masterKey = k
		logger.Warn("no master key configured (ERP_MASTER_KEY): signing keys are sealed under an ephemeral key and will not survive a restart")
	})
	return l.masterKey, l.keyErr
}

// errNoAuthService: no live config with this Lasting serves an auth service.
var errNoAuthService = errors.New("erp: no config has an erp_authsvc handler")

// AuthService is the in-process auth service the edge uses: that of the
// newest live config (sharing this Lasting) whose service is ready; while
// none is (a reload), the newest, whose callers wait for it (Ready). A
// config's service is used only while the config is live. Lasting values
// call it at use, never keep its answer.
func (l *Lasting) AuthService() (*core.Service, error) {
	l.mu.Lock()
	hosts := slices.Clone(l.hosts)
	l.mu.Unlock()
	err := errNoAuthService
	var newest *core.Service
	for i := len(hosts) - 1; i >= 0; i-- {
		if hosts[i].ctx.Err() != nil {
			continue // unloading: its service no longer decides (its preparation would fail)
		}
		svc, e := hosts[i].ServedAuthService()
		if e != nil {
			err = e
			continue
		}
		if svc.Prepared() {
			return svc, nil
		}
		if newest == nil {
			newest = svc
		}
	}
	if newest == nil {
		return nil, err
	}
	return newest, nil
}

func (l *Lasting) addHost(a *App) {
	l.mu.Lock()
	l.hosts = append(l.hosts, a)
	l.mu.Unlock()
}

func (l *Lasting) removeHost(a *App) {
	l.mu.Lock()
	if i := slices.Index(l.hosts, a); i >= 0 {
		l.hosts = slices.Delete(l.hosts, i, i+1)
	}
	l.mu.Unlock()
}

// Keep returns the lasting value of type T kept under key for a's config
// (see lastingPool): made by make on the first call of any config sharing
// a's Lasting, taken over by later configs with the same key, destroyed
// when the last config that took it is cleaned up. key holds the settings
// that define the value; values of different types never meet. Call it in
// Provision.
func Keep[T caddy.Destructor](a *App, key string, make func(l *Lasting) (T, error)) (T, error) {
	var zero T
	full := reflect.TypeFor[T]().String() + "\x00" + a.lasting.key + "\x00" + key
	v, _, err := lastingPool.LoadOrNew(full, func() (caddy.Destructor, error) { return make(a.lasting) })
	if err != nil {
		return zero, err
	}
	a.mu.Lock()
	a.kept = append(a.kept, full)
	a.mu.Unlock()
	t, ok := v.(T)
	if !ok { // the key names the type: cannot happen
		return zero, errors.New("erp: lasting value of another type")
	}
	return t, nil
}
