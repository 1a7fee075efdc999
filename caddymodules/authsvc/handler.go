// Package authsvc is the `erp_authsvc` Caddy handler: it serves the auth
// service (package github.com/erpgate/erpgate/authsvc) in-process.
package authsvc

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the auth service: `/api/v1/auth/*`, `/api/v1/admin/*`,
// `/.well-known/*`, and the API reference `/api/v1/openapi.json` and
// `/api/v1/docs`. It is terminal for those paths; for any other path it
// answers 404 (through the error route, so erp_envelope renders it).
//
// Every erp_authsvc handler of one config shares one auth service, with the
// Postgres pool, Redis client, key prefix and demo switch of the `erp` app.
// Settings may be given on one of them (the others left empty) or repeated
// identically; two different non-empty settings are a config error.
//
//	erp_authsvc {
//		issuer               <iss>
//		audience             <aud>
//		master_key           {env.ERP_MASTER_KEY}
//		access_ttl           <duration>
//		refresh_ttl          <duration>
//		refresh_idle_ttl     <duration>
//		key_rotation         <duration>
//		key_publish_delay    <duration>
//		key_reload           <duration>
//		introspection_secret {env.ERP_INTROSPECTION_SECRET}
//		password_hashing {
//			memory_kib  19456
//			iterations  2
//			parallelism 1
//			concurrency <n>
//			queue       <n>
//			queue_wait  2s
//		}
//	}
type Handler struct {
	// Issuer is the `iss` of every token. Default: `erpgate`.
	Issuer string `json:"issuer,omitempty"`
	// Audience is the `aud` of access tokens. Default: `erpgate-api`.
	Audience string `json:"audience,omitempty"`
	// MasterKey seals signing keys at rest: 32 bytes in standard base64,
	// given as a placeholder (`{env.ERP_MASTER_KEY}`), never literally.
	// Empty: an ephemeral key (with a warning). Default: empty.
	MasterKey string `json:"master_key,omitempty"`
	// AccessTTL is the lifetime of access tokens. Default: 15m.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`
	// RefreshTTL is the absolute lifetime of a session. Default: 168h.
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`
	// RefreshIdleTTL expires a refresh token unused this long. Default: 24h.
	RefreshIdleTTL caddy.Duration `json:"refresh_idle_ttl,omitempty"`
	// KeyRotation is how long a signing key signs before the next. Default: 720h.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`
	// KeyPublishDelay is how long a new key is published before it signs. Default: 10m.
	KeyPublishDelay caddy.Duration `json:"key_publish_delay,omitempty"`
	// KeyReload is how often the signing keys are re-read from the store, so
	// that a rotation by another instance or `gateway erp keys rotate` is
	// seen. Default: 30s.
	KeyReload caddy.Duration `json:"key_reload,omitempty"`
	// IntrospectionSecret is the credential the edge presents to
	// POST /api/v1/auth/introspect (a placeholder, e.g.
	// `{env.ERP_INTROSPECTION_SECRET}`). Empty: HTTP introspection answers
	// nobody (the in-process edge does not need it). Default: empty.
	IntrospectionSecret string `json:"introspection_secret,omitempty"`
	// PasswordHashing sets the argon2id parameters of new password hashes
	// and bounds concurrent hashing. Default: see PasswordHashing's fields.
	PasswordHashing *PasswordHashing `json:"password_hashing,omitempty"`

	shared *shared
	logger *zap.Logger
}

