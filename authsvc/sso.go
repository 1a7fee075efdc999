package authsvc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/erpgate/erpgate/authsvc/loginname"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// Enterprise SSO per company: connections (admin API), home-realm
// discovery and the OIDC flow. Owned by the SSO work (issue #17).
//
// A connection belongs to one company and names the email domains whose
// people sign in through it. Its OIDC client secret is sealed under the
// master key (bound to the connection's id) and never answered. A flow
// starts at GET /api/v1/auth/sso/{company}/start, goes to the identity
// provider and comes back to GET /api/v1/auth/sso/callback (OIDC) or the
// SAML ACS; both end in ssoSignIn, which ends in finishLogin: the same
// login answer as a password, then select-company as always.

// ssoRoutes are the SSO endpoints (OIDC and the connections' admin API).
var ssoRoutes = map[string]handlerFunc{
	"GET /api/v1/admin/companies/{id}/sso":                 (*Service).handleSSOList,
	"POST /api/v1/admin/companies/{id}/sso":                (*Service).handleSSOCreate,
	"GET /api/v1/admin/companies/{id}/sso/{connection}":    (*Service).handleSSOGet,
	"DELETE /api/v1/admin/companies/{id}/sso/{connection}": (*Service).handleSSODelete,
	"GET /api/v1/auth/sso/{company}/start":                 (*Service).handleSSOStart,
	"GET /api/v1/auth/sso/callback":                        (*Service).handleSSOCallback,
}

// Paths of the SSO flows (the SAML ones are served by saml.go).
const (
	ssoCallbackPath     = "/api/v1/auth/sso/callback"
	ssoSAMLACSPath      = "/api/v1/auth/sso/saml/acs"
	ssoSAMLMetadataPath = "/api/v1/auth/sso/saml/metadata"
	ssoCookiePath       = "/api/v1/auth/sso"
)

// Audit reasons of refused SSO sign-ins (store.EventSSORefused).
const (
	ReasonSSOState          = "state_invalid"        // no state, no or another flow's cookie, or a cookie that does not open
	ReasonSSOStateExpired   = "state_expired"        // the flow is older than ssoFlowTTL
	ReasonSSOStateReplayed  = "state_replayed"       // the flow's state came back a second time
	ReasonSSOIdPError       = "idp_error"            // the IdP answered with an error
	ReasonSSOConnectionGone = "connection_gone"      // the connection was deleted during the flow
	ReasonSSOExchange       = "code_exchange"        // the token endpoint refused the code (or did not answer)
	ReasonSSOIDToken        = "id_token_invalid"     // signature, issuer, audience, expiry
	ReasonSSONonce          = "nonce_mismatch"       // the ID token's nonce is not the flow's
	ReasonSSOEmail          = "email_missing"        // no usable email claim
	ReasonSSOEmailUnverif   = "email_unverified"     // email_verified is false
	ReasonSSODomain         = "domain_not_allowed"   // the email's domain is not one of the connection's
	ReasonSSONoAccount      = "not_provisioned"      // no account and JIT off, or a look-alike account exists
	ReasonSSONotMember      = "not_member"           // the account is not a member of the connection's company
	ReasonSSODisabled       = "user_disabled"        // the account is disabled or locked
	ReasonSSOProviderFailed = "provider_unavailable" // discovery or JWKS could not be read
)

// ssoState is the SSO feature's state in the Service.
type ssoState struct {
	client *http.Client // outbound: discovery, JWKS, token and userinfo endpoints

	mu        sync.Mutex
	providers map[string]*cachedProvider // issuer → discovery
}

func (s *Service) initSSO() error {
	s.sso.client = newSSOClient(s.cfg.SSOAllowPrivate)
	s.sso.providers = map[string]*cachedProvider{}
	return nil
}

// Limits of a connection's settings.
const (
	maxSSODomains   = 50
	maxSSOScopes    = 20
	maxSSONameLen   = 200
	maxSSOURLLen    = 2048
	maxClientIDLen  = 255
	maxClientSecret = 1024
)

