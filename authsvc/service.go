package authsvc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/refusallog"
)

// Config is the auth service's configuration. Zero values take the defaults
// named on each field.
type Config struct {
	// Issuer is the `iss` of every token. Default: "erpgate".
	Issuer string
	// Audience is the `aud` of access tokens. Default: "erpgate-api".
	Audience string
	// MasterKey seals signing keys at rest (32 bytes). Empty: an ephemeral
	// key is made and a warning logged; keys sealed under it don't survive a restart.
	MasterKey []byte
	// AccessTTL is the lifetime of access tokens. Default: 15m.
	AccessTTL time.Duration
	// RefreshTTL is the absolute lifetime of a session (a refresh-token family). Default: 168h.
	RefreshTTL time.Duration
	// RefreshIdleTTL: a refresh token unused this long expires. Default: 24h.
	RefreshIdleTTL time.Duration
	// KeyRotation is how long a signing key signs before the next one takes over. Default: 720h.
	KeyRotation time.Duration
	// KeyPublishDelay is how long a new key is published before it signs
	// (longer than any verifier caches the JWKS). Default: 10m.
	KeyPublishDelay time.Duration
	// KeyReload is how often the keys are re-read from the store, so that
	// instances see each other's rotations. Default: 30s.
	KeyReload time.Duration
	// IntrospectionSecret authenticates callers of POST /introspect (the
	// edge). Empty: introspection over HTTP answers nobody.
	IntrospectionSecret string
	// KeyPrefix goes before every Redis key. Default: "erpgate:".
	KeyPrefix string
	// Demo seeds the demo companies and users.
	Demo bool
	// LoginAccountLimit is the number of login attempts per account per
	// LoginWindow. Default: 10.
	LoginAccountLimit int64
	// LoginIPLimit is the number of failed login attempts per client address
	// per LoginWindow. Default: 100.
	LoginIPLimit int64
	// LoginWindow. Default: 15m.
	LoginWindow time.Duration
	// TOTPAttemptLimit is the number of second-factor codes (TOTP or
	// recovery) a user may try per TOTPWindow, across every session and
	// address; successes are given back. Default: 5.
	TOTPAttemptLimit int64
	// TOTPWindow. Default: 15m.
	TOTPWindow time.Duration
	// Timeout bounds the store and Redis work of one request. Default: 5s.
	// An audit record gets its own Timeout, from when it is written: a
	// request whose earlier steps were slow still records what it did.
	Timeout time.Duration
	// PasswordHash are the argon2id parameters of new password hashes
	// (see Argon2Params for the choice). A stored hash made with other
	// parameters is replaced at its user's next successful login.
	// Default: DefaultArgon2Params (m=19456 t=2 p=1).
	PasswordHash Argon2Params
	// HashLimits bound concurrent password hashing and the queue in front
	// of it; a login that finds no slot in time answers 429 RATE_LIMITED
	// with Retry-After. QueueWait must be shorter than Timeout. Defaults:
	// see HashLimits (GOMAXPROCS slots, 16 waiting per slot, 2s wait).
	HashLimits HashLimits

	// PublicURL is the edge's external base URL (scheme://host[:port], no
	// path): SSO redirect URIs, the SAML entity id and ACS, magic links and
	// the WebAuthn relying party (its host is the RP id, it is the origin)
	// are built from it, never from a request's Host. Default:
	// "http://localhost:8080".
	PublicURL string
	// SMTPURL is the mail server of magic links and email codes:
	// smtp://[user:password@]host:port (or smtps://). Empty: mail is off
	// (those endpoints answer 503). ERP_SMTP_URL in the example.
	SMTPURL string
	// SMTPFrom is the sender address. Default: "erpgate <no-reply@localhost>".
	SMTPFrom string
	// SMSURL is the SMS provider's endpoint, taking a Twilio-style form
	// POST (To, From, Body); credentials in its userinfo (sent as HTTP
	// basic auth, never logged), the From number in its `from` query
	// parameter (both taken off before posting). Empty: SMS is off.
	// ERP_SMS_URL.
	SMSURL string
	// SSOAllowPrivate lets SSO discovery, token and metadata requests reach
	// loopback, private and link-local addresses (tests, the demo).
	SSOAllowPrivate bool
	// RiskStepUp and RiskDeny are risk-score thresholds (0 to 100): at
	// RiskStepUp a login must pass a second factor even on a trusted
	// device; at RiskDeny it is refused. 0: the default (60 and 90);
	// negative: never.
	RiskStepUp int
	RiskDeny   int
	// TrustedDeviceTTL is how long a device trusted after a second factor
	// skips it. Default: 720h (30 days).
	TrustedDeviceTTL time.Duration
	// Retention is the schedule of the retention job (retention.go).
	Retention Retention
}

