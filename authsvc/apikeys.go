package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// API keys look like `erp_live_<prefix>_<secret>`: a 12-hex-digit public
// prefix that identifies the key (and is shown in listings), and 256 random
// bits of secret (base64url). Only SHA-256 of the whole key is stored.
const (
	apiKeyScheme    = "erp_live_"
	apiKeyPrefixLen = 12
	apiKeyLen       = len(apiKeyScheme) + apiKeyPrefixLen + 1 + 43
	maxGracePeriod  = 30 * 24 * time.Hour
)

func newAPIKeySecret(prefix string) (string, []byte) {
	k := apiKeyScheme + prefix + "_" + randomSecret()
	return k, hashSecret(k)
}

func newAPIKeyPrefix() string {
	b := make([]byte, apiKeyPrefixLen/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// parseAPIKey returns the prefix of a well-formed key.
func parseAPIKey(k string) (string, bool) {
	if len(k) != apiKeyLen || !strings.HasPrefix(k, apiKeyScheme) || k[len(apiKeyScheme)+apiKeyPrefixLen] != '_' {
		return "", false
	}
	p := k[len(apiKeyScheme) : len(apiKeyScheme)+apiKeyPrefixLen]
	if _, err := hex.DecodeString(p); err != nil || strings.ToLower(p) != p {
		return "", false
	}
	return p, true
}

// Introspection is the answer about an API key (RFC 7662 style). When Active
// is false only Status is set ("invalid", "revoked", "expired", or
// "disabled": its company is disabled).
type Introspection struct {
	Active    bool   `json:"active"`
	Status    string `json:"status"`
	TokenType string `json:"token_type,omitempty"` // "api_key"
	KeyID     string `json:"key_id,omitempty"`
	CompanyID string `json:"company_id,omitempty"`
	Scope     string `json:"scope,omitempty"` // space-separated
	Plan      string `json:"plan,omitempty"`
	Exp       int64  `json:"exp,omitempty"` // 0: no expiry
	// Sub is the key's principal (`apikey:<id>`), for audit and identity headers.
	Sub string `json:"sub,omitempty"`
}

// IntrospectAPIKey answers whether key is a live API key and what it grants.
// Both secrets of a key in its rotation grace period are accepted. Secrets
// are compared in constant time; a use is recorded (last_used_at, count).
//
// A prefix that names no key costs what a known prefix with a wrong secret
// costs — the same store round trip, one SHA-256 and two constant-time
// comparisons, against a dummy hash — so the time of the answer does not
// tell whether a prefix exists (SECURITY.md category 6, OWASP ASVS).
func (s *Service) IntrospectAPIKey(ctx context.Context, key string) (Introspection, error) {
	prefix, ok := parseAPIKey(key)
	if !ok {
		return Introspection{Status: "invalid"}, nil
	}
	if err := s.Ready(ctx); err != nil {
		return Introspection{}, err
	}
	k, err := s.store.FindAPIKey(ctx, prefix)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Introspection{}, err
	}
	now := s.clock.Now()
	cur, prev := s.matchSecret(key, &k, found, now)
	switch {
	case !cur && !prev:
		return Introspection{Status: "invalid"}, nil
	case !k.RevokedAt.IsZero():
		return Introspection{Status: "revoked"}, nil
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return Introspection{Status: "expired"}, nil
	}
	co, err := s.store.GetCompany(ctx, k.CompanyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Introspection{}, err
	}
	if err != nil || co.Disabled {
		return Introspection{Status: "disabled"}, nil
	}
	s.uses.add(k.ID, now)
	in := Introspection{Active: true, Status: "active", TokenType: "api_key", KeyID: k.ID, CompanyID: k.CompanyID,
		Scope: strings.Join(k.Scope, " "), Plan: k.Plan, Sub: "apikey:" + k.ID}
	if !k.ExpiresAt.IsZero() {
		in.Exp = k.ExpiresAt.Unix()
	}
	if !cur && prev && (in.Exp == 0 || k.PrevExpiresAt.Unix() < in.Exp) {
		in.Exp = k.PrevExpiresAt.Unix() // the old secret lives until the grace period ends
	}
	return in, nil
}

// secretOps are the two operations that compare a presented API key with a
// stored one: a test counts them (see apiKeySecrets).
type secretOps interface {
	hash(key string) []byte
	equal(a, b []byte) bool
}

// constantTime is secretOps in production: SHA-256, crypto/subtle.
type constantTime struct{}

func (constantTime) hash(key string) []byte { return hashSecret(key) }
func (constantTime) equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// missHash stands in for the stored hash of a key that was not found, or
// the previous secret of a key that has none: 32 random bytes, drawn once.
var missHash = func() []byte {
	b := make([]byte, sha256.Size)
	_, _ = rand.Read(b)
	return b
}()

func (s *Service) secretOps() secretOps {
	if s.apiKeySecrets != nil {
		return s.apiKeySecrets
	}
	return constantTime{}
}

// matchSecret reports whether key is k's current secret, or its previous
// one within the grace period. It does the same work whether or not k was
// found and whether or not it has a previous secret: one hash of key and
// two comparisons of 32 bytes. found gates the answer, never the work.
func (s *Service) matchSecret(key string, k *store.APIKey, found bool, now time.Time) (cur, prev bool) {
	ops := s.secretOps()
	curHash, prevHash := missHash, missHash
	if found && len(k.SecretHash) == sha256.Size {
		curHash = k.SecretHash
	}
	hasPrev := found && len(k.PrevSecretHash) == sha256.Size
	if hasPrev {
		prevHash = k.PrevSecretHash
	}
	h := ops.hash(key)
	cur = ops.equal(h, curHash)
	prev = ops.equal(h, prevHash)
	return found && cur, hasPrev && prev && now.Before(k.PrevExpiresAt)
}

// useRecorder batches API key uses in memory; they are written every second
// (and before a listing), not on every request.
type useRecorder struct {
	mu      sync.Mutex
	pending map[string]*store.APIKeyUse
}

func (u *useRecorder) add(id string, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.pending[id]
	if !ok {
		p = &store.APIKeyUse{ID: id}
		u.pending[id] = p
	}
	p.Count++
	if now.After(p.LastUsed) {
		p.LastUsed = now
	}
}

func (u *useRecorder) take() []store.APIKeyUse {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]store.APIKeyUse, 0, len(u.pending))
	for _, p := range u.pending {
		out = append(out, *p)
	}
	clear(u.pending)
	return out
}

