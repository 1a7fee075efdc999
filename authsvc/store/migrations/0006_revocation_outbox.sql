-- Revocations waiting to be delivered to the edges (Redis marks and the
-- revocation channel). A row is written in the same transaction as the
-- revocation itself, by the triggers below, so no path that revokes a
-- session or an API key can forget it and a revocation that committed is
-- never lost when Redis is down: the auth service's relay publishes the
-- rows, retrying until Redis answers, and deletes them once published.
CREATE TABLE revocation_outbox (
	seq        bigserial PRIMARY KEY,
	kind       text NOT NULL CHECK (kind IN ('session', 'api_key', 'api_key_rotated')),
	subject_id text NOT NULL,
	revoked_at timestamptz NOT NULL
);

CREATE FUNCTION revocation_outbox_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO revocation_outbox (kind, subject_id, revoked_at) VALUES ('session', NEW.id::text, NEW.revoked_at);
	RETURN NULL;
END $$;

CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
	FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
	EXECUTE FUNCTION revocation_outbox_session();

CREATE FUNCTION revocation_outbox_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
		INSERT INTO revocation_outbox (kind, subject_id, revoked_at) VALUES ('api_key', NEW.id::text, NEW.revoked_at);
	ELSIF OLD.secret_hash IS DISTINCT FROM NEW.secret_hash THEN
		INSERT INTO revocation_outbox (kind, subject_id, revoked_at) VALUES ('api_key_rotated', NEW.id::text, now());
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER api_keys_revoked_or_rotated AFTER UPDATE OF revoked_at, secret_hash ON api_keys
	FOR EACH ROW EXECUTE FUNCTION revocation_outbox_api_key();