// Defaults of Config.
const (
	DefaultIssuer          = "erpgate"
	DefaultAudience        = "erpgate-api"
	DefaultAccessTTL       = 15 * time.Minute
	DefaultRefreshTTL      = 7 * 24 * time.Hour
	DefaultRefreshIdleTTL  = 24 * time.Hour
	DefaultKeyRotation     = 30 * 24 * time.Hour
	DefaultKeyPublishDelay = 10 * time.Minute
	DefaultKeyReload       = 30 * time.Second
	LoginTokenTTL          = 5 * time.Minute
	DefaultTimeout         = 5 * time.Second
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	def(&c.AccessTTL, DefaultAccessTTL)
	def(&c.RefreshTTL, DefaultRefreshTTL)
	def(&c.RefreshIdleTTL, DefaultRefreshIdleTTL)
	def(&c.KeyRotation, DefaultKeyRotation)
	def(&c.KeyPublishDelay, DefaultKeyPublishDelay)
	def(&c.KeyReload, DefaultKeyReload)
	def(&c.LoginWindow, 15*time.Minute)
	def(&c.TOTPWindow, 15*time.Minute)
	if c.TOTPAttemptLimit <= 0 {
		c.TOTPAttemptLimit = 5
	}
	def(&c.Timeout, DefaultTimeout)
	if c.KeyPrefix == "" {
		c.KeyPrefix = "erpgate:"
	}
	if c.LoginAccountLimit <= 0 {
		c.LoginAccountLimit = 10
	}
	if c.LoginIPLimit <= 0 {
		c.LoginIPLimit = 100
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost:8080"
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.SMTPFrom == "" {
		c.SMTPFrom = "erpgate <no-reply@localhost>"
	}
	if c.RiskStepUp == 0 {
		c.RiskStepUp = 60
	}
	if c.RiskDeny == 0 {
		c.RiskDeny = 90
	}
	def(&c.TrustedDeviceTTL, 30*24*time.Hour)
	c.Retention.setDefaults(c.AccessTTL)
}

// SecondFactor is the login flow's hook for a second factor: when Required
// answers true, login answers `mfa_required` with a login token that
// select-company refuses until POST /mfa/verify accepts a code. The default
// is the service's own TOTP (a confirmed enrolment).
type SecondFactor interface {
	Required(ctx context.Context, user store.User) (bool, error)
}

// Deps are what the service runs on. Only Logger is required.
type Deps struct {
	// Pool: Postgres. Nil: in-memory store (unless Store is set).
	Pool *pgxpool.Pool
	// Store overrides the store made from Pool (tests).
	Store store.Store
	// Redis holds attempt counters and revocations. Nil: in process.
	Redis  redis.UniversalClient
	Logger *zap.Logger
	// Clock: default the system clock.
	Clock Clock
	// Hasher: default argon2id with Config.PasswordHash under Config.HashLimits.
	Hasher PasswordHasher
	// SecondFactor: default TOTP (totpFactor).
	SecondFactor SecondFactor
	// RefusalLog samples the log lines of refusals (failed and throttled
	// logins and second factors, refused refreshes and introspections).
	// Default: one of the service's own, with refusallog's defaults.
	RefusalLog *refusallog.Log
	// Events is the event engine the audit records are published to as
	// auth and admin events (events.go), or nil while it has not started
	// (the records wait in the store's events outbox). Nil Events: this
	// service publishes nothing; on Postgres the records wait for another
	// instance's relay.
	Events func() EventPublisher
	// RiskSignals, when set, adds what the security monitor knows to a
	// login's risk (risk.go): a score (0 to 100) and the signals' names
	// for the client address and the user (an address that tripped a
	// rule, a blocked network). Nil: no such signal.
	RiskSignals func(ctx context.Context, ip, userID string) (score int, signals []string)
	// Cells, when set, knows the cell names the edge's backends define and
	// hears of every company cell change made here (cells.go). Nil: any
	// well-formed name is accepted and nobody is told.
	Cells CellHooks
}

// Service is the auth service. It is safe for concurrent use; one instance
// is shared by every handler of a config.
type Service struct {
	cfg      Config
	cells    CellHooks // nil: no edge to ask or tell
	pool     *pgxpool.Pool
	store    store.Store
	logger   *zap.Logger
	refusals refusallog.Logger // sampled refusal lines
	ownLog   *refusallog.Log   // the refusal log when Deps had none: closed with the service
	clock    Clock
	hasher   PasswordHasher
	mfa      SecondFactor
	counters counters
	pub      revocationPublisher // nil without Redis
	local    localRevocations
	// relayKick wakes the relay (a revocation was recorded).
	relayKick chan struct{}
	events    func() EventPublisher // nil: no event relay
	keys      *keyManager           // access and login tokens
	edgeKeys  *keyManager           // the edge's assertions
	jwks      atomic.Pointer[publishedKeys]
	jwksMu    sync.Mutex // one publisher at a time: the newest rings win
	sealer    *Sealer
	auditKey  store.AuditKey // signs retention checkpoints and erasure attestations
	uses      *useRecorder

	apiKeySecrets secretOps // nil: constantTime (tests count the work)

	// The identity features' own state (sso.go, webauthn.go,
	// messaging.go, devices.go), made by their init… in New.
	sso      ssoState
	webauthn webauthnState
	msg      messagingState
	dev      deviceState

	dummyOnce sync.Once
	dummyHash string

	ctx    context.Context // lifetime of the service
	cancel context.CancelFunc
	wg     sync.WaitGroup

	initMu   sync.Mutex
	initDone chan struct{}
	initErr  error
	ready    atomic.Bool
}

// New makes a service. It does no I/O: the store is migrated, the keys
// loaded and the demo seeded on first use (Ready). ctx bounds the service's
// background work (key rotation, flushing API key use counts); Close ends it too.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	cfg.setDefaults()
	if deps.Logger == nil {
		return nil, errors.New("authsvc: a logger is required")
	}
	if cfg.AccessTTL > time.Hour || cfg.RefreshIdleTTL > cfg.RefreshTTL {
		return nil, errors.New("authsvc: access_ttl must be at most 1h and refresh_idle_ttl at most refresh_ttl")
	}
	if cfg.KeyRotation <= cfg.AccessTTL {
		return nil, errors.New("authsvc: key rotation must be longer than access_ttl")
	}
	s := &Service{cfg: cfg, pool: deps.Pool, store: deps.Store, logger: deps.Logger, clock: deps.Clock, hasher: deps.Hasher, mfa: deps.SecondFactor,
		events: deps.Events, cells: deps.Cells}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.store == nil {
		if s.pool != nil {
			pg := store.NewPostgres(s.pool)
			pg.SetPlatformObserver(s.logPlatform)
			s.store = pg
		} else {
			s.store = store.NewMemory()
		}
	}
	if s.hasher == nil {
		h, err := NewArgon2id(cfg.PasswordHash, cfg.HashLimits)
		if err != nil {
			return nil, fmt.Errorf("authsvc: password hash: %w", err)
		}
		if h.Limits().QueueWait >= cfg.Timeout {
			return nil, errors.New("authsvc: the password hashing queue wait must be shorter than the request timeout")
		}
		if h.Params.BelowOWASP() {
			s.logger.Warn("password hash parameters are below OWASP's recommendations: use them for tests only", zap.Stringer("argon2id", h.Params))
		}
		s.hasher = h
		s.cfg.PasswordHash, s.cfg.HashLimits = h.Params, h.Limits()
	}
	if deps.Redis != nil {
		s.counters = &redisCounters{rdb: deps.Redis, prefix: cfg.KeyPrefix}
		s.pub = &redisRevocations{rdb: deps.Redis, prefix: cfg.KeyPrefix}
	} else {
		s.counters = newMemCounters(s.clock)
	}
	s.relayKick = make(chan struct{}, 1)
	master := cfg.MasterKey
	if len(master) == 0 {
		master = make([]byte, 32)
		if _, err := rand.Read(master); err != nil {
			return nil, fmt.Errorf("authsvc: ephemeral master key: %w", err)
		}
		s.logger.Warn("no master key configured (ERP_MASTER_KEY): signing keys are sealed under an ephemeral key and will not survive a restart")
	}
	sealer, err := NewSealer(master)
	if err != nil {
		return nil, fmt.Errorf("authsvc: %w", err)
	}
	if s.mfa == nil {
		s.mfa = totpFactor{s}
	}
	s.sealer = sealer
	if s.auditKey, err = store.NewAuditKey(master); err != nil {
		return nil, fmt.Errorf("authsvc: %w", err)
	}
	s.keys = &keyManager{store: s.store, purpose: store.KeyAccess, sealer: sealer, logger: s.logger, rotation: cfg.KeyRotation,
		publishDelay: cfg.KeyPublishDelay, lifetime: cfg.AccessTTL, reload: cfg.KeyReload}
	s.edgeKeys = &keyManager{store: s.store, purpose: store.KeyAssertion, sealer: sealer, logger: s.logger, rotation: cfg.KeyRotation,
		publishDelay: cfg.KeyPublishDelay, lifetime: MaxAssertionTTL, reload: cfg.KeyReload}
	s.uses = &useRecorder{pending: map[string]*store.APIKeyUse{}}
	s.ctx, s.cancel = context.WithCancel(ctx)
	rl := deps.RefusalLog
	if rl == nil {
		s.ownLog = refusallog.New(s.ctx, refusallog.Options{Now: s.clock.Now})
		rl = s.ownLog
	}
	s.refusals = rl.For(s.logger)
	s.dev.signals = deps.RiskSignals
	for _, f := range []func() error{s.initSSO, s.initWebAuthn, s.initMessaging, s.initDevices} {
		if err := f(); err != nil {
			s.cancel()
			return nil, fmt.Errorf("authsvc: %w", err)
		}
	}
	return s, nil
}