func (s *Service) flushUses(ctx context.Context) {
	uses := s.uses.take()
	if len(uses) == 0 {
		return
	}
	if err := s.store.RecordAPIKeyUses(ctx, uses); err != nil {
		s.logger.Warn("recording api key uses failed", zap.Int("keys", len(uses)), zap.Error(err))
		for _, u := range uses { // keep them for the next flush
			s.uses.mu.Lock()
			p, ok := s.uses.pending[u.ID]
			if !ok {
				p = &store.APIKeyUse{ID: u.ID}
				s.uses.pending[u.ID] = p
			}
			p.Count += u.Count
			if u.LastUsed.After(p.LastUsed) {
				p.LastUsed = u.LastUsed
			}
			s.uses.mu.Unlock()
		}
	}
}

type apiKeyView struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Prefix        string     `json:"prefix"`
	CompanyID     string     `json:"company_id"`
	Scope         []string   `json:"scope"`
	Plan          string     `json:"plan"`
	Status        string     `json:"status"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	UseCount      int64      `json:"use_count"`
	PreviousValid *time.Time `json:"previous_secret_valid_until"`
	Key           string     `json:"key,omitempty"` // only when created or rotated
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func viewAPIKey(k store.APIKey, now time.Time) apiKeyView {
	status := "active"
	switch {
	case !k.RevokedAt.IsZero():
		status = "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		status = "expired"
	}
	v := apiKeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CompanyID: k.CompanyID, Scope: k.Scope, Plan: k.Plan, Status: status,
		CreatedAt: k.CreatedAt, ExpiresAt: optTime(k.ExpiresAt), RevokedAt: optTime(k.RevokedAt), LastUsedAt: optTime(k.LastUsedAt), UseCount: k.UseCount}
	if len(k.PrevSecretHash) > 0 && now.Before(k.PrevExpiresAt) && k.RevokedAt.IsZero() {
		v.PreviousValid = optTime(k.PrevExpiresAt)
	}
	if v.Scope == nil {
		v.Scope = []string{}
	}
	return v
}

// keyManager authenticates the caller and checks, against the store (not
// just the token), that they are an owner or admin of the token's company.
func (s *Service) keyAdmin(c *call) (*AccessClaims, store.Access, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return nil, store.Access{}, err
	}
	access, err := s.store.GetAccess(c.ctx, claims.Subject, claims.CompanyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Access{}, errForbidden("you are not a member of this company")
	}
	if err != nil {
		return nil, store.Access{}, err
	}
	if access.UserDisabled {
		return nil, store.Access{}, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken)
	}
	if !canManageKeys(access.Roles) {
		return nil, store.Access{}, errForbidden("managing API keys needs the owner or admin role")
	}
	return claims, access, nil
}

// scopeList accepts a space-separated string or an array of strings.
type scopeList []string

func (l *scopeList) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*l = strings.Fields(str)
		return nil
	}
	var arr []string
	if err := json.Unmarshal(b, &arr); err != nil {
		return err
	}
	*l = arr
	return nil
}

func (s *Service) handleCreateAPIKey(c *call) (int, any, error) {
	claims, access, err := s.keyAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name      string     `json:"name"`
		Scope     scopeList  `json:"scope"`
		Plan      string     `json:"plan"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if len(in.Name) > 100 {
		return 0, nil, invalid("name", "name is at most 100 characters")
	}
	if len(in.Scope) == 0 {
		return 0, nil, invalid("scope", "scope is required, e.g. \"invoices:read customers:read\"")
	}
	own := ScopesFor(access.Roles)
	scope := slices.Clone([]string(in.Scope))
	slices.Sort(scope)
	scope = slices.Compact(scope)
	for _, sc := range scope {
		if !validScope(sc) {
			return 0, nil, invalid("scope", "unknown scope "+strconv.Quote(sc))
		}
		if !slices.Contains(own, sc) {
			return 0, nil, invalid("scope", "you can't grant "+sc+": your roles don't include it")
		}
	}
	// A key can't buy its company a bigger plan: the company's own, or free.
	plan := access.Company.Plan
	if in.Plan != "" {
		if in.Plan != access.Company.Plan && in.Plan != "free" {
			return 0, nil, invalid("plan", "plan must be the company's plan ("+access.Company.Plan+") or free")
		}
		plan = in.Plan
	}
	now := s.clock.Now()
	var exp time.Time
	if in.ExpiresAt != nil {
		exp = in.ExpiresAt.UTC()
		if !exp.After(now) {
			return 0, nil, invalid("expires_at", "expires_at must be in the future")
		}
	}
	var k store.APIKey
	var secret string
	for attempt := 0; ; attempt++ {
		prefix := newAPIKeyPrefix()
		var h []byte
		secret, h = newAPIKeySecret(prefix)
		k = store.APIKey{ID: uuid.NewString(), CompanyID: access.Company.ID, Name: in.Name, Prefix: prefix, SecretHash: h,
			Scope: scope, Plan: plan, CreatedBy: claims.Subject, CreatedAt: now, ExpiresAt: exp}
		ev := s.event(c, store.EventAPIKeyCreated)
		ev.SubjectID, ev.Details = k.ID, map[string]string{"prefix": prefix, "name": in.Name, "scope": strings.Join(scope, " "), "plan": plan}
		err = s.store.CreateAPIKey(c.ctx, k, ev)
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue // a prefix collision: draw again
		}
		break
	}
	if err != nil {
		return 0, nil, err
	}
	s.logger.Info("api key created", zap.String("key_id", k.ID), zap.String("prefix", k.Prefix), zap.String("company_id", k.CompanyID), zap.String("user_id", claims.Subject))
	v := viewAPIKey(k, now)
	v.Key = secret
	return http.StatusCreated, v, nil
}

