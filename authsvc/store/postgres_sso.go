package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const ssoColumns = `id, company_id, kind, name, jit, default_role, required, issuer, client_id, sealed_client_secret, scopes, claims,
	idp_metadata_url, idp_metadata_xml, sealed_sp_key, sp_cert, created_at,
	ARRAY(SELECT domain FROM sso_domains d WHERE d.connection_id = c.id ORDER BY domain)`

func scanSSO(row pgx.Row) (SSOConnection, error) {
	var c SSOConnection
	err := row.Scan(&c.ID, &c.CompanyID, &c.Kind, &c.Name, &c.JIT, &c.DefaultRole, &c.Required, &c.Issuer, &c.ClientID, &c.SealedClientSecret,
		&c.Scopes, &c.Claims, &c.IdPMetadataURL, &c.IdPMetadataXML, &c.SealedSPKey, &c.SPCert, &c.CreatedAt, &c.Domains)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

func (p *Postgres) CreateSSOConnection(ctx context.Context, c SSOConnection, ev Event) error {
	if !validUUID(c.ID) {
		return fmt.Errorf("create sso connection: the id is not a UUID")
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	if c.Claims == nil {
		c.Claims = map[string]string{}
	}
	first := &pgx.Batch{}
	first.Queue(`INSERT INTO sso_connections (id, company_id, kind, name, jit, default_role, required, issuer, client_id, sealed_client_secret,
		scopes, claims, idp_metadata_url, idp_metadata_xml, sealed_sp_key, sp_cert, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		c.ID, c.CompanyID, c.Kind, c.Name, c.JIT, c.DefaultRole, c.Required, c.Issuer, c.ClientID, c.SealedClientSecret,
		c.Scopes, c.Claims, c.IdPMetadataURL, c.IdPMetadataXML, c.SealedSPKey, c.SPCert, micro(c.CreatedAt))
	if len(c.Domains) > 0 {
		first.Queue(`INSERT INTO sso_domains (domain, connection_id) SELECT d, $2 FROM unnest($1::text[]) AS d`, c.Domains, c.ID)
	}
	return wrap("create sso connection", p.inTx(ctx, txSpec{scope: companyScope(c.CompanyID), first: first, ev: &ev, lockFirst: true}, func(*tx) error { return nil }))
}

func (p *Postgres) ListSSOConnections(ctx context.Context, companyID string) ([]SSOConnection, error) {
	out, err := readRows(ctx, p, companyScope(companyID), scanSSO,
		`SELECT `+ssoColumns+` FROM sso_connections c WHERE company_id = $1 ORDER BY created_at, id`, companyID)
	if err != nil {
		return nil, wrap("list sso connections", err)
	}
	return out, nil
}

func (p *Postgres) GetSSOConnection(ctx context.Context, companyID, id string) (SSOConnection, error) {
	if !validUUID(id) {
		return SSOConnection{}, fmt.Errorf("get sso connection: %w", ErrNotFound)
	}
	c, err := readRow(ctx, p, companyScope(companyID), scanSSO, `SELECT `+ssoColumns+` FROM sso_connections c WHERE id = $1 AND company_id = $2`, id, companyID)
	return c, wrap("get sso connection", err)
}

func (p *Postgres) DeleteSSOConnection(ctx context.Context, companyID, id string, ev Event) error {
	if !validUUID(id) {
		return fmt.Errorf("delete sso connection: %w", ErrNotFound)
	}
	return wrap("delete sso connection", p.execAudited(ctx, companyScope(companyID), ev, `DELETE FROM sso_connections WHERE id = $1 AND company_id = $2`, id, companyID))
}

func (p *Postgres) SSOConnectionForDomain(ctx context.Context, domain string) (SSOConnection, error) {
	c, err := readRow(ctx, p, ssoDomainScope(domain), scanSSO, `SELECT `+ssoColumns+` FROM sso_connections c
		WHERE id = (SELECT connection_id FROM sso_domains WHERE domain = $1)`, domain)
	return c, wrap("sso connection for domain", err)
}

func (p *Postgres) ProvisionSSOUser(ctx context.Context, u User, m Membership, ev Event) error {
	if !validUUID(u.ID) || m.UserID != u.ID {
		return fmt.Errorf("provision sso user: invalid id")
	}
	skeleton, err := emailSkeleton(u.Email)
	if err != nil {
		return err
	}
	// One transaction: a user made without their membership would be
	// refused at every later sign-in (JIT provisions new users only).
	first := &pgx.Batch{}
	first.Queue(`INSERT INTO users (id, email, email_skeleton, name, password_hash, platform_admin, disabled, password_changed_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Email, skeleton, u.Name, u.PasswordHash, u.PlatformAdmin, u.Disabled, micro(u.PasswordChangedAt), micro(u.CreatedAt))
	first.Queue(`INSERT INTO memberships (user_id, company_id, roles, created_at) VALUES ($1, $2, $3, $4)`,
		m.UserID, m.CompanyID, m.Roles, micro(m.CreatedAt))
	return wrap("provision sso user", p.inTx(ctx, txSpec{scope: companyScope(m.CompanyID), first: first, ev: &ev, lockFirst: true}, func(*tx) error { return nil }))
}