// PasswordHashing are the argon2id parameters of new password hashes and
// the bounds of password hashing (logins, password changes, user creation).
//
// Choose the parameters from a row of OWASP's Password Storage Cheat Sheet
// (m=47104 t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4, m=7168 t=5, all p=1):
// the rows are of equivalent strength; a smaller m holds less memory per
// running hash (README, "Login storms", has the measured trade-off). A
// stored hash made with other parameters is replaced, with the same
// password, at its user's next successful login.
//
// At most Concurrency hashes run at once; Queue more logins wait for a slot,
// each at most QueueWait. A login that finds the queue full or waits out
// QueueWait is answered 429 RATE_LIMITED with Retry-After.
//
//	erp_authsvc {
//		password_hashing {
//			memory_kib 12288
//			iterations 3
//		}
//	}
type PasswordHashing struct {
	// MemoryKiB is argon2id's m, in KiB (8 per lane to 262144). Default: 19456.
	MemoryKiB int `json:"memory_kib,omitempty"`
	// Iterations is argon2id's t (1 to 10). Default: 2.
	Iterations int `json:"iterations,omitempty"`
	// Parallelism is argon2id's p, its lanes (1 to 16). Default: 1.
	Parallelism int `json:"parallelism,omitempty"`
	// Concurrency is how many hashes run at once. Default (or 0): the
	// number of cores the process may use (GOMAXPROCS).
	Concurrency int `json:"concurrency,omitempty"`
	// Queue is how many logins may wait for a hashing slot. Default (or
	// 0): 16 per slot.
	Queue int `json:"queue,omitempty"`
	// QueueWait is how long a login waits for a slot; shorter than the
	// auth service's request timeout (5s). Default: 2s.
	QueueWait caddy.Duration `json:"queue_wait,omitempty"`
}

// params are the core settings (zero fields: the core's defaults).
func (p *PasswordHashing) params() (core.Argon2Params, core.HashLimits, error) {
	if p == nil {
		return core.Argon2Params{}, core.HashLimits{}, nil
	}
	if p.MemoryKiB < 0 || p.MemoryKiB > 1<<30 || p.Iterations < 0 || p.Iterations > 1<<20 || p.Parallelism < 0 || p.Parallelism > 255 ||
		p.Concurrency < 0 || p.Queue < 0 || p.QueueWait < 0 {
		return core.Argon2Params{}, core.HashLimits{}, errors.New("erp_authsvc: password_hashing: values must be positive and in range")
	}
	if time.Duration(p.QueueWait) >= core.DefaultTimeout {
		return core.Argon2Params{}, core.HashLimits{}, fmt.Errorf("erp_authsvc: password_hashing: queue_wait must be shorter than the request timeout (%s)", core.DefaultTimeout)
	}
	ap := core.Argon2Params{Memory: uint32(p.MemoryKiB), Time: uint32(p.Iterations), Threads: uint8(p.Parallelism)}
	if ap != (core.Argon2Params{}) {
		// Unset fields of a partly given set take the default's.
		def := core.DefaultArgon2Params
		if ap.Memory == 0 {
			ap.Memory = def.Memory
		}
		if ap.Time == 0 {
			ap.Time = def.Time
		}
		if ap.Threads == 0 {
			ap.Threads = def.Threads
		}
		if err := ap.Validate(); err != nil {
			return core.Argon2Params{}, core.HashLimits{}, fmt.Errorf("erp_authsvc: password_hashing: %w", err)
		}
	}
	return ap, core.HashLimits{Concurrency: p.Concurrency, Queue: p.Queue, QueueWait: time.Duration(p.QueueWait)}, nil
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_authsvc",
		New: func() caddy.Module { return new(Handler) },
	}
}

// settings are the handler's own fields, resolved (placeholders replaced).
type settings struct {
	Issuer, Audience, MasterKey, IntrospectionSecret string
	AccessTTL, RefreshTTL, RefreshIdleTTL            time.Duration
	KeyRotation, KeyPublishDelay, KeyReload          time.Duration
	Argon2                                           core.Argon2Params
	HashLimits                                       core.HashLimits
}

func (s settings) empty() bool { return reflect.ValueOf(s).IsZero() }

// shared is the one auth service of a config, made on first use from the
// settings the handlers registered.
type shared struct {
	app    *erpapp.App
	logger *zap.Logger

	mu   sync.Mutex
	set  *settings
	svc  *core.Service
	err  error
	made bool
}

const provideName = "authsvc"