func (s *Service) handleListAPIKeys(c *call) (int, any, error) {
	_, access, err := s.keyAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	s.flushUses(c.ctx)
	keys, err := s.store.ListAPIKeys(c.ctx, access.Company.ID)
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	out := make([]apiKeyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, viewAPIKey(k, now))
	}
	return http.StatusOK, out, nil
}

// parseGrace accepts a Go duration ("24h") or a number of seconds.
func parseGrace(raw json.RawMessage) (time.Duration, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err == nil {
		d := time.Duration(secs * float64(time.Second))
		return d, secs >= 0 && d <= maxGracePeriod
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return 0, false
	}
	d, err := time.ParseDuration(str)
	return d, err == nil && d >= 0 && d <= maxGracePeriod
}

func (s *Service) handleRotateAPIKey(c *call) (int, any, error) {
	claims, access, err := s.keyAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		GracePeriod json.RawMessage `json:"grace_period"`
	}
	if err := decode(c, &in, true); err != nil {
		return 0, nil, err
	}
	grace, ok := parseGrace(in.GracePeriod)
	if !ok {
		return 0, nil, invalid("grace_period", "grace_period is a duration (\"1h\") or seconds, at most 720h")
	}
	old, err := s.store.GetAPIKey(c.ctx, access.Company.ID, c.param)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such API key")
	}
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	secret, h := newAPIKeySecret(old.Prefix)
	ev := s.event(c, store.EventAPIKeyRotated)
	ev.SubjectID, ev.Details = c.param, map[string]string{"prefix": old.Prefix, "grace_period": grace.String()}
	k, err := s.store.RotateAPIKey(c.ctx, access.Company.ID, c.param, h, now.Add(grace), now, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such API key")
	}
	if err != nil {
		return 0, nil, err
	}
	s.logger.Info("api key rotated", zap.String("key_id", k.ID), zap.String("company_id", k.CompanyID), zap.String("user_id", claims.Subject), zap.Duration("grace", grace))
	s.recorded([]store.Revocation{{Kind: store.RotatedAPIKey, SubjectID: k.ID}})
	v := viewAPIKey(k, now)
	v.Key = secret
	return http.StatusOK, v, nil
}

