-- Webhook endpoints and their delivery attempts (internal/webhooks). Every
-- query of the edge names the company: a row of another company is never
-- read, changed or listed through the API. Secrets are sealed with the
-- master key (AES-256-GCM, bound to the endpoint id), never stored in clear.
CREATE TABLE webhook_endpoints (
	id                 text PRIMARY KEY,
	company_id         text NOT NULL,
	url                text NOT NULL,
	events             text[] NOT NULL,
	description        text NOT NULL DEFAULT '',
	enabled            boolean NOT NULL DEFAULT true,
	disabled_reason    text NOT NULL DEFAULT '',
	failing_since      timestamptz,
	secret_sealed      bytea NOT NULL,
	old_secret_sealed  bytea,           -- the secret before the last rotation
	old_secret_expires timestamptz,     -- it signs too until then
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL
);

CREATE INDEX webhook_endpoints_company ON webhook_endpoints (company_id, created_at, id);

-- One row per attempt. stream_seq is the event's sequence in the events
-- stream (Retry reads it back); 0 for a ping.
CREATE TABLE webhook_deliveries (
	id              text PRIMARY KEY,   -- whd_ + UUIDv7 hex: newer sorts after
	endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	company_id      text NOT NULL,
	event_id        text NOT NULL,
	event_type      text NOT NULL,
	stream_seq      bigint NOT NULL DEFAULT 0,
	attempt         integer NOT NULL,
	status          text NOT NULL CHECK (status IN ('succeeded', 'failed', 'gave_up')),
	http_status     integer NOT NULL DEFAULT 0,
	error           text NOT NULL DEFAULT '',
	duration_ms     bigint NOT NULL,
	response        text NOT NULL DEFAULT '',
	at              timestamptz NOT NULL,
	next_attempt_at timestamptz
);

-- The API's newest-first listing (keyset on id) and the attempt count.
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (endpoint_id, event_id);
-- Pruning by age.
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);
