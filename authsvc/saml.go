package authsvc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"math/big"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// SAML 2.0 service provider for the companies' SSO connections (issue
// #17), on github.com/crewjam/saml. Each SAML connection is its own SP:
//
//   - entity id: PublicURL + /api/v1/auth/sso/saml/metadata?company={company}&connection={id}
//     (the URL of its metadata), ACS: PublicURL + /api/v1/auth/sso/saml/acs
//     (HTTP-POST binding), for every connection;
//   - its own RSA 2048 key and self-signed certificate, made when the
//     connection is created; the key sealed at rest (s.sealer), the
//     certificate published in the SP metadata: IdPs encrypt assertions to
//     it. AuthnRequests are not signed (IdPs know the SP's ACS from its
//     metadata; and a signed HTTP-Redirect request loses its signature in
//     IdPs that re-post it from their login form, as samlidp does).
//
// The flow: GET /api/v1/auth/sso/{company}/start (sso.go) calls startSAML,
// which sends the browser to the IdP with an AuthnRequest (HTTP-Redirect,
// or an auto-posted form when the IdP only takes HTTP-POST). The flow's
// data — connection, request id, return_to, expiry — travels sealed
// (AES-256-GCM) in the RelayState, so the ACS needs no server-side session
// and nobody can read or change it; the RelayState is bound to the browser
// by the erp_saml cookie (a random value whose hash the sealed state holds).
// The IdP's answer comes back to POST /api/v1/auth/sso/saml/acs: the
// RelayState opened and checked (unexpired, this browser's), the Response
// verified by crewjam's ServiceProvider (the IdP metadata's signing
// certificate, audience = the connection's entity id, Destination and
// Recipient = the ACS URL, NotBefore/NotOnOrAfter, InResponseTo = the
// request id of this RelayState), the request id and the assertion id each
// accepted once (s.counters.MarkOnce), then ssoSignIn.
//
// The cookie: the IdP's answer is a cross-site POST, which a browser sends
// a cookie with only when it is SameSite=None, and SameSite=None is only
// kept on a Secure cookie. So on an https PublicURL the cookie is
// SameSite=None; Secure; HttpOnly; on http (development, tests) it is
// SameSite=Lax, which works when the IdP is the same site (localhost) and
// not otherwise. Without the cookie the ACS refuses: the binding is what
// stops a login CSRF (a victim's browser made to post an attacker's
// assertion).
//
// IdP-initiated sign-in (unsolicited Responses) is refused: every Response
// must answer a request this browser started.

const (
	samlACSPath      = "/api/v1/auth/sso/saml/acs"
	samlMetadataPath = "/api/v1/auth/sso/saml/metadata"
	samlCookieName   = "erp_saml"
	samlCookiePath   = "/api/v1/auth/sso"
	// samlFlowTTL is how long a started sign-in may take at the IdP.
	samlFlowTTL = 10 * time.Minute
	// samlMaxForm bounds the ACS's form (a signed, encrypted Response is
	// some 10-20 KB).
	samlMaxForm = 256 << 10
	// Additional data of the sealed values: a sealed SP key can't be
	// opened as a RelayState or the other way round.
	samlKeyKID   = "saml-sp-key"
	samlRelayKID = "saml-relay-state"
	samlRelayPfx = "s1."
)