// Config is the effective configuration (defaults applied). MasterKey and
// IntrospectionSecret are cleared.
func (s *Service) Config() Config {
	c := s.cfg
	c.MasterKey, c.IntrospectionSecret = nil, ""
	return c
}

// Store is the service's store.
func (s *Service) Store() store.Store { return s.store }

// Ready prepares the service on first call (migrations, keys, demo seed) and
// waits for it with ctx. A failed preparation is retried by the next call.
func (s *Service) Ready(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	select {
	case <-s.prepare():
		if s.ready.Load() {
			return nil
		}
		s.initMu.Lock()
		err := s.initErr
		s.initMu.Unlock()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Prepared reports, without waiting, whether the service is ready; when it
// is not, it starts the preparation Ready waits for (unless it is running).
func (s *Service) Prepared() bool {
	if s.ready.Load() {
		return true
	}
	s.prepare()
	return false
}

// prepare starts the preparation if it is not running and returns the
// channel closed when it ends.
func (s *Service) prepare() <-chan struct{} {
	s.initMu.Lock()
	defer s.initMu.Unlock()
	if s.initDone == nil {
		done := make(chan struct{})
		s.initDone = done
		go func() {
			err := s.initialize(s.ctx)
			s.initMu.Lock()
			s.initErr = err
			if err == nil {
				s.ready.Store(true)
			} else {
				s.initDone = nil // the next caller tries again
			}
			s.initMu.Unlock()
			close(done)
		}()
	}
	return s.initDone
}

// logPlatform logs a platform transaction (every company's rows): the
// background jobs' at debug level, the others' (admin listings) at info.
func (s *Service) logPlatform(_ context.Context, reason string) {
	if strings.HasPrefix(reason, "background:") {
		s.logger.Debug("platform database access", zap.String("reason", reason))
		return
	}
	s.logger.Info("platform database access", zap.String("reason", reason))
}

func (s *Service) initialize(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if s.pool != nil {
		applied, err := store.Migrate(ctx, s.pool)
		if err != nil {
			s.logger.Error("auth service: migration failed", zap.Error(err))
			return fmt.Errorf("authsvc: migrate: %w", err)
		}
		if len(applied) > 0 {
			s.logger.Info("auth service: migrations applied", zap.Ints("versions", applied))
		}
	}
	if err := s.syncKeys(ctx, s.clock.Now()); err != nil {
		s.logger.Error("auth service: loading signing keys failed", zap.Error(err))
		return fmt.Errorf("authsvc: signing keys: %w", err)
	}
	s.dummy() // now, so that the first unknown-user login costs what every other login costs
	if s.cfg.Demo {
		if err := s.seedDemo(ctx); err != nil {
			s.logger.Error("auth service: demo seed failed", zap.Error(err))
			return fmt.Errorf("authsvc: demo seed: %w", err)
		}
	}
	s.wg.Add(2)
	go s.background()
	go s.relay()
	if s.events != nil {
		s.wg.Add(1)
		go s.eventRelay()
	}
	if !s.cfg.Retention.Off {
		s.wg.Add(1)
		go s.retentionLoop()
	}
	return nil
}

// background re-reads and rotates the signing keys and flushes API key use
// counts until the service ends.
func (s *Service) background() {
	defer s.wg.Done()
	keyTick := time.NewTicker(s.cfg.KeyReload)
	useTick := time.NewTicker(time.Second)
	defer keyTick.Stop()
	defer useTick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Second)
			s.flushUses(ctx)
			cancel()
			return
		case <-keyTick.C:
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
			if err := s.syncKeys(ctx, s.clock.Now()); err != nil && s.ctx.Err() == nil {
				s.logger.Warn("auth service: signing key sync failed", zap.Error(err))
			}
			cancel()
		case <-useTick.C:
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
			s.flushUses(ctx)
			cancel()
		}
	}
}