// ssoConnectionInput is the body of POST /api/v1/admin/companies/{id}/sso.
type ssoConnectionInput struct {
	Kind        string               `json:"kind"`
	Name        string               `json:"name"`
	Domains     []string             `json:"domains"`
	JIT         bool                 `json:"jit"`
	DefaultRole string               `json:"default_role"`
	Required    bool                 `json:"required"`
	OIDC        *oidcConnectionInput `json:"oidc"`
	SAML        *samlConnectionInput `json:"saml"`
}

// oidcConnectionInput is the `oidc` member of a new connection.
type oidcConnectionInput struct {
	Issuer       string            `json:"issuer"`
	ClientID     string            `json:"client_id"`
	ClientSecret string            `json:"client_secret"`
	Scopes       []string          `json:"scopes"`
	Claims       map[string]string `json:"claims"`
}

// ssoConnectionView is how the admin API shows a connection (never a secret).
type ssoConnectionView struct {
	ID          string       `json:"id"`
	CompanyID   string       `json:"company_id"`
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Domains     []string     `json:"domains"`
	JIT         bool         `json:"jit"`
	DefaultRole string       `json:"default_role"`
	Required    bool         `json:"required"`
	CreatedAt   time.Time    `json:"created_at"`
	StartURL    string       `json:"start_url"`
	RedirectURI string       `json:"redirect_uri,omitempty"` // OIDC: register it at the IdP
	ACSURL      string       `json:"acs_url,omitempty"`      // SAML
	MetadataURL string       `json:"metadata_url,omitempty"` // SAML: the SP's metadata
	OIDC        *oidcView    `json:"oidc,omitempty"`
	SAML        *samlIdPView `json:"saml,omitempty"`
}

type oidcView struct {
	Issuer          string            `json:"issuer"`
	ClientID        string            `json:"client_id"`
	ClientSecretSet bool              `json:"client_secret_set"`
	Scopes          []string          `json:"scopes"`
	Claims          map[string]string `json:"claims"`
}

type samlIdPView struct {
	IdPMetadataURL string `json:"idp_metadata_url,omitempty"`
}

func (s *Service) ssoStartURL(conn store.SSOConnection) string {
	return s.cfg.PublicURL + "/api/v1/auth/sso/" + url.PathEscape(conn.CompanyID) + "/start?connection=" + url.QueryEscape(conn.ID)
}

func (s *Service) viewSSO(conn store.SSOConnection) ssoConnectionView {
	v := ssoConnectionView{ID: conn.ID, CompanyID: conn.CompanyID, Kind: conn.Kind, Name: conn.Name, Domains: slices.Clone(conn.Domains),
		JIT: conn.JIT, DefaultRole: conn.DefaultRole, Required: conn.Required, CreatedAt: conn.CreatedAt.UTC(), StartURL: s.ssoStartURL(conn)}
	if v.Domains == nil {
		v.Domains = []string{}
	}
	switch conn.Kind {
	case store.SSOKindOIDC:
		claims := map[string]string{"email": ssoClaim(conn, "email"), "name": ssoClaim(conn, "name")}
		v.RedirectURI = s.cfg.PublicURL + ssoCallbackPath
		v.OIDC = &oidcView{Issuer: conn.Issuer, ClientID: conn.ClientID, ClientSecretSet: len(conn.SealedClientSecret) > 0,
			Scopes: slices.Clone(conn.Scopes), Claims: claims}
	case store.SSOKindSAML:
		v.ACSURL = s.cfg.PublicURL + ssoSAMLACSPath
		v.MetadataURL = s.samlEntityID(conn)
		v.SAML = &samlIdPView{IdPMetadataURL: conn.IdPMetadataURL}
	}
	return v
}

