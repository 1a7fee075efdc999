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
-- records. The trail is 8 hash chains (stripes) so that concurrent appends
-- do not all wait on one lock: stripe s holds seqs s+1, s+9, s+17, … with no
-- gaps (assigned under the lock on its audit_head row, not by a sequence,
-- which would leave gaps on rollback); hash = SHA-256(prev_hash || canonical
-- JSON of the record), see store.Event. `gateway erp audit verify`
-- recomputes every chain.
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

-- The head of each chain: its last seq and hash. Appenders lock their
-- stripe's row, which orders them; verify compares each chain's last record
-- with its head, so records cut off the end are detected too.
CREATE TABLE audit_head (
	stripe smallint PRIMARY KEY CHECK (stripe >= 0 AND stripe < 8),
	seq    bigint NOT NULL,
	hash   bytea NOT NULL
);
INSERT INTO audit_head (stripe, seq, hash)
SELECT s, s + 1 - 8, decode(repeat('00', 32), 'hex') FROM generate_series(0, 7) AS s;
