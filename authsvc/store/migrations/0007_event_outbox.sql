-- Audit records waiting to be published as events (issue 15: auth and
-- admin events through a transactional outbox). The trigger below writes
-- one row per audit record in the transaction that appends the record, so
-- every change that is recorded is published — no path can forget it —
-- and a record that committed is never lost when NATS is down or the
-- process dies before publishing: the auth service's relay (any instance)
-- claims rows with FOR UPDATE SKIP LOCKED, publishes the records they
-- name, and deletes the rows once the stream acknowledged them. Records
-- appended before this migration are history, not events: not enqueued.
CREATE TABLE event_outbox (
	audit_seq bigint PRIMARY KEY
);

CREATE FUNCTION event_outbox_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO event_outbox (audit_seq) VALUES (NEW.seq);
	RETURN NULL;
END $$;

CREATE TRIGGER audit_events_outbox AFTER INSERT ON audit_events
	FOR EACH ROW EXECUTE FUNCTION event_outbox_audit();