// Reasons of refused SAML sign-ins (sso.refused records, Details["reason"]):
// the SSO flows' where they mean the same, SAML's own for the rest.
const (
	ReasonSAMLMalformed   = "saml_malformed"        // no form, no SAMLResponse, not base64, not XML
	ReasonSAMLState       = ReasonSSOState          // a RelayState that is missing, forged or not ours
	ReasonSAMLStateExpiry = ReasonSSOStateExpired   // the sign-in started more than 10 minutes ago
	ReasonSAMLBrowser     = "saml_browser"          // the RelayState was started by another browser (no or another erp_saml cookie)
	ReasonSAMLConnection  = ReasonSSOConnectionGone // the connection is gone (deleted since the start)
	ReasonSAMLSignature   = "saml_signature"        // not signed, or signed by a key the IdP metadata does not hold
	ReasonSAMLExpired     = "saml_expired"          // an assertion past its NotOnOrAfter (or issued too long ago) or not yet valid
	ReasonSAMLAudience    = "saml_audience"         // an assertion for another SP
	ReasonSAMLDestination = "saml_destination"      // a Response or assertion sent to another ACS
	ReasonSAMLRequest     = "saml_in_response_to"   // InResponseTo is not the request this RelayState started
	ReasonSAMLIssuer      = "saml_issuer"           // another IdP's answer
	ReasonSAMLReplayed    = "saml_replayed"         // an assertion or a RelayState that was already used
	ReasonSAMLIdPStatus   = ReasonSSOIdPError       // the IdP answered with an error status
	ReasonSAMLDecrypt     = "saml_decrypt"          // an encrypted assertion our key does not open (encrypted for another SP)
	ReasonSAMLNoEmail     = ReasonSSOEmail          // the assertion names no email address
	ReasonSAMLInvalid     = "saml_invalid"          // any other failed check
)

// samlRoutes are the SAML endpoints (ACS, SP metadata).
var samlRoutes = map[string]handlerFunc{
	"POST " + samlACSPath:     (*Service).handleSAMLACS,
	"GET " + samlMetadataPath: (*Service).handleSAMLMetadata,
}

// samlSignIn is where a verified SAML sign-in goes: ssoSignIn (a variable
// so that the package's tests can see what the ACS hands over).
var samlSignIn = (*Service).ssoSignIn

// samlConnectionInput is the `saml` member of a new SSO connection (POST
// /api/v1/admin/companies/{id}/sso): the IdP's metadata, by URL or inline,
// and optionally the attributes that hold the user's email and name.
type samlConnectionInput struct {
	MetadataURL string `json:"metadata_url"`
	MetadataXML string `json:"metadata_xml"`
	// Attributes maps "email" and "name" to the names of the assertion's
	// attributes that carry them. Without "email": the NameID when its
	// format is emailAddress (or unspecified and it is an address), else
	// the usual email attributes.
	Attributes map[string]string `json:"attributes"`
}

// prepareSAMLConnection fills a new SAML connection from its input: the
// IdP metadata (fetched when given by URL), the SP's key (sealed) and
// certificate. Its errors are refusals for the caller (invalid(…)).
func (s *Service) prepareSAMLConnection(ctx context.Context, conn *store.SSOConnection, in samlConnectionInput) error {
	in.MetadataURL, in.MetadataXML = strings.TrimSpace(in.MetadataURL), strings.TrimSpace(in.MetadataXML)
	var data []byte
	field := "saml.metadata_xml"
	switch {
	case in.MetadataURL != "" && in.MetadataXML != "":
		return invalid("saml", "give either saml.metadata_url or saml.metadata_xml, not both")
	case in.MetadataURL == "" && in.MetadataXML == "":
		return invalid("saml.metadata_url", "saml.metadata_url or saml.metadata_xml is required")
	case in.MetadataURL != "":
		field = "saml.metadata_url"
		u, err := s.samlCheckURL(in.MetadataURL)
		if err != nil {
			return invalid(field, err.Error())
		}
		if data, err = s.fetchSAMLMetadata(ctx, u); err != nil {
			return invalid(field, err.Error())
		}
		conn.IdPMetadataURL = u.String()
	default:
		if len(in.MetadataXML) > samlMaxMetadata {
			return invalid(field, "saml.metadata_xml is too large")
		}
		data = []byte(in.MetadataXML)
	}
	if _, err := s.samlIdPMetadata(data); err != nil {
		return invalid(field, err.Error())
	}
	claims := map[string]string{}
	for k, v := range in.Attributes {
		v = strings.TrimSpace(v)
		if k != "email" && k != "name" {
			return invalid("saml.attributes", "saml.attributes may name only email and name")
		}
		if v == "" || len(v) > 256 {
			return invalid("saml.attributes."+k, "an attribute name of 1 to 256 characters is required")
		}
		claims[k] = v
	}
	if len(claims) > 0 {
		conn.Claims = claims
	}
	key, cert, err := samlNewSPKey(s.clock.Now())
	if err != nil {
		return err
	}
	conn.IdPMetadataXML = data
	conn.SealedSPKey = s.sealer.Seal(samlKeyKID, key)
	conn.SPCert = cert
	return nil
}