// ssoClaim is the claim (OIDC) or attribute (SAML) a connection reads
// the user's key ("email", "name") from.
func ssoClaim(conn store.SSOConnection, key string) string {
	if v := conn.Claims[key]; v != "" {
		return v
	}
	return key
}

// ssoCompanyAdmin checks the caller may manage the company's connections
// (a platform admin, or an owner or admin with a token of that company)
// and that the company exists.
func (s *Service) ssoCompanyAdmin(c *call) (*admin, error) {
	a, err := s.adminCaller(c)
	if err != nil {
		return nil, err
	}
	companyID := c.params[0]
	if !a.platform {
		if !canManageKeys(a.roles) {
			return nil, errForbidden("this needs the owner or admin role of the company, or a platform admin")
		}
		if companyID != a.claims.CompanyID {
			return nil, contract.NewError(http.StatusForbidden, contract.CodeCompanyMismatch, "you can manage the SSO connections of your own company only")
		}
	}
	if _, err := s.store.GetCompany(c.ctx, companyID); errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no such company")
	} else if err != nil {
		return nil, err
	}
	return a, nil
}

func (s *Service) handleSSOList(c *call) (int, any, error) {
	if _, err := s.ssoCompanyAdmin(c); err != nil {
		return 0, nil, err
	}
	list, err := s.store.ListSSOConnections(c.ctx, c.params[0])
	if err != nil {
		return 0, nil, err
	}
	out := make([]ssoConnectionView, 0, len(list))
	for _, conn := range list {
		out = append(out, s.viewSSO(conn))
	}
	return http.StatusOK, out, nil
}

func (s *Service) handleSSOGet(c *call) (int, any, error) {
	if _, err := s.ssoCompanyAdmin(c); err != nil {
		return 0, nil, err
	}
	conn, err := s.store.GetSSOConnection(c.ctx, c.params[0], c.params[1])
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such SSO connection")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.viewSSO(conn), nil
}

