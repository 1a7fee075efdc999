-- Trusted devices (issue #17): a device trusted after a second factor
-- skips it until expires_at. Only the SHA-256 of the device credential is
-- kept. A password change or disabling the user revokes them.
CREATE TABLE trusted_devices (
	id            uuid PRIMARY KEY,
	user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash    bytea NOT NULL UNIQUE,
	name          text NOT NULL,
	ip            text NOT NULL,
	created_at    timestamptz NOT NULL,
	last_used_at  timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	revoked_at    timestamptz,
	revoke_reason text NOT NULL DEFAULT ''
);
CREATE INDEX trusted_devices_user_active ON trusted_devices (user_id) WHERE revoked_at IS NULL;

-- What the risk signals remember of a user's completed logins: the
-- device fingerprint (a hash of the normalised User-Agent) and the
-- network (/24, /48), one row per distinct pair, the last N kept.
CREATE TABLE login_history (
	user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	fingerprint text NOT NULL,
	network     text NOT NULL,
	at          timestamptz NOT NULL,
	PRIMARY KEY (user_id, fingerprint, network)
);
CREATE INDEX login_history_user_at ON login_history (user_id, at DESC);
