-- Retention and data-subject requests.
--
-- Audit retention removes the oldest records of each chain. Before a cut,
-- the chain's checkpoint is moved to the last removed record: its seq and
-- hash, signed (HMAC-SHA256 under a key derived from the master key) so
-- that `gateway erp audit verify` starts the chain there and a forged
-- checkpoint — one that would hide a cut-off or rewritten start — fails.
-- One row per chain, present from the start (seq = the chain's genesis,
-- no signature: the chain starts at its first record).
CREATE TABLE audit_checkpoints (
	stripe    smallint PRIMARY KEY CHECK (stripe >= 0 AND stripe < 8),
	seq       bigint NOT NULL,
	hash      bytea NOT NULL,
	cut_at    timestamptz,
	removed   bigint NOT NULL DEFAULT 0,
	key_id    text NOT NULL DEFAULT '',
	signature bytea
);
INSERT INTO audit_checkpoints (stripe, seq, hash)
SELECT s, s + 1 - 8, decode(repeat('00', 32), 'hex') FROM generate_series(0, 7) AS s;

-- Erasure of a person pseudonymises the records about them. The record's
-- hash (which its successor's prev_hash repeats) stays as it was, so the
-- chain still links; erasure_sig attests, under the same key as the
-- checkpoints, that the service replaced the record's personal fields:
-- HMAC(seq, the original hash, the hash of the pseudonymised contents).
-- It works the same for every record, whatever migration wrote it.
ALTER TABLE audit_events ADD COLUMN erasure_sig bytea;

-- What the retention job looks for: ended sessions and devices, expired
-- refresh tokens.
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX trusted_devices_expires ON trusted_devices (expires_at);
CREATE INDEX trusted_devices_revoked ON trusted_devices (revoked_at) WHERE revoked_at IS NOT NULL;

-- Row-level security (0014): the trail is append-only for the service;
-- the platform role's retention job removes records before a signed
-- checkpoint, and an erasure rewrites the personal fields of the records
-- about a person (their hash stays, erasure_sig attests the rewrite).
GRANT DELETE ON audit_events TO erpgate_platform;
GRANT UPDATE (actor_id, subject_id, ip, user_agent, details, erasure_sig) ON audit_events TO erpgate_platform;
