-- The auth service's schema: tenants, users, memberships, sessions with their
-- refresh-token families, API keys and signing keys.
CREATE TABLE companies (
	id         text PRIMARY KEY,
	name       text NOT NULL,
	plan       text NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE TABLE users (
	id                  uuid PRIMARY KEY,
	email               text NOT NULL UNIQUE,
	name                text NOT NULL DEFAULT '',
	password_hash       text NOT NULL,
	platform_admin      boolean NOT NULL DEFAULT false,
	disabled            boolean NOT NULL DEFAULT false,
	password_changed_at timestamptz NOT NULL,
	created_at          timestamptz NOT NULL
);

CREATE TABLE memberships (
	user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	company_id text NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
	roles      text[] NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, company_id)
);

CREATE TABLE sessions (
	id            uuid PRIMARY KEY,
	user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	company_id    text NOT NULL,
	created_at    timestamptz NOT NULL,
	last_used_at  timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	revoked_at    timestamptz,
	revoke_reason text NOT NULL DEFAULT '',
	user_agent    text NOT NULL DEFAULT '',
	ip            text NOT NULL DEFAULT '',
	mfa           boolean NOT NULL DEFAULT false
);
CREATE INDEX sessions_user_active ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
	hash       bytea PRIMARY KEY,
	session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
	id               uuid PRIMARY KEY,
	company_id       text NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
	name             text NOT NULL DEFAULT '',
	prefix           text NOT NULL UNIQUE,
	secret_hash      bytea NOT NULL,
	prev_secret_hash bytea,
	prev_expires_at  timestamptz,
	scope            text[] NOT NULL,
	plan             text NOT NULL,
	created_by       text NOT NULL DEFAULT '',
	created_at       timestamptz NOT NULL,
	expires_at       timestamptz,
	revoked_at       timestamptz,
	last_used_at     timestamptz,
	use_count        bigint NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_company ON api_keys (company_id);

CREATE TABLE signing_keys (
	kid            text PRIMARY KEY,
	alg            text NOT NULL,
	public_key     bytea NOT NULL,
	sealed_private bytea NOT NULL,
	created_at     timestamptz NOT NULL,
	activates_at   timestamptz NOT NULL
);
