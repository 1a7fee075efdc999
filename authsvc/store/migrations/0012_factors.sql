-- Users' email and SMS second factors. The phone number is sealed by the
-- service (AES-256-GCM under the master key); phone_masked is what is shown.
-- One factor of each kind per user; confirmed_at NULL while pending.
CREATE TABLE mfa_factors (
	user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind         text NOT NULL CHECK (kind IN ('email', 'sms')),
	sealed_phone bytea,
	phone_masked text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL,
	confirmed_at timestamptz,
	PRIMARY KEY (user_id, kind)
);
