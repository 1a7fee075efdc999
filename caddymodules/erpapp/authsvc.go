package erpapp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	subdirectives["authsvc"] = parseAuthSvc
}

// AuthSvc are the settings of the auth service that erp_authsvc serves in
// process, in the erp app's `authsvc` block (JSON: the app's `authsvc`).
// Every erp_authsvc handler of a config serves the one service they define.
//
//	erp {
//		authsvc {
//			issuer               <iss>
//			audience             <aud>
//			master_key           {env.ERP_MASTER_KEY}
//			access_ttl           <duration>
//			refresh_ttl          <duration>
//			refresh_idle_ttl     <duration>
//			key_rotation         <duration>
//			key_publish_delay    <duration>
//			key_reload           <duration>
//			introspection_secret {env.ERP_INTROSPECTION_SECRET}
//			password_hashing {
//				memory_kib  19456
//				iterations  2
//				parallelism 1
//				concurrency <n>
//				queue       <n>
//				queue_wait  2s
//			}
//		}
//	}
//
// A string setting with no value (an unset `{$VAR}`) stays empty.
type AuthSvc struct {
	// Issuer is the `iss` of every token. Default: `erpgate`.
	Issuer string `json:"issuer,omitempty"`
	// Audience is the `aud` of access tokens. Default: `erpgate-api`.
	Audience string `json:"audience,omitempty"`
	// MasterKey seals signing keys at rest: 32 bytes in standard base64,
	// given as a placeholder (`{env.ERP_MASTER_KEY}`), never literally.
	// Empty: an ephemeral key, kept across config reloads but not restarts
	// (with a warning). Default: empty.
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
	// PublicURL is the edge's external base URL (scheme://host[:port]):
	// SSO redirect URIs, SAML endpoints, magic links and the passkeys'
	// relying party are built from it. Default: http://localhost:8080.
	PublicURL string `json:"public_url,omitempty"`
	// SMTPURL is the mail server of magic links and email codes
	// (`smtp://[user:password@]host:port`, a placeholder such as
	// `{env.ERP_SMTP_URL}`). Empty: mail is off.
	SMTPURL string `json:"smtp_url,omitempty"`
	// SMTPFrom is the sender address (`{env.ERP_SMTP_FROM}`).
	SMTPFrom string `json:"smtp_from,omitempty"`
	// SMSURL is the SMS provider's endpoint (a Twilio-style form POST,
	// credentials in its userinfo; `{env.ERP_SMS_URL}`). Empty: SMS is off.
	SMSURL string `json:"sms_url,omitempty"`
	// SSOAllowPrivate ("1", "true" or "on", e.g. from
	// `{env.ERP_SSO_ALLOW_PRIVATE}`) lets SSO requests reach loopback and
	// private addresses: for tests and the demo only.
	SSOAllowPrivate string `json:"sso_allow_private,omitempty"`
	// RiskStepUp and RiskDeny are the risk-score thresholds (1 to 100) of a
	// forced second factor and of a refused login; -1: never. Default: 60, 90.
	RiskStepUp int `json:"risk_step_up,omitempty"`
	RiskDeny   int `json:"risk_deny,omitempty"`
	// TrustedDeviceTTL is how long a trusted device skips the second
	// factor. Default: 720h.
	TrustedDeviceTTL caddy.Duration `json:"trusted_device_ttl,omitempty"`
	// Retention schedules the retention job. Default: on, every hour,
	// audit records kept for ever.
	Retention *Retention `json:"retention,omitempty"`
}

// Retention is the schedule of the auth service's retention job: ended
// sessions, refresh tokens and trusted devices are deleted Grace after
// they ended, and audit records older than Audit are removed behind a
// signed checkpoint per chain (`gateway erp audit verify` then needs
// ERP_MASTER_KEY). Instances may run it at once.
//
//	erp {
//		authsvc {
//			retention {
//				interval 1h
//				grace    24h
//				audit    400d
//				batch    1000
//			}
//		}
//	}
//
// `retention off` turns the job off.
type Retention struct {
	// Off turns the job off.
	Off bool `json:"off,omitempty"`
	// Interval between runs. Default: 1h.
	Interval caddy.Duration `json:"interval,omitempty"`
	// Grace keeps ended sessions and devices this long (at least the
	// access-token lifetime). Default: 24h.
	Grace caddy.Duration `json:"grace,omitempty"`
	// Audit is how long audit records are kept. Default: 0 (for ever).
	Audit caddy.Duration `json:"audit,omitempty"`
	// Batch is the most rows of one kind deleted per statement. Default: 1000.
	Batch int `json:"batch,omitempty"`
}

