-- The keys that sign the edge's assertions to backends (X-ERP-Assertion),
-- kept apart from the access-token keys of signing_keys: an instance that
-- predates them (a rolling upgrade) never sees one, so it can neither sign
-- an access token with an assertion key nor retire one on its schedule.
-- Their kids start with "edge-"; both kinds are published in the JWKS.
CREATE TABLE assertion_keys (
	kid            text PRIMARY KEY CHECK (kid LIKE 'edge-%'),
	alg            text NOT NULL,
	public_key     bytea NOT NULL,
	sealed_private bytea NOT NULL,
	created_at     timestamptz NOT NULL,
	activates_at   timestamptz NOT NULL
);

-- No access-token key may look like an assertion key (new rows only: kids
-- are key thumbprints, and the service makes none that does).
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_kid_not_assertion CHECK (kid NOT LIKE 'edge-%') NOT VALID;