// Provision registers the handler's settings with the config's shared
// service. It does no I/O.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	st := settings{
		Issuer: repl.ReplaceAll(h.Issuer, ""), Audience: repl.ReplaceAll(h.Audience, ""),
		MasterKey: repl.ReplaceAll(h.MasterKey, ""), IntrospectionSecret: repl.ReplaceAll(h.IntrospectionSecret, ""),
		AccessTTL: time.Duration(h.AccessTTL), RefreshTTL: time.Duration(h.RefreshTTL), RefreshIdleTTL: time.Duration(h.RefreshIdleTTL),
		KeyRotation: time.Duration(h.KeyRotation), KeyPublishDelay: time.Duration(h.KeyPublishDelay),
		KeyReload: time.Duration(h.KeyReload),
	}
	if st.Argon2, st.HashLimits, err = h.PasswordHashing.params(); err != nil {
		return err
	}
	if st.MasterKey != "" {
		if _, err := core.ParseMasterKey(st.MasterKey); err != nil {
			return fmt.Errorf("erp_authsvc: master_key: %w", err) // the error never contains the key
		}
	}
	v, err := app.Provide(provideName, func() (any, error) {
		return &shared{app: app, logger: app.Context().Logger()}, nil
	})
	if err != nil {
		return err
	}
	sh, ok := v.(*shared)
	if !ok {
		return errors.New("erp_authsvc: shared auth service has unexpected type")
	}
	if err := sh.register(st); err != nil {
		return err
	}
	h.shared = sh
	return nil
}

func (sh *shared) register(st settings) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st.empty() {
		return nil
	}
	if sh.made {
		return errors.New("erp_authsvc: settings registered after the service started")
	}
	if sh.set != nil && *sh.set != st {
		return errors.New("erp_authsvc: two erp_authsvc handlers have different settings; give them on one handler or repeat them identically")
	}
	sh.set = &st
	return nil
}

// service returns the shared service, making it on first call.
func (sh *shared) service() (*core.Service, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.made {
		return sh.svc, sh.err
	}
	sh.made = true
	st := settings{}
	if sh.set != nil {
		st = *sh.set
	}
	cfg := core.Config{
		Issuer: st.Issuer, Audience: st.Audience, IntrospectionSecret: st.IntrospectionSecret,
		AccessTTL: st.AccessTTL, RefreshTTL: st.RefreshTTL, RefreshIdleTTL: st.RefreshIdleTTL,
		KeyRotation: st.KeyRotation, KeyPublishDelay: st.KeyPublishDelay, KeyReload: st.KeyReload,
		KeyPrefix: sh.app.KeyPrefix, Demo: sh.app.Demo,
		PasswordHash: st.Argon2, HashLimits: st.HashLimits,
	}
	if st.MasterKey != "" {
		mk, err := core.ParseMasterKey(st.MasterKey)
		if err != nil {
			sh.err = err
			return nil, err
		}
		cfg.MasterKey = mk
	}
	sh.svc, sh.err = core.New(sh.app.Context(), cfg, core.Deps{
		Pool: sh.app.PostgresPool(), Redis: sh.app.RedisClient(), Logger: sh.logger,
		RefusalLog: sh.app.Refusals(),
	})
	return sh.svc, sh.err
}

// Close stops the service (called by the erp app at config cleanup).
func (sh *shared) Close() error {
	sh.mu.Lock()
	svc := sh.svc
	sh.mu.Unlock()
	if svc != nil {
		return svc.Close()
	}
	return nil
}

// Lookup returns the auth service of app's config, for the edge's providers
// (see package github.com/erpgate/erpgate/authsvc, "What the edge uses in
// process"). Call it at request time, not in Provision: handlers provision
// in config order. It fails when the config has no erp_authsvc handler.
func Lookup(app *erpapp.App) (*core.Service, error) {
	v, err := app.Provide(provideName, func() (any, error) {
		return nil, errors.New("erp: this config has no erp_authsvc handler")
	})
	if err != nil {
		return nil, err
	}
	sh, ok := v.(*shared)
	if !ok {
		return nil, errors.New("erp: shared auth service has unexpected type")
	}
	return sh.service()
}

// ServeHTTP serves the auth service's paths and is terminal for them.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !core.Routed(r.URL.Path) {
		return caddyhttp.Error(http.StatusNotFound, errors.New("not an auth service endpoint"))
	}
	svc, err := h.shared.service()
	if err != nil {
		h.logger.Error("auth service unavailable", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	svc.Handler(core.HTTPOptions{RequestID: requestID, ClientIP: clientIP}).ServeHTTP(w, r)
	return nil
}

// requestID is erp_envelope's id for the request when it set one, else the
// client's (valid) X-Request-ID, else a new one.
func requestID(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string); ok && v != "" {
		return v
	}
	return envelope.RequestID(r.Header.Get(contract.HeaderRequestID))
}

// clientIP is Caddy's client address (trusted proxies applied).
func clientIP(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && v != "" {
		return v
	}
	return core.RemoteIP(r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