func (s *Service) handleRevokeAPIKey(c *call) (int, any, error) {
	claims, access, err := s.keyAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	ev := s.event(c, store.EventAPIKeyRevoked)
	ev.SubjectID = c.param
	err = s.store.RevokeAPIKey(c.ctx, access.Company.ID, c.param, now, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such API key")
	}
	if err != nil {
		return 0, nil, err
	}
	s.logger.Info("api key revoked", zap.String("key_id", c.param), zap.String("company_id", access.Company.ID), zap.String("user_id", claims.Subject))
	s.recorded([]store.Revocation{{Kind: store.RevokedAPIKey, SubjectID: c.param}})
	return http.StatusOK, map[string]any{"id": c.param, "revoked": true, "revoked_at": now.UTC()}, nil
}

// handleIntrospect answers the edge (authenticated by the introspection
// secret) about an API key. Everyone else gets the same 401, whether the
// key exists or not.
func (s *Service) handleIntrospect(c *call) (int, any, error) {
	if ok, err := s.introspectionCaller(c.r); !ok {
		if ce := s.refusals.CheckLine(zap.WarnLevel, "introspection refused: caller not authenticated", "unauthenticated_caller"); ce != nil {
			ce.Write(zap.String("ip", c.ip))
		}
		if err != nil {
			return 0, nil, err // two credentials
		}
		return 0, nil, unauthenticated(contract.CodeUnauthenticated, "introspection needs the edge's credential", hdrInvalidToken)
	}
	var token string
	ct := strings.ToLower(c.r.Header.Get("Content-Type"))
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		body, err := readLimited(c)
		if err != nil {
			return 0, nil, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return 0, nil, contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "malformed form body")
		}
		token = form.Get("token")
	} else {
		var in struct {
			Token         string `json:"token"`
			TokenTypeHint string `json:"token_type_hint"`
		}
		if err := decode(c, &in, false); err != nil {
			return 0, nil, err
		}
		token = in.Token
	}
	if token == "" {
		return 0, nil, invalid("token", "token is required")
	}
	in, err := s.IntrospectAPIKey(c.ctx, token)
	if err != nil {
		return 0, nil, err
	}
	if in.Active {
		c.meta.CompanyID = in.CompanyID
	}
	return http.StatusOK, in, nil
}

// introspectionCaller compares the bearer credential with the configured
// secret in constant time (over their hashes, so lengths don't leak either).
// err is the refusal of a request with more than one credential.
func (s *Service) introspectionCaller(r *http.Request) (ok bool, err error) {
	tok, err := bearer(r)
	if e, refused := contract.AsError(err); refused && e.Status == http.StatusBadRequest {
		return false, err
	}
	if s.cfg.IntrospectionSecret == "" || err != nil {
		return false, nil
	}
	a, b := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.IntrospectionSecret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1, nil
}

func readLimited(c *call) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, contract.NewError(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge, "request body too large")
		}
		return nil, contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "could not read the request body")
	}
	return b, nil
}

// Messages on the revocation channel about API keys: a revoked key, and a
// rotated one (whose cached answers an edge must drop so that the old
// secret stops at the end of its grace period).
const (
	APIKeyRevokedPrefix = "apikey:"
	APIKeyRotatedPrefix = "apikey-rotated:"
)