// Close stops the background work (flushing pending use counts first).
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return s.ownLog.Close()
}

// Issuer is the `iss` of the service's tokens.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// Audience is the `aud` of the service's access tokens.
func (s *Service) Audience() string { return s.cfg.Audience }

// AccessTTL is the lifetime of access tokens (and of revocation marks).
func (s *Service) AccessTTL() time.Duration { return s.cfg.AccessTTL }

// PublicKeys is the current JWK set (the body of /.well-known/jwks.json):
// every published Ed25519 key with kid, alg "EdDSA" and use "sig", the
// access-token keys and the assertion keys (kid "edge-…"; a verifier of
// access tokens must skip them). It is a copy: re-read it (e.g. when a token
// names an unknown kid, rate-limited) to see rotations.
func (s *Service) PublicKeys(ctx context.Context) (jwk.Set, error) {
	if err := s.Ready(ctx); err != nil {
		return nil, err
	}
	return s.jwks.Load().set.Clone()
}

// RotateSigningKey publishes a new access-token signing key that signs from
// now+activateIn (use at least the verifiers' JWKS cache time).
func (s *Service) RotateSigningKey(ctx context.Context, activateIn time.Duration) (string, error) {
	return s.rotate(ctx, s.keys, activateIn)
}

// RotateAssertionKey publishes a new key for the edge's assertions that
// signs from now+activateIn (use at least the backends' JWKS cache time).
func (s *Service) RotateAssertionKey(ctx context.Context, activateIn time.Duration) (string, error) {
	return s.rotate(ctx, s.edgeKeys, activateIn)
}

