-- Account security and administration: companies can be disabled, TOTP
-- enrolments with hashed recovery codes, and the hash-chained audit trail.
ALTER TABLE companies ADD COLUMN disabled boolean NOT NULL DEFAULT false;

CREATE TABLE totp_secrets (
	user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	sealed_secret bytea NOT NULL,
	created_at    timestamptz NOT NULL,
	confirmed_at  timestamptz
);

CREATE TABLE recovery_codes (
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    bytea NOT NULL,
	used_at timestamptz,
	PRIMARY KEY (user_id, hash)
);

-- One row per auth event, appended in the transaction of the change it
-- records. seq counts from 1 without gaps (assigned under the lock on
-- audit_head, not by a sequence, which would leave gaps on rollback);
-- hash = SHA-256(prev_hash || canonical JSON of the record), see
-- store.Event. `gateway erp audit verify` recomputes the chain.
CREATE TABLE audit_events (
	seq        bigint PRIMARY KEY,
	at         timestamptz NOT NULL,
	type       text NOT NULL,
	actor_id   text NOT NULL DEFAULT '',
	company_id text NOT NULL DEFAULT '',
	subject_id text NOT NULL DEFAULT '',
	ip         text NOT NULL DEFAULT '',
	user_agent text NOT NULL DEFAULT '',
	request_id text NOT NULL DEFAULT '',
	details    jsonb NOT NULL DEFAULT '{}',
	prev_hash  bytea NOT NULL,
	hash       bytea NOT NULL
);
CREATE INDEX audit_events_company ON audit_events (company_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_subject ON audit_events (subject_id, seq);
CREATE INDEX audit_events_type ON audit_events (type, seq);
CREATE INDEX audit_events_at ON audit_events (at);

-- The head of the chain: the last seq and hash. Appenders lock this row,
-- which orders them; verify compares the last record with it, so records
-- cut off the end are detected too.
CREATE TABLE audit_head (
	id   boolean PRIMARY KEY DEFAULT true CHECK (id),
	seq  bigint NOT NULL,
	hash bytea NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, decode(repeat('00', 32), 'hex'));
