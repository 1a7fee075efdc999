-- Companies' SSO connections (OpenID Connect or SAML 2.0). Secrets are
-- sealed by the service (AES-256-GCM under the master key). A domain
-- belongs to at most one connection (home-realm discovery).
CREATE TABLE sso_connections (
	id                   uuid PRIMARY KEY,
	company_id           text NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
	kind                 text NOT NULL CHECK (kind IN ('oidc', 'saml')),
	name                 text NOT NULL,
	jit                  boolean NOT NULL,
	default_role         text NOT NULL,
	required             boolean NOT NULL,
	issuer               text NOT NULL DEFAULT '',
	client_id            text NOT NULL DEFAULT '',
	sealed_client_secret bytea,
	scopes               text[] NOT NULL DEFAULT '{}',
	claims               jsonb NOT NULL DEFAULT '{}',
	idp_metadata_url     text NOT NULL DEFAULT '',
	idp_metadata_xml     bytea,
	sealed_sp_key        bytea,
	sp_cert              bytea,
	created_at           timestamptz NOT NULL
);
CREATE INDEX sso_connections_company ON sso_connections (company_id, created_at);

CREATE TABLE sso_domains (
	domain        text PRIMARY KEY,
	connection_id uuid NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE
);
CREATE INDEX sso_domains_connection ON sso_domains (connection_id);