func (r *Retention) core() core.Retention {
	if r == nil {
		return core.Retention{}
	}
	return core.Retention{Off: r.Off, Interval: time.Duration(r.Interval), Grace: time.Duration(r.Grace), Audit: time.Duration(r.Audit), Batch: r.Batch}
}

// unmarshalCaddyfile fills the retention block.
func (r *Retention) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		if name == "batch" {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > 100000 {
				return d.Errf("retention: batch: want 1 to 100000")
			}
			r.Batch = n
			return nil
		}
		dst, ok := map[string]*caddy.Duration{"interval": &r.Interval, "grace": &r.Grace, "audit": &r.Audit}[name]
		if !ok {
			return d.Errf("retention: unknown subdirective %q", name)
		}
		v, err := caddy.ParseDuration(args[0])
		if err != nil || v < 0 || (v == 0 && name != "audit") {
			return d.Errf("retention: %s: a positive duration is required (audit: 0 keeps records for ever)", name)
		}
		*dst = caddy.Duration(v)
		return nil
	})
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
//	erp {
//		authsvc {
//			password_hashing {
//				memory_kib 12288
//				iterations 3
//			}
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
		return core.Argon2Params{}, core.HashLimits{}, errors.New("erp: authsvc: password_hashing: values must be positive and in range")
	}
	if time.Duration(p.QueueWait) >= core.DefaultTimeout {
		return core.Argon2Params{}, core.HashLimits{}, fmt.Errorf("erp: authsvc: password_hashing: queue_wait must be shorter than the request timeout (%s)", core.DefaultTimeout)
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
			return core.Argon2Params{}, core.HashLimits{}, fmt.Errorf("erp: authsvc: password_hashing: %w", err)
		}
	}
	return ap, core.HashLimits{Concurrency: p.Concurrency, Queue: p.Queue, QueueWait: time.Duration(p.QueueWait)}, nil
}

// coreConfig resolves the settings (placeholders replaced) into the core's
// configuration; the master key is checked, never echoed.
func (s *AuthSvc) coreConfig(a *App) (core.Config, error) {
	if s == nil {
		s = &AuthSvc{}
	}
	repl := caddy.NewReplacer()
	cfg := core.Config{
		Issuer: repl.ReplaceAll(s.Issuer, ""), Audience: repl.ReplaceAll(s.Audience, ""),
		IntrospectionSecret: repl.ReplaceAll(s.IntrospectionSecret, ""),
		AccessTTL:           time.Duration(s.AccessTTL), RefreshTTL: time.Duration(s.RefreshTTL), RefreshIdleTTL: time.Duration(s.RefreshIdleTTL),
		KeyRotation: time.Duration(s.KeyRotation), KeyPublishDelay: time.Duration(s.KeyPublishDelay), KeyReload: time.Duration(s.KeyReload),
		KeyPrefix: a.KeyPrefix, Demo: a.Demo,
		PublicURL: repl.ReplaceAll(s.PublicURL, ""), SMTPURL: repl.ReplaceAll(s.SMTPURL, ""), SMTPFrom: repl.ReplaceAll(s.SMTPFrom, ""),
		SMSURL: repl.ReplaceAll(s.SMSURL, ""), RiskStepUp: s.RiskStepUp, RiskDeny: s.RiskDeny, TrustedDeviceTTL: time.Duration(s.TrustedDeviceTTL),
		Retention: s.Retention.core(),
	}
	switch v := strings.ToLower(strings.TrimSpace(repl.ReplaceAll(s.SSOAllowPrivate, ""))); v {
	case "", "0", "false", "off":
	case "1", "true", "on":
		cfg.SSOAllowPrivate = true
	default:
		return core.Config{}, fmt.Errorf("erp: authsvc: sso_allow_private: %q is not a boolean", v)
	}
	if pu := cfg.PublicURL; pu != "" {
		u, err := url.Parse(pu)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return core.Config{}, fmt.Errorf("erp: authsvc: public_url %q: want scheme://host[:port]", pu)
		}
	}
	var err error
	if cfg.PasswordHash, cfg.HashLimits, err = s.PasswordHashing.params(); err != nil {
		return core.Config{}, err
	}
	if mk := repl.ReplaceAll(s.MasterKey, ""); mk != "" {
		if cfg.MasterKey, err = core.ParseMasterKey(mk); err != nil {
			return core.Config{}, fmt.Errorf("erp: authsvc: master_key: %w", err) // the error never contains the key
		}
	}
	return cfg, nil
}