func (s *Service) handleSSODelete(c *call) (int, any, error) {
	if _, err := s.ssoCompanyAdmin(c); err != nil {
		return 0, nil, err
	}
	companyID, id := c.params[0], c.params[1]
	conn, err := s.store.GetSSOConnection(c.ctx, companyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such SSO connection")
	}
	if err != nil {
		return 0, nil, err
	}
	ev := s.adminEvent(c, store.EventSSOConnectionDeleted, companyID, id, map[string]string{"kind": conn.Kind, "name": conn.Name,
		"domains": strings.Join(conn.Domains, " ")})
	err = s.store.DeleteSSOConnection(c.ctx, companyID, id, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such SSO connection")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"id": id, "company_id": companyID, "deleted": true}, nil
}

func (s *Service) handleSSOCreate(c *call) (int, any, error) {
	if _, err := s.ssoCompanyAdmin(c); err != nil {
		return 0, nil, err
	}
	var in ssoConnectionInput
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	conn := store.SSOConnection{ID: uuid.NewString(), CompanyID: c.params[0], Kind: in.Kind, JIT: in.JIT, Required: in.Required,
		CreatedAt: s.clock.Now()}
	conn.Name = strings.TrimSpace(in.Name)
	if conn.Name == "" || len(conn.Name) > maxSSONameLen {
		return 0, nil, invalid("name", "name is 1 to 200 characters")
	}
	domains, err := ssoDomains(in.Domains)
	if err != nil {
		return 0, nil, err
	}
	conn.Domains = domains
	conn.DefaultRole = in.DefaultRole
	if conn.DefaultRole == "" {
		conn.DefaultRole = RoleViewer
	}
	if !ValidRole(conn.DefaultRole) {
		return 0, nil, invalid("default_role", "default_role is one of admin, accountant, sales, viewer")
	}
	if conn.DefaultRole == RoleOwner {
		// Anyone the IdP vouches for would own the company.
		return 0, nil, invalid("default_role", "default_role may not be owner: grant it to a person through the memberships API")
	}
	switch in.Kind {
	case store.SSOKindOIDC:
		if in.SAML != nil {
			return 0, nil, invalid("saml", "an oidc connection takes no saml member")
		}
		if in.OIDC == nil {
			return 0, nil, invalid("oidc", "oidc {issuer, client_id, client_secret} is required")
		}
		if err := s.prepareOIDCConnection(c, &conn, *in.OIDC); err != nil {
			return 0, nil, err
		}
	case store.SSOKindSAML:
		if in.OIDC != nil {
			return 0, nil, invalid("oidc", "a saml connection takes no oidc member")
		}
		if in.SAML == nil {
			return 0, nil, invalid("saml", "saml {metadata_url or metadata_xml} is required")
		}
		if err := s.prepareSAMLConnection(c.ctx, &conn, *in.SAML); err != nil {
			if _, ok := contract.AsError(err); ok {
				return 0, nil, err
			}
			s.logger.Warn("saml connection refused", zap.String("company_id", conn.CompanyID), zap.Error(err))
			return 0, nil, invalid("saml", "the SAML connection could not be prepared")
		}
	default:
		return 0, nil, invalid("kind", `kind is "oidc" or "saml"`)
	}
	ev := s.adminEvent(c, store.EventSSOConnectionCreated, conn.CompanyID, conn.ID, map[string]string{"kind": conn.Kind, "name": conn.Name,
		"domains": strings.Join(conn.Domains, " "), "jit": boolString(conn.JIT), "required": boolString(conn.Required), "default_role": conn.DefaultRole})
	if conn.Kind == store.SSOKindOIDC {
		ev.Details["issuer"], ev.Details["client_id"] = conn.Issuer, conn.ClientID
	}
	err = s.store.CreateSSOConnection(c.ctx, conn, ev)
	if errors.Is(err, store.ErrConflict) {
		return 0, nil, errConflict("one of the domains belongs to another SSO connection")
	}
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such company")
	}
	if err != nil {
		return 0, nil, err
	}
	conn.CreatedAt = conn.CreatedAt.UTC().Truncate(time.Microsecond)
	return http.StatusCreated, s.viewSSO(conn), nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// scopeTokenRe is an OAuth scope token (RFC 6749 §3.3).
var scopeTokenRe = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`)

// claimNameRe is a claim name a connection may map (letters, digits and
// the punctuation of URL-shaped claim names).
var claimNameRe = regexp.MustCompile(`^[A-Za-z0-9_:/.\-#]{1,256}$`)

// prepareOIDCConnection validates the oidc member, reads the issuer's
// discovery document (through the SSRF-safe client) and seals the secret.
func (s *Service) prepareOIDCConnection(c *call, conn *store.SSOConnection, in oidcConnectionInput) error {
	issuer, err := s.ssoIssuer(in.Issuer)
	if err != nil {
		return err
	}
	if in.ClientID == "" || len(in.ClientID) > maxClientIDLen || strings.ContainsFunc(in.ClientID, isControl) {
		return invalid("oidc.client_id", "client_id is 1 to 255 printable characters")
	}
	if in.ClientSecret == "" || len(in.ClientSecret) > maxClientSecret || strings.ContainsFunc(in.ClientSecret, isControl) {
		return invalid("oidc.client_secret", "client_secret is 1 to 1024 printable characters")
	}
	scopes := in.Scopes
	if scopes == nil {
		scopes = []string{"openid", "email", "profile"}
	}
	if len(scopes) > maxSSOScopes {
		return invalid("oidc.scopes", "at most 20 scopes")
	}
	seen := map[string]bool{}
	for _, sc := range scopes {
		if !scopeTokenRe.MatchString(sc) {
			return invalid("oidc.scopes", "a scope is 1 to 128 characters of the OAuth scope alphabet (RFC 6749 §3.3)")
		}
		if seen[sc] {
			return invalid("oidc.scopes", "scope "+sc+" is listed twice")
		}
		seen[sc] = true
	}
	if !seen["openid"] {
		return invalid("oidc.scopes", "scopes must include openid")
	}
	claims := map[string]string{}
	for k, v := range in.Claims {
		if k != "email" && k != "name" {
			return invalid("oidc.claims", "claims maps email and name only")
		}
		if !claimNameRe.MatchString(v) {
			return invalid("oidc.claims", "a claim name is 1 to 256 letters, digits or _:/.-#")
		}
		claims[k] = v
	}
	if _, err := s.oidcProvider(c.ctx, issuer); err != nil {
		s.logger.Info("sso issuer discovery failed", zap.String("issuer", issuer), zap.Error(err))
		return invalid("oidc.issuer", "the issuer's discovery document (/.well-known/openid-configuration) could not be read, or names another issuer")
	}
	conn.Issuer, conn.ClientID, conn.Scopes, conn.Claims = issuer, in.ClientID, slices.Clone(scopes), claims
	conn.SealedClientSecret = s.sealer.Seal(ssoSecretAAD(conn.ID), []byte(in.ClientSecret))
	return nil
}

// ssoSecretAAD binds a sealed client secret to its connection: a sealed
// value copied onto another connection's row does not open.
func ssoSecretAAD(connID string) string { return "sso-client-secret:" + connID }

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ssoIssuer checks an issuer URL: https (http only with SSOAllowPrivate),
// a host, no credentials, query or fragment.
func (s *Service) ssoIssuer(raw string) (string, error) {
	const field = "oidc.issuer"
	if raw == "" || len(raw) > maxSSOURLLen {
		return "", invalid(field, "issuer is an https URL of at most 2048 characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", invalid(field, "issuer is an absolute https URL")
	case u.Scheme != "https" && !(u.Scheme == "http" && s.cfg.SSOAllowPrivate):
		return "", invalid(field, "issuer must be an https URL")
	case u.User != nil:
		return "", invalid(field, "issuer must not hold credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", invalid(field, "issuer has no query or fragment (OpenID Connect Discovery §2)")
	}
	return raw, nil
}

// ssoDomains normalises a connection's domains: each a registrable DNS
// domain (not a public suffix such as com or co.uk), written in lower
// case in its A-label or Unicode form, stored as A-labels; no duplicates.
func ssoDomains(in []string) ([]string, error) {
	const field = "domains"
	if len(in) == 0 || len(in) > maxSSODomains {
		return nil, invalid(field, "domains is a list of 1 to 50 email domains")
	}
	out := make([]string, 0, len(in))
	for _, raw := range in {
		d, err := ssoDomain(raw)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, d) {
			return nil, invalid(field, "domain "+d+" is listed twice")
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}

// ssoIDNA turns a canonical (Unicode) domain into its A-label form.
var ssoIDNA = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true), idna.StrictDomainName(true), idna.VerifyDNSLength(true))

func ssoDomain(raw string) (string, error) {
	const field = "domains"
	bad := func(msg string) error { return invalid(field, "domain "+stringQuote(raw)+": "+msg) }
	if raw == "" || len(raw) > 253 {
		return "", bad("a domain is 1 to 253 characters")
	}
	// The same IDNA rules as the domain of a login name.
	n, err := loginname.Normalize("x@" + raw)
	if err != nil {
		return "", bad("not a valid domain name (IDNA)")
	}
	unicodeForm := n.Email[strings.LastIndexByte(n.Email, '@')+1:]
	ascii, err := ssoIDNA.ToASCII(unicodeForm)
	if err != nil {
		return "", bad("not a valid domain name (IDNA)")
	}
	if raw != ascii && raw != unicodeForm {
		return "", bad("write it in lower case, as " + ascii)
	}
	if !strings.Contains(ascii, ".") {
		return "", bad("a top-level domain alone is not an organisation's domain")
	}
	if ps, _ := publicsuffix.PublicSuffix(ascii); ps == ascii {
		return "", bad("a public suffix (such as com or co.uk) is not an organisation's domain")
	}
	return ascii, nil
}

func stringQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// emailDomain is the A-label domain of a canonical login name.
func emailDomain(email string) (string, bool) {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return "", false
	}
	d, err := ssoIDNA.ToASCII(email[at+1:])
	return d, err == nil && d != ""
}

// ssoRequired answers a login whose email domain must sign in through its
// company's identity provider: the login answer (sso_required, sso_url)
// and true; false for every other address.
func (s *Service) ssoRequired(c *call, email string) (any, bool, error) {
	d, ok := emailDomain(email)
	if !ok {
		return nil, false, nil
	}
	conn, err := s.store.SSOConnectionForDomain(c.ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !conn.Required {
		return nil, false, nil
	}
	return map[string]any{
		"sso_required":  true,
		"sso_url":       s.ssoStartURL(conn),
		"company_id":    conn.CompanyID,
		"connection_id": conn.ID,
	}, true, nil
}

// ssoIdentity is who an identity provider says signed in.
type ssoIdentity struct {
	Subject string // the IdP's stable id of the user (OIDC sub, SAML NameID)
	Email   string // as the IdP asserts it (normalised by ssoSignIn)
	Name    string
}

// errSSORefused is the one answer to every refused SSO sign-in: which
// check failed is in the audit record, not in the answer.
func errSSORefused() error {
	return unauthenticated(contract.CodeUnauthenticated, "the sign-in with your identity provider could not be completed; try again or contact your administrator", hdrLogin)
}

// ssoRefuse audits a refused SSO sign-in and answers it: with returnTo,
// a redirect to the hosted page with the error in the fragment
// (#sso_error=base64url({code, message})); without, the 401 envelope.
func (s *Service) ssoRefuse(c *call, conn *store.SSOConnection, reason, returnTo string, details ...string) (int, any, error) {
	if conn != nil {
		details = append(details, "connection", conn.ID, "company_id", conn.CompanyID, "sso_kind", conn.Kind)
	}
	if ce := s.refusals.CheckLine(zap.InfoLevel, "sso sign-in refused", reason); ce != nil {
		ce.Write(zap.String("reason", reason), zap.String("ip", c.ip), zap.String("request_id", c.meta.RequestID))
	}
	err := s.refuse(c, store.EventSSORefused, reason, errSSORefused(), details...)
	if returnTo == "" {
		return 0, nil, err
	}
	ce, ok := contract.AsError(err)
	if !ok { // the audit record could not be written
		return 0, nil, err
	}
	b, _ := json.Marshal(map[string]string{"code": ce.Code, "message": ce.Message})
	return http.StatusFound, redirect{location: s.cfg.PublicURL + returnTo + "#sso_error=" + base64.RawURLEncoding.EncodeToString(b)}, nil
}

// ssoSignIn ends every SSO flow (OIDC callback, SAML ACS) whose answer
// from the IdP was verified: the email's domain must be one of the
// connection's, the user is found (or provisioned when the connection's
// JIT is on) and must be a member of the connection's company; then
// finishLogin. returnTo, when not empty, is the hosted page the flow
// started from: the answer is a redirect to it with the login answer in
// the fragment instead of the JSON envelope.
func (s *Service) ssoSignIn(c *call, conn store.SSOConnection, id ssoIdentity, returnTo string) (int, any, error) {
	name, err := loginname.Normalize(id.Email)
	if err != nil {
		return s.ssoRefuse(c, &conn, ReasonSSOEmail, returnTo)
	}
	email := name.Email
	d, ok := emailDomain(email)
	if !ok || !slices.Contains(conn.Domains, d) {
		return s.ssoRefuse(c, &conn, ReasonSSODomain, returnTo, "email_domain", d)
	}
	user, err := s.store.GetUserByEmail(c.ctx, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !conn.JIT {
			return s.ssoRefuse(c, &conn, ReasonSSONoAccount, returnTo, "email", email)
		}
		user, err = s.provisionSSOUser(c, conn, id, email)
		if errors.Is(err, store.ErrConflict) {
			// Made by a parallel sign-in a moment ago: sign in to it as to
			// any existing account; a look-alike of another: refused.
			if user, err = s.store.GetUserByEmail(c.ctx, email); errors.Is(err, store.ErrNotFound) {
				return s.ssoRefuse(c, &conn, ReasonSSONoAccount, returnTo, "email", email, "look_alike", "true")
			}
		}
		if err != nil {
			return 0, nil, err
		}
	case err != nil:
		return 0, nil, err
	}
	if user.Disabled || user.Locked {
		return s.ssoRefuse(c, &conn, ReasonSSODisabled, returnTo, "user_id", user.ID)
	}
	// A member of the connection's company, now: JIT never gives back a
	// membership an admin removed.
	if _, err := s.store.GetAccess(c.ctx, user.ID, conn.CompanyID); errors.Is(err, store.ErrNotFound) {
		return s.ssoRefuse(c, &conn, ReasonSSONotMember, returnTo, "user_id", user.ID)
	} else if err != nil {
		return 0, nil, err
	}
	status, data, err := s.finishLogin(c, loginAttempt{user: user, first: FirstSSO, deviceToken: s.deviceToken(c, ""),
		details: map[string]string{"sso_connection": conn.ID, "sso_kind": conn.Kind, "sso_company": conn.CompanyID}})
	if err != nil || returnTo == "" {
		if err != nil && returnTo != "" {
			if ce, ok := contract.AsError(err); ok && ce.Status < 500 {
				b, _ := json.Marshal(map[string]string{"code": ce.Code, "message": ce.Message})
				return http.StatusFound, redirect{location: s.cfg.PublicURL + returnTo + "#sso_error=" + base64.RawURLEncoding.EncodeToString(b)}, nil
			}
		}
		return status, data, err
	}
	b, err := json.Marshal(data)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusFound, redirect{location: s.cfg.PublicURL + returnTo + "#sso_result=" + base64.RawURLEncoding.EncodeToString(b)}, nil
}

// provisionSSOUser makes the account of a first SSO sign-in and its
// membership of the connection's company with the default role. Its
// password is a random one nobody knows (hashed like any): the account
// signs in through its IdP until an admin resets the password.
func (s *Service) provisionSSOUser(c *call, conn store.SSOConnection, id ssoIdentity, email string) (store.User, error) {
	h, err := s.hash(c.ctx, randomSecret())
	if err != nil {
		return store.User{}, err
	}
	now := s.clock.Now()
	displayName := strings.TrimSpace(strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, id.Name))
	for len(displayName) > 200 { // cut whole characters
		_, size := utf8.DecodeLastRuneInString(displayName)
		displayName = displayName[:len(displayName)-size]
	}
	u := store.User{ID: uuid.NewString(), Email: email, Name: displayName, PasswordHash: h, PasswordChangedAt: now, CreatedAt: now}
	m := store.Membership{UserID: u.ID, CompanyID: conn.CompanyID, Roles: []string{conn.DefaultRole}, CreatedAt: now}
	ev := s.event(c, store.EventSSOUserProvisioned)
	ev.ActorID, ev.SubjectID, ev.CompanyID = u.ID, u.ID, conn.CompanyID
	ev.Details = map[string]string{"email": email, "connection": conn.ID, "sso_kind": conn.Kind, "role": conn.DefaultRole}
	if err := s.store.ProvisionSSOUser(c.ctx, u, m, ev); err != nil {
		return store.User{}, err
	}
	s.logger.Info("sso user provisioned", zap.String("user_id", u.ID), zap.String("company_id", conn.CompanyID), zap.String("connection", conn.ID))
	u.CreatedAt, u.PasswordChangedAt = u.CreatedAt.UTC().Truncate(time.Microsecond), u.PasswordChangedAt.UTC().Truncate(time.Microsecond)
	return u, nil
}
