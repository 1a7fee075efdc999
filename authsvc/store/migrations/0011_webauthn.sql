-- Users' passkeys (WebAuthn credentials). Nothing here is secret: the
-- private keys stay in the authenticators. credential_id is the
-- authenticator's id, unique across users (an assertion names it alone).
CREATE TABLE webauthn_credentials (
	id                 uuid PRIMARY KEY,
	user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	credential_id      bytea NOT NULL UNIQUE,
	public_key         bytea NOT NULL,
	sign_count         bigint NOT NULL CHECK (sign_count >= 0 AND sign_count <= 4294967295),
	transports         text[] NOT NULL DEFAULT '{}',
	aaguid             bytea NOT NULL DEFAULT '\x',
	attestation_format text NOT NULL DEFAULT '',
	backup_eligible    boolean NOT NULL,
	backup_state       boolean NOT NULL,
	user_verified      boolean NOT NULL,
	name               text NOT NULL,
	created_at         timestamptz NOT NULL,
	last_used_at       timestamptz
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id, created_at);