// HostAuthService is called by erp_authsvc's Provision: this config serves
// the auth service in process. The service is made at first use.
func (a *App) HostAuthService() {
	a.mu.Lock()
	hosting := a.hosting
	a.hosting = true
	a.mu.Unlock()
	if !hosting {
		a.lasting.addHost(a)
	}
}

// ServedAuthService is this config's auth service (what its erp_authsvc
// handlers serve), made on first call from the `authsvc` settings. It fails
// when the config has no erp_authsvc handler or is unloaded. The edge's
// modules use AuthService instead.
func (a *App) ServedAuthService() (*core.Service, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.hosting {
		return nil, errNoAuthService
	}
	if a.svc != nil || a.svcErr != nil {
		return a.svc, a.svcErr
	}
	if a.closed {
		return nil, errors.New("erp: the config was unloaded")
	}
	cfg := a.authCfg
	deps := core.Deps{Pool: a.lasting.pg, Redis: a.lasting.rdb, Logger: a.logger, RefusalLog: a.refusals, Events: a.lasting.eventPublisher,
		RiskSignals: a.lasting.riskSignals, Cells: appCells{a}}
	if a.lasting.authStore != nil {
		deps.Store = a.lasting.authStore // embedded: sessions and keys outlive the config
	}
	if len(cfg.MasterKey) == 0 {
		mk, err := a.lasting.ephemeralMasterKey(a.logger)
		if err != nil {
			a.svcErr = err
			return nil, err
		}
		cfg.MasterKey = mk
	}
	svc, err := core.New(a.ctx, cfg, deps)
	if err != nil {
		a.svcErr = err
		return nil, err
	}
	revs := a.lasting.revocations
	// Without Redis the only source of the edge's revocations; with it,
	// this process's revocations take effect here at once, Redis up or not.
	if err := svc.SubscribeRevocations(a.ctx, func(id string) { revs.Add(id, time.Now().Add(RevocationTTL)) }); err != nil {
		a.logger.Warn("subscribing to revocations failed", zap.Error(err))
	}
	a.svc = svc
	return svc, nil
}

// AuthService is the in-process auth service the edge's modules use: the
// newest ready one among the live configs sharing this config's Lasting
// (usually this config's own; during a reload possibly the next config's).
// Call it at request time, not in Provision: handlers provision in config
// order. It fails when no such config has an erp_authsvc handler (or a is
// nil: a module tested without an app).
func (a *App) AuthService() (*core.Service, error) {
	if a == nil || a.lasting == nil {
		return nil, errNoAuthService
	}
	return a.lasting.AuthService()
}

// AuthServiceAfter is the service to retry with after svc (an answer of
// AuthService) failed for a request whose ctx is not done: the service
// AuthService answers now when it is another one, else nil (svc's failure
// stands).
//
// Why: a config's service prepares itself (migrations, signing keys) under
// that config's context. During a reload the edge may choose the newest
// config's service while it is still preparing; when the next reload unloads
// that config, its context ends and every request waiting for it fails
// with "context canceled" although a newer config serves. A request must
// not fail for a reload alone: it retries once on the newer service,
// still bounded by its own ctx.
func (a *App) AuthServiceAfter(ctx context.Context, svc *core.Service) *core.Service {
	if ctx.Err() != nil {
		return nil
	}
	next, err := a.AuthService()
	if err != nil || next == svc {
		return nil
	}
	return next
}

