package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/jwtverify"
	"github.com/erpgate/erpgate/internal/tokenjson"
)

// Token types (the JWS `typ` header): access tokens per RFC 9068; login
// tokens have their own type so that no verifier of access tokens accepts one.
const (
	TypAccess = "at+jwt"
	typLogin  = "erp-login+jwt"
)

// AccessClaims are the claims of an access token (DESIGN.md).
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	SessionID string   `json:"sid"`
	CompanyID string   `json:"cid"`
	Roles     []string `json:"roles"`
	Scope     string   `json:"scope"`
	Plan      string   `json:"plan"`
}

// loginClaims are the claims of a login token: proof of a password check,
// good for one select-company within LoginTokenTTL.
type loginClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	ExpiresAt int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	ID        string `json:"jti"`
	// MFA is "none" (no second factor enrolled), "pending" or "done".
	MFA string `json:"mfa"`
	// Methods are the second factors a pending token may be completed
	// with (Method…); empty on a pending token: TOTP.
	Methods []string `json:"mth,omitempty"`
}

// Login tokens' claims are decoded strictly, by the parser the edge uses
// too: member names as written, no duplicates in any case, valid UTF-8,
// each member of its type (SECURITY.md, "Ambiguity"). Access tokens are
// checked by jwtverify.VerifyAccess, as at the edge.
var loginClaimsJSON = tokenjson.MustCompile[loginClaims]()

func (s *Service) loginAudience() string { return s.cfg.Issuer + "#login" }

// issueAccess signs an access token for the session's user in a company.
func (s *Service) issueAccess(userID, sessionID, companyID, plan string, roles []string, now time.Time) (string, error) {
	ring := s.keys.ring.Load()
	k, ok := ring.signer(now)
	if !ok {
		return "", errNoSigner
	}
	if roles == nil {
		roles = []string{}
	}
	c := AccessClaims{
		Issuer: s.cfg.Issuer, Subject: userID, Audience: s.cfg.Audience,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(s.cfg.AccessTTL).Unix(),
		ID: uuid.NewString(), SessionID: sessionID, CompanyID: companyID,
		Roles: roles, Scope: scopeString(roles), Plan: plan,
	}
	var buf [1024]byte
	tok, err := signJWT(k, TypAccess, appendAccessClaims(buf[:0], &c))
	if err == nil {
		issuedAccess.Inc()
	}
	return tok, err
}

// appendAccessClaims appends c as JSON, members in field order, without
// reflection: what encoding/json reads back as c.
func appendAccessClaims(b []byte, c *AccessClaims) []byte {
	b = append(b, `{"iss":`...)
	b = envelope.AppendString(b, c.Issuer)
	b = append(b, `,"sub":`...)
	b = envelope.AppendString(b, c.Subject)
	b = append(b, `,"aud":`...)
	b = envelope.AppendString(b, c.Audience)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.ExpiresAt, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, c.NotBefore, 10)
	b = append(b, `,"jti":`...)
	b = envelope.AppendString(b, c.ID)
	b = append(b, `,"sid":`...)
	b = envelope.AppendString(b, c.SessionID)
	b = append(b, `,"cid":`...)
	b = envelope.AppendString(b, c.CompanyID)
	b = append(b, `,"roles":`...)
	if c.Roles == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range c.Roles {
			if i > 0 {
				b = append(b, ',')
			}
			b = envelope.AppendString(b, r)
		}
		b = append(b, ']')
	}
	b = append(b, `,"scope":`...)
	b = envelope.AppendString(b, c.Scope)
	b = append(b, `,"plan":`...)
	b = envelope.AppendString(b, c.Plan)
	return append(b, '}')
}

type signerError struct{}

func (signerError) Error() string { return "no signing key available" }

var errNoSigner error = signerError{}

// clockSkew tolerated on iat/nbf.
const clockSkew = 30 * time.Second

// verifyAccess checks an access token signed by this service with the
// edge's own check (jwtverify.VerifyAccess: strict parse, typ, a published
// key, iss, aud, exp — on this service's clock, without leeway — nbf and
// iat with clockSkew). It does not check the session.
func (s *Service) verifyAccess(ctx context.Context, tok string) (*AccessClaims, error) {
	p := jwtverify.AccessPolicy{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, Leeway: clockSkew, MaxTokenBytes: maxTokenLen}
	c, _, err := jwtverify.VerifyAccess(ctx, &p, s.keys.ring.Load().key, tok, s.clock.Now())
	if errors.Is(err, jwtverify.ErrExpired) {
		return nil, unauthenticated(contract.CodeTokenExpired, "the access token has expired", hdrInvalidToken)
	}
	if err != nil {
		return nil, errInvalidToken()
	}
	ac := &AccessClaims{
		Issuer: s.cfg.Issuer, Subject: c.Subject, Audience: s.cfg.Audience, ExpiresAt: c.Expiry.Unix(),
		ID: c.TokenID, SessionID: c.SessionID, CompanyID: c.CompanyID, Roles: c.Roles, Scope: c.Scope, Plan: c.Plan,
	}
	if !c.IssuedAt.IsZero() {
		ac.IssuedAt = c.IssuedAt.Unix()
	}
	return ac, nil
}

func (s *Service) issueLogin(userID, mfa string, methods []string, now time.Time) (string, error) {
	k, ok := s.keys.ring.Load().signer(now)
	if !ok {
		return "", errNoSigner
	}
	payload, err := json.Marshal(loginClaims{Issuer: s.cfg.Issuer, Subject: userID, Audience: s.loginAudience(),
		IssuedAt: now.Unix(), ExpiresAt: now.Add(LoginTokenTTL).Unix(), ID: uuid.NewString(), MFA: mfa, Methods: methods})
	if err != nil {
		return "", err
	}
	tok, err := signJWT(k, typLogin, payload)
	if err == nil {
		issuedLogin.Inc()
	}
	return tok, err
}

func (s *Service) verifyLogin(tok string) (*loginClaims, error) {
	bad := unauthenticated(contract.CodeUnauthenticated, "the login token is invalid or expired; log in again", hdrInvalidToken)
	payload, err := s.keys.ring.Load().verifyJWT(tok, typLogin)
	if err != nil {
		return nil, bad
	}
	var c loginClaims
	if err := loginClaimsJSON.Decode(payload, &c); err != nil || c.Issuer != s.cfg.Issuer || c.Audience != s.loginAudience() || c.Subject == "" || c.ID == "" {
		return nil, bad
	}
	if s.clock.Now().Unix() >= c.ExpiresAt {
		return nil, bad
	}
	return &c, nil
}

// Opaque secrets: refresh tokens and API keys carry 256 random bits.
const refreshPrefix = "ert_"

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newRefreshToken() (string, []byte) {
	t := refreshPrefix + randomSecret()
	return t, hashSecret(t)
}

// hashSecret is SHA-256: right for high-entropy secrets (no dictionary to
// search), and fast enough for every refresh and introspection.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// validRefreshFormat rejects obviously malformed input before any lookup.
func validRefreshFormat(t string) bool {
	return len(t) == len(refreshPrefix)+43 && strings.HasPrefix(t, refreshPrefix)
}
