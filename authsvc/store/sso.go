package store

import (
	"context"
	"time"
)

// Audit event types of SSO (admin.* are erp.admin.* events, the others
// erp.auth.*).
const (
	EventSSOConnectionCreated = "admin.sso.created"
	EventSSOConnectionDeleted = "admin.sso.deleted"
	// EventSSOUserProvisioned: a first sign-in through a connection with
	// JIT made the account and its membership.
	EventSSOUserProvisioned = "sso.user_provisioned"
	// EventSSORefused: an SSO flow did not sign anyone in (details: reason).
	EventSSORefused = "sso.refused"
)

// SSO connection kinds.
const (
	SSOKindOIDC = "oidc"
	SSOKindSAML = "saml"
)

// SSOConnection is a company's enterprise sign-in: an OpenID Connect
// provider or a SAML 2.0 identity provider. Secrets (the OIDC client
// secret, the SAML SP private key) are sealed by the caller under the
// master key; the store never sees them in the clear.
type SSOConnection struct {
	ID        string
	CompanyID string
	Kind      string // SSOKindOIDC or SSOKindSAML
	Name      string
	// Domains are the email domains (lower case, IDNA ASCII) whose users
	// sign in through this connection (home-realm discovery). A domain
	// belongs to at most one connection of any company.
	Domains []string
	// JIT provisions a user at their first sign-in (a new account and a
	// membership with DefaultRole); off: only existing members sign in.
	JIT         bool
	DefaultRole string
	// Required refuses passwords for the Domains: a login answers
	// sso_required with the start URL.
	Required bool

	// OIDC
	Issuer             string
	ClientID           string
	SealedClientSecret []byte
	Scopes             []string
	// Claims maps the user's attributes to the ID token's claims (keys
	// "email", "name"; defaults "email", "name"). For SAML, to attribute
	// names (the NameID is the email by default).
	Claims map[string]string

	// SAML
	IdPMetadataURL string
	IdPMetadataXML []byte // given, or the last fetched copy
	SealedSPKey    []byte // the SP's private key (PKCS#8 DER), sealed
	SPCert         []byte // the SP's certificate (DER)

	CreatedAt time.Time
}

// SSOStore keeps the companies' SSO connections.
type SSOStore interface {
	// CreateSSOConnection stores a new connection; ErrConflict when one of
	// its domains belongs to another connection, ErrNotFound when the
	// company does not exist.
	CreateSSOConnection(ctx context.Context, conn SSOConnection, ev Event) error
	// ListSSOConnections are the company's connections, oldest first.
	ListSSOConnections(ctx context.Context, companyID string) ([]SSOConnection, error)
	// GetSSOConnection is one connection of the company; ErrNotFound for
	// another company's.
	GetSSOConnection(ctx context.Context, companyID, id string) (SSOConnection, error)
	// DeleteSSOConnection removes a connection of the company; ErrNotFound
	// for another company's.
	DeleteSSOConnection(ctx context.Context, companyID, id string, ev Event) error
	// SSOConnectionForDomain is the connection that owns an email domain;
	// ErrNotFound when none does.
	SSOConnectionForDomain(ctx context.Context, domain string) (SSOConnection, error)
	// ProvisionSSOUser creates a user and their one membership together
	// (just-in-time provisioning): both or neither. ErrConflict when the
	// email (or a look-alike) is taken, ErrNotFound when the company does
	// not exist.
	ProvisionSSOUser(ctx context.Context, u User, m Membership, ev Event) error
}