// parseAuthSvc parses the `authsvc { … }` block of the erp app.
func parseAuthSvc(a *App, d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	s := new(AuthSvc)
	err := caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
		args := d.RemainingArgs()
		str := map[string]*string{"issuer": &s.Issuer, "audience": &s.Audience, "master_key": &s.MasterKey, "introspection_secret": &s.IntrospectionSecret,
			"public_url": &s.PublicURL, "smtp_url": &s.SMTPURL, "smtp_from": &s.SMTPFrom, "sms_url": &s.SMSURL, "sso_allow_private": &s.SSOAllowPrivate}
		dur := map[string]*caddy.Duration{"access_ttl": &s.AccessTTL, "refresh_ttl": &s.RefreshTTL, "refresh_idle_ttl": &s.RefreshIdleTTL,
			"key_rotation": &s.KeyRotation, "key_publish_delay": &s.KeyPublishDelay, "key_reload": &s.KeyReload, "trusted_device_ttl": &s.TrustedDeviceTTL}
		if p, ok := str[name]; ok {
			if len(args) > 1 {
				return d.ArgErr()
			}
			if len(args) == 1 {
				*p = args[0]
			}
			return nil
		}
		if p, ok := dur[name]; ok {
			if len(args) != 1 {
				return d.ArgErr()
			}
			v, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("authsvc: %s: %v", name, err)
			}
			if v <= 0 {
				return d.Errf("authsvc: %s: must be positive", name)
			}
			*p = caddy.Duration(v)
			return nil
		}
		if name == "risk" {
			// risk off | risk { step_up N; deny N }
			if len(args) == 1 && args[0] == "off" {
				s.RiskStepUp, s.RiskDeny = -1, -1
				return nil
			}
			if len(args) != 0 {
				return d.ArgErr()
			}
			return caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
				var p *int
				switch name {
				case "step_up":
					p = &s.RiskStepUp
				case "deny":
					p = &s.RiskDeny
				default:
					return d.Errf("authsvc: risk: unknown subdirective %q", name)
				}
				if !d.NextArg() {
					return d.ArgErr()
				}
				v, err := strconv.Atoi(d.Val())
				if err != nil || v == 0 || v < -1 || v > 100 {
					return d.Errf("authsvc: risk: %s: want 1 to 100, or -1 for never", name)
				}
				*p = v
				if d.NextArg() {
					return d.ArgErr()
				}
				return nil
			})
		}
		if name == "retention" {
			// retention off | retention { interval D; grace D; audit D; batch N }
			if s.Retention != nil {
				return d.Errf("authsvc: retention given twice")
			}
			s.Retention = new(Retention)
			if len(args) == 1 && args[0] == "off" {
				s.Retention.Off = true
				return nil
			}
			if len(args) != 0 {
				return d.ArgErr()
			}
			return s.Retention.unmarshalCaddyfile(d)
		}
		if name == "password_hashing" {
			if len(args) != 0 {
				return d.ArgErr()
			}
			s.PasswordHashing = new(PasswordHashing)
			return s.PasswordHashing.unmarshalCaddyfile(d)
		}
		return d.Errf("authsvc: unknown subdirective %q", name)
	})
	if err != nil {
		return err
	}
	a.AuthSvc = s
	return nil
}

// unmarshalCaddyfile fills the password_hashing block: a number 0 (what an
// unset `{$VAR:0}` gives) is the default.
func (p *PasswordHashing) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		if name == "queue_wait" {
			v, err := caddy.ParseDuration(args[0])
			if err != nil || v <= 0 {
				return d.Errf("queue_wait: a positive duration is required")
			}
			p.QueueWait = caddy.Duration(v)
			return nil
		}
		num := map[string]*int{"memory_kib": &p.MemoryKiB, "iterations": &p.Iterations, "parallelism": &p.Parallelism,
			"concurrency": &p.Concurrency, "queue": &p.Queue}
		dst, ok := num[name]
		if !ok {
			return d.Errf("password_hashing: unknown subdirective %q", name)
		}
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 0 {
			return d.Errf("%s: a number, 0 or more, is required (0: the default)", name)
		}
		*dst = v
		return nil
	})
}

// hosts reports whether this config serves the auth service.
func (a *App) hosts() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hosting
}