func (s *Service) rotate(ctx context.Context, m *keyManager, activateIn time.Duration) (string, error) {
	if err := s.Ready(ctx); err != nil {
		return "", err
	}
	kid, err := m.Rotate(ctx, s.clock.Now(), activateIn)
	if err != nil {
		return "", err
	}
	return kid, s.publishKeys()
}

// SyncKeys re-reads the signing keys now: publishes the next key when one is
// due and deletes those whose tokens have all expired (the background loop
// does this every KeyReload).
func (s *Service) SyncKeys(ctx context.Context) error {
	if err := s.Ready(ctx); err != nil {
		return err
	}
	return s.syncKeys(ctx, s.clock.Now())
}

// syncKeys syncs the keys of both purposes and publishes them.
func (s *Service) syncKeys(ctx context.Context, now time.Time) error {
	if err := s.keys.sync(ctx, now); err != nil {
		return err
	}
	if err := s.edgeKeys.sync(ctx, now); err != nil {
		return fmt.Errorf("assertion keys: %w", err)
	}
	return s.publishKeys()
}

// publishKeys makes the JWKS of the current rings.
func (s *Service) publishKeys() error {
	s.jwksMu.Lock()
	defer s.jwksMu.Unlock()
	p, err := publishKeys(s.keys.ring.Load(), s.edgeKeys.ring.Load())
	if err != nil {
		return err
	}
	s.jwks.Store(p)
	return nil
}

// ChangePassword sets a user's password and revokes all their sessions
// (an operator's reset: audited as done by the system).
func (s *Service) ChangePassword(ctx context.Context, userID, password string) error {
	if err := validNewPassword("password", password); err != nil {
		return err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	ids, err := s.store.SetPasswordHash(ctx, userID, h, "", s.clock.Now(), s.systemEvent(store.EventUserPasswordReset, userID, nil))
	if err != nil {
		return err
	}
	s.logger.Info("password changed: sessions revoked", zap.String("user_id", userID), zap.Int("sessions", len(ids)))
	s.sessionsRevoked(ids)
	return nil
}

func validNewPassword(field, password string) error {
	if len(password) < 8 || len(password) > maxPasswordLen {
		return invalid(field, "a password is 8 to 1024 bytes")
	}
	return nil
}

// SetUserDisabled disables (revoking every session) or re-enables a user
// (an operator's change: audited as done by the system).
func (s *Service) SetUserDisabled(ctx context.Context, userID string, disabled bool) error {
	_, ids, err := s.store.UpdateUser(ctx, userID, store.UserUpdate{Disabled: &disabled}, s.clock.Now(),
		s.systemEvent(store.EventUserUpdated, userID, map[string]string{"disabled": strconv.FormatBool(disabled)}))
	if err != nil {
		return err
	}
	s.logger.Info("user disabled state changed", zap.String("user_id", userID), zap.Bool("disabled", disabled), zap.Int("sessions_revoked", len(ids)))
	s.sessionsRevoked(ids)
	return nil
}
