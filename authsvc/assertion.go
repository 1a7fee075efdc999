package authsvc

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// MaxAssertionTTL is the longest an edge assertion lives (DESIGN.md, "Edge
// assertion"); assertion keys are retired this long (plus the reload
// interval) after their successor signs.
const MaxAssertionTTL = 60 * time.Second

// Assertion is what the edge states to a backend about one request: the
// backend it is for and the identity the edge verified. It is signed with
// an assertion key (kid "edge-…", typ erp-edge+jwt), never with an
// access-token key.
type Assertion struct {
	Audience  string // the backend's name
	Subject   string
	CompanyID string
	Roles     []string
	Scope     string
	Plan      string
	IssuedAt  time.Time
	// Expiry is at most MaxAssertionTTL after IssuedAt and never after the
	// credential's own expiry (the caller bounds it).
	Expiry time.Time
}

var errBadAssertion = errors.New("sign assertion: aud, sub and cid are required, and exp must be after iat by at most 60s")

// SignAssertion signs a as an edge assertion with the current assertion key:
// header {alg EdDSA, kid, typ erp-edge+jwt}; claims iss (the service's
// issuer), aud, sub, cid, roles, scope, plan, iat, exp (NumericDates, whole
// seconds rounded down) and jti (128 random bits, unique per assertion).
func (s *Service) SignAssertion(ctx context.Context, a *Assertion) (string, error) {
	if err := s.Ready(ctx); err != nil {
		return "", err
	}
	iat, exp := a.IssuedAt.Unix(), a.Expiry.Unix()
	if a.Audience == "" || a.Subject == "" || a.CompanyID == "" || exp <= iat || a.Expiry.Sub(a.IssuedAt) > MaxAssertionTTL {
		return "", errBadAssertion
	}
	k, ok := s.edgeKeys.ring.Load().signer(s.clock.Now())
	if !ok {
		return "", errNoSigner
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	var buf [1024]byte
	b := append(buf[:0], `{"iss":`...)
	b = envelope.AppendString(b, s.cfg.Issuer)
	b = append(b, `,"aud":`...)
	b = envelope.AppendString(b, a.Audience)
	b = append(b, `,"sub":`...)
	b = envelope.AppendString(b, a.Subject)
	b = append(b, `,"cid":`...)
	b = envelope.AppendString(b, a.CompanyID)
	b = append(b, `,"roles":[`...)
	for i, r := range a.Roles {
		if i > 0 {
			b = append(b, ',')
		}
		b = envelope.AppendString(b, r)
	}
	b = append(b, `],"scope":`...)
	b = envelope.AppendString(b, a.Scope)
	b = append(b, `,"plan":`...)
	b = envelope.AppendString(b, a.Plan)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, iat, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, `,"jti":"`...)
	b = b64.AppendEncode(b, id[:])
	b = append(b, `"}`...)
	return signJWT(k, contract.TypAssertion, b)
}