// samlCheckURL accepts an https URL (http only with SSOAllowPrivate, for
// tests) without credentials.
func (s *Service) samlCheckURL(raw string) (*url.URL, error) {
	if len(raw) > 2048 {
		return nil, errors.New("saml.metadata_url is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("saml.metadata_url must be an absolute https URL")
	}
	if u.User != nil {
		return nil, errors.New("saml.metadata_url must not hold credentials")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !s.cfg.SSOAllowPrivate) {
		return nil, errors.New("saml.metadata_url must be an https URL")
	}
	u.Fragment = ""
	return u, nil
}

// samlIdPMetadata parses an IdP's metadata and checks that it can serve
// as one: an IDPSSODescriptor with a signing certificate and a
// SingleSignOnService with the HTTP-Redirect or HTTP-POST binding.
func (s *Service) samlIdPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	ed, err := samlsp.ParseMetadata(data)
	if err != nil {
		return nil, errors.New("this is not the SAML metadata of one identity provider")
	}
	if ed.EntityID == "" || len(ed.IDPSSODescriptors) == 0 {
		return nil, errors.New("the metadata has no IDPSSODescriptor")
	}
	signing, sso := false, false
	for _, d := range ed.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
				if err != nil {
					continue
				}
				if _, err := x509.ParseCertificate(der); err == nil {
					signing = true
				}
			}
		}
		for _, ep := range d.SingleSignOnServices {
			if ep.Binding != saml.HTTPRedirectBinding && ep.Binding != saml.HTTPPostBinding {
				continue
			}
			if u, err := url.Parse(ep.Location); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http" && s.cfg.SSOAllowPrivate) {
				sso = true
			}
		}
	}
	if !signing {
		return nil, errors.New("the metadata has no signing certificate for the identity provider")
	}
	if !sso {
		return nil, errors.New("the metadata has no https SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	}
	return ed, nil
}

// samlNewSPKey makes an SP key (RSA 2048, PKCS#8 DER) and its self-signed
// certificate (DER), valid ten years: SAML metadata treats certificates as
// key containers.
func samlNewSPKey(now time.Time) (key, cert []byte, err error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "erpgate SAML service provider"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	cert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// samlEntityID is the connection's SP entity id: the URL of its metadata.
func (s *Service) samlEntityID(conn store.SSOConnection) string {
	return s.cfg.PublicURL + samlMetadataPath + "?" + url.Values{"company": {conn.CompanyID}, "connection": {conn.ID}}.Encode()
}

// samlSP is the connection's service provider; withKey opens its sealed
// key (not needed for the metadata).
func (s *Service) samlSP(ctx context.Context, conn store.SSOConnection, withKey bool) (*saml.ServiceProvider, error) {
	cert, err := x509.ParseCertificate(conn.SPCert)
	if err != nil {
		return nil, errors.New("saml: the connection's SP certificate does not parse")
	}
	idp, err := s.samlIdPMetadata(conn.IdPMetadataXML)
	if err != nil {
		return nil, errors.New("saml: the connection's IdP metadata is not usable")
	}
	entity, err := url.Parse(s.samlEntityID(conn))
	if err != nil {
		return nil, err
	}
	acs, err := url.Parse(s.cfg.PublicURL + samlACSPath)
	if err != nil {
		return nil, err
	}
	sp := &saml.ServiceProvider{
		EntityID:                         entity.String(),
		Certificate:                      cert,
		MetadataURL:                      *entity,
		AcsURL:                           *acs,
		IDPMetadata:                      idp,
		AuthnNameIDFormat:                saml.UnspecifiedNameIDFormat,
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		RejectSHA1Signatures:             true,
		Clock:                            dsig.NewFakeClock(samlClock{Clock: clockwork.NewRealClock(), now: s.clock.Now}),
		ReplayCache:                      samlReplayCache{ctx: ctx, s: s, conn: conn.ID},
	}
	if withKey {
		der, err := s.sealer.Open(samlKeyKID, conn.SealedSPKey)
		if err != nil {
			return nil, errors.New("saml: the connection's SP key does not open under the master key")
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, errors.New("saml: the connection's SP key does not parse")
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("saml: the connection's SP key is not a signing key")
		}
		sp.Key = signer
	}
	return sp, nil
}

// samlClock is the service's clock for crewjam/saml and goxmldsig (every
// time check of a Response, and the IssueInstant of requests).
type samlClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c samlClock) Now() time.Time                  { return c.now() }
func (c samlClock) Since(t time.Time) time.Duration { return c.now().Sub(t) }
func (c samlClock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }

// samlReplayCache accepts each assertion id of a connection once, until
// the assertion expires (in Redis when the service has it, so across
// instances).
type samlReplayCache struct {
	ctx  context.Context
	s    *Service
	conn string
}

func (r samlReplayCache) Consume(id string, expiresAt time.Time) error {
	ttl := expiresAt.Sub(r.s.clock.Now()) + time.Minute
	if ttl < time.Minute {
		ttl = time.Minute
	}
	h := sha256.Sum256([]byte(id))
	first, err := r.s.counters.MarkOnce(r.ctx, "saml:assertion:"+r.conn+":"+base64.RawURLEncoding.EncodeToString(h[:16]), ttl)
	if err != nil {
		return err
	}
	if !first {
		return saml.ErrAssertionReplayed
	}
	return nil
}

// handleSAMLMetadata serves a SAML connection's SP metadata (public: it
// holds the certificate, never the key).
func (s *Service) handleSAMLMetadata(c *call) (int, any, error) {
	q := c.r.URL.Query()
	company, id := q.Get("company"), q.Get("connection")
	notFound := contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such SAML connection")
	if company == "" {
		return 0, nil, invalid("company", "company is required (the metadata URL is the connection's entity id, as its metadata_url shows it)")
	}
	if id == "" {
		return 0, nil, invalid("connection", "connection is required")
	}
	if len(company) > 128 || len(id) > 128 {
		return 0, nil, notFound
	}
	conn, err := s.store.GetSSOConnection(c.ctx, company, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && conn.Kind != store.SSOKindSAML {
		return 0, nil, notFound
	}
	if err != nil {
		if samlBadID(err) {
			return 0, nil, notFound
		}
		return 0, nil, err
	}
	sp, err := s.samlSP(c.ctx, conn, false)
	if err != nil {
		return 0, nil, err
	}
	body, err := xml.MarshalIndent(sp.Metadata(), "", "  ")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rawDoc{contentType: "application/samlmetadata+xml", body: append([]byte(xml.Header), body...),
		header: map[string]string{"Cache-Control": "public, max-age=300", "Content-Disposition": `inline; filename="erpgate-sp-metadata.xml"`}}, nil
}

// samlBadID: Postgres refuses an id that is not a uuid; it names no
// connection.
func samlBadID(err error) bool {
	return strings.Contains(err.Error(), "invalid input syntax for type uuid") || strings.Contains(err.Error(), "SQLSTATE 22P02")
}

// samlFlow is a started SAML sign-in, sealed in the RelayState.
type samlFlow struct {
	Company  string `json:"c"`
	Conn     string `json:"i"`
	Request  string `json:"r"`
	ReturnTo string `json:"t,omitempty"`
	Expires  int64  `json:"e"`
	Browser  string `json:"b"` // hash of the erp_saml cookie's value
}

func samlBrowserHash(v string) string {
	h := sha256.Sum256([]byte("erp_saml:" + v))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// samlCookieValue is the browser's erp_saml value: the one it has (so
// that sign-ins started in two tabs both finish), else a new one.
func samlCookieValue(r *http.Request) (string, bool) {
	if ck, err := r.Cookie(samlCookieName); err == nil && len(ck.Value) == 43 {
		if _, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			return ck.Value, true
		}
	}
	return randomSecret(), false
}

// startSAML answers GET /api/v1/auth/sso/{company}/start for a SAML
// connection: the AuthnRequest to the IdP (HTTP-Redirect binding, or an
// auto-posted form when the IdP takes HTTP-POST only).
func (s *Service) startSAML(c *call, conn store.SSOConnection, returnTo string) (int, any, error) {
	sp, err := s.samlSP(c.ctx, conn, true)
	if err != nil {
		return 0, nil, err
	}
	binding := saml.HTTPRedirectBinding
	loc := sp.GetSSOBindingLocation(binding)
	if loc == "" {
		binding = saml.HTTPPostBinding
		loc = sp.GetSSOBindingLocation(binding)
	}
	if loc == "" {
		return 0, nil, errors.New("saml: the IdP has no usable SingleSignOnService")
	}
	req, err := sp.MakeAuthenticationRequest(loc, binding, saml.HTTPPostBinding)
	if err != nil {
		return 0, nil, err
	}
	cookie, _ := samlCookieValue(c.r)
	now := s.clock.Now()
	flow, err := json.Marshal(samlFlow{Company: conn.CompanyID, Conn: conn.ID, Request: req.ID, ReturnTo: returnTo,
		Expires: now.Add(samlFlowTTL).Unix(), Browser: samlBrowserHash(cookie)})
	if err != nil {
		return 0, nil, err
	}
	relay := samlRelayPfx + base64.RawURLEncoding.EncodeToString(s.sealer.Seal(samlRelayKID, flow))
	secure := strings.HasPrefix(s.cfg.PublicURL, "https://")
	ck := &http.Cookie{Name: samlCookieName, Value: cookie, Path: samlCookiePath, MaxAge: int(samlFlowTTL / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	if secure {
		ck.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(c.w, ck)
	if binding == saml.HTTPRedirectBinding {
		u, err := req.Redirect(relay, sp)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusFound, redirect{location: u.String()}, nil
	}
	return http.StatusOK, samlPostPage(req, relay), nil
}

// samlPostPage is the auto-posting form of the HTTP-POST binding: its one
// script allowed by nonce, the form allowed to post to the IdP alone.
func samlPostPage(req *saml.AuthnRequest, relay string) rawDoc {
	nonce := randomSecret()
	action := req.Destination
	if u, err := url.Parse(req.Destination); err == nil {
		action = u.Scheme + "://" + u.Host
	}
	body := []byte(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head><body>`)
	body = append(body, req.PostWithNonce(relay, nonce)...)
	body = append(body, `</body></html>`...)
	return rawDoc{contentType: "text/html; charset=utf-8", body: body, header: map[string]string{
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; script-src 'nonce-" + nonce + "'; form-action " + action + "; base-uri 'none'; frame-ancestors 'none'",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}}
}

// samlRefusal answers a failed SAML sign-in as every SSO refusal
// (ssoRefuse): 401 with one generic message — or, once the RelayState
// opened, the redirect to the flow's return_to with #sso_error —, audited
// (sso.refused) and logged with its reason; never the Response or the
// RelayState.
func (s *Service) samlRefusal(c *call, reason string, conn *store.SSOConnection, flow *samlFlow) (int, any, error) {
	details := []string{"sso_kind", store.SSOKindSAML}
	returnTo := ""
	if flow != nil {
		returnTo = flow.ReturnTo
		if conn == nil {
			details = append(details, "connection", flow.Conn, "company_id", flow.Company)
		}
	}
	return s.ssoRefuse(c, conn, reason, returnTo, details...)
}

// samlReason names why crewjam refused a Response.
func samlReason(err error) string {
	var ivr *saml.InvalidResponseError
	if errors.As(err, &ivr) && ivr.PrivateErr != nil {
		err = ivr.PrivateErr
	}
	var status saml.ErrBadStatus
	switch {
	case errors.Is(err, saml.ErrAssertionReplayed):
		return ReasonSAMLReplayed
	case errors.As(err, &status):
		return ReasonSAMLIdPStatus
	case errors.Is(err, saml.ErrAudienceMismatch):
		return ReasonSAMLAudience
	case errors.Is(err, saml.ErrDestinationMismatch):
		return ReasonSAMLDestination
	case errors.Is(err, saml.ErrRequestIDMismatch):
		return ReasonSAMLRequest
	case errors.Is(err, saml.ErrIssuerMismatch):
		return ReasonSAMLIssuer
	case errors.Is(err, saml.ErrExpired), errors.Is(err, saml.ErrNotYetValid):
		return ReasonSAMLExpired
	case errors.Is(err, saml.ErrInvalidSignature), errors.Is(err, saml.ErrUntrustedCertificate), errors.Is(err, saml.ErrCertificateNotValidNow):
		return ReasonSAMLSignature
	case errors.Is(err, saml.ErrDecryptionFailed):
		return ReasonSAMLDecrypt
	case errors.Is(err, saml.ErrMalformedMessage):
		return ReasonSAMLMalformed
	}
	return ReasonSAMLInvalid
}

// handleSAMLACS is the assertion consumer service (HTTP-POST binding).
func (s *Service) handleSAMLACS(c *call) (int, any, error) {
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, samlMaxForm)
	if err := c.r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, nil, contract.NewError(http.StatusRequestEntityTooLarge, contract.CodeBadRequest, "the form is too large")
		}
		return s.samlRefusal(c, ReasonSAMLMalformed, nil, nil)
	}
	form := c.r.PostForm
	if len(form["SAMLResponse"]) != 1 || len(form["RelayState"]) > 1 || form.Get("SAMLart") != "" {
		return s.samlRefusal(c, ReasonSAMLMalformed, nil, nil)
	}
	flow, reason := s.samlOpenRelay(form.Get("RelayState"))
	if reason == ReasonSAMLStateExpiry {
		return s.samlRefusal(c, reason, nil, &flow)
	}
	if reason != "" {
		return s.samlRefusal(c, reason, nil, nil)
	}
	ck, err := c.r.Cookie(samlCookieName)
	if err != nil || subtle.ConstantTimeCompare([]byte(samlBrowserHash(ck.Value)), []byte(flow.Browser)) != 1 {
		return s.samlRefusal(c, ReasonSAMLBrowser, nil, &flow)
	}
	c.meta.CompanyID = flow.Company
	conn, err := s.store.GetSSOConnection(c.ctx, flow.Company, flow.Conn)
	if errors.Is(err, store.ErrNotFound) || err == nil && conn.Kind != store.SSOKindSAML {
		return s.samlRefusal(c, ReasonSAMLConnection, nil, &flow)
	}
	if err != nil {
		return 0, nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(form.Get("SAMLResponse")), ""))
	if err != nil || len(raw) == 0 {
		return s.samlRefusal(c, ReasonSAMLMalformed, &conn, &flow)
	}
	sp, err := s.samlSP(c.ctx, conn, true)
	if err != nil {
		return 0, nil, err
	}
	assertion, err := sp.ParseXMLResponse(raw, []string{flow.Request}, sp.AcsURL)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, err
		}
		return s.samlRefusal(c, samlReason(err), &conn, &flow)
	}
	// The request this RelayState started is answered once.
	first, err := s.counters.MarkOnce(c.ctx, "saml:request:"+flow.Request, samlFlowTTL+time.Minute)
	if err != nil {
		return 0, nil, err
	}
	if !first {
		return s.samlRefusal(c, ReasonSAMLReplayed, &conn, &flow)
	}
	id := samlIdentity(assertion, conn.Claims)
	if id.Email == "" {
		return s.samlRefusal(c, ReasonSAMLNoEmail, &conn, &flow)
	}
	return samlSignIn(s, c, conn, id, flow.ReturnTo)
}

// samlOpenRelay opens a RelayState: the flow, or the reason it is refused.
func (s *Service) samlOpenRelay(relay string) (samlFlow, string) {
	var flow samlFlow
	enc, ok := strings.CutPrefix(relay, samlRelayPfx)
	if !ok || len(enc) > 4096 {
		return flow, ReasonSAMLState
	}
	sealed, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return flow, ReasonSAMLState
	}
	plain, err := s.sealer.Open(samlRelayKID, sealed)
	if err != nil || json.Unmarshal(plain, &flow) != nil || flow.Conn == "" || flow.Company == "" || flow.Request == "" {
		return samlFlow{}, ReasonSAMLState
	}
	if !s.clock.Now().Before(time.Unix(flow.Expires, 0)) {
		return flow, ReasonSAMLStateExpiry
	}
	return flow, ""
}

// Attribute names that usually carry a user's email and name (LDAP OIDs,
// Microsoft's claim URIs, the plain names of Okta, Keycloak, Google).
var (
	samlEmailAttrs = []string{"email", "mail", "emailAddress", "urn:oid:0.9.2342.19200300.100.1.3",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
	samlNameAttrs = []string{"name", "displayName", "cn", "urn:oid:2.16.840.1.113730.3.1.241", "urn:oid:2.5.4.3",
		"http://schemas.microsoft.com/identity/claims/displayname"}
)

// samlIdentity is who a verified assertion says signed in: the NameID as
// subject; the email from the configured attribute, else the NameID when it
// is an address (emailAddress or unspecified format), else a usual email
// attribute; the name likewise.
func samlIdentity(a *saml.Assertion, claims map[string]string) ssoIdentity {
	var id ssoIdentity
	var nameID *saml.NameID
	if a.Subject != nil {
		nameID = a.Subject.NameID
	}
	if nameID != nil {
		id.Subject = strings.TrimSpace(nameID.Value)
	}
	// an attribute by its Name, else by its FriendlyName (what admin
	// consoles often show)
	attr := func(names ...string) string {
		for _, friendly := range []bool{false, true} {
			for _, n := range names {
				for _, st := range a.AttributeStatements {
					for _, at := range st.Attributes {
						if !friendly && at.Name != n || friendly && at.FriendlyName != n || len(at.Values) == 0 {
							continue
						}
						if v := strings.TrimSpace(at.Values[0].Value); v != "" {
							return v
						}
					}
				}
			}
		}
		return ""
	}
	if n := claims["email"]; n != "" {
		id.Email = attr(n)
	} else {
		if nameID != nil && (nameID.Format == string(saml.EmailAddressNameIDFormat) ||
			nameID.Format == "" || nameID.Format == string(saml.UnspecifiedNameIDFormat)) && samlIsAddress(id.Subject) {
			id.Email = id.Subject
		}
		if id.Email == "" {
			id.Email = attr(samlEmailAttrs...)
		}
	}
	if !samlIsAddress(id.Email) {
		id.Email = ""
	}
	if n := claims["name"]; n != "" {
		id.Name = attr(n)
	} else {
		id.Name = attr(samlNameAttrs...)
	}
	id.Name = truncate(id.Name, 200)
	return id
}

func samlIsAddress(v string) bool {
	if v == "" || len(v) > 254 || strings.ContainsAny(v, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(v)
	return err == nil && a.Address == v
}
