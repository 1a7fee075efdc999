-- Company cells: the cell (a named group of a backend version's upstreams,
-- `cell NAME URL` in the erp block) a company's requests go to; '' is the
-- version's default upstreams.
ALTER TABLE companies ADD COLUMN cell text NOT NULL DEFAULT '';

-- The fleet's runtime changes to the erp app's config (internal/fleet):
-- one row per entry changed through an instance's admin API (kind
-- 'backend' or 'quota_override', name the backend or company), its JSON
-- value or NULL when it was deleted. revision orders the changes across
-- the fleet; origin is the instance that made it.
CREATE SEQUENCE erp_runtime_revision;
CREATE TABLE erp_runtime_entries (
	kind       text NOT NULL,
	name       text NOT NULL,
	value      jsonb,
	revision   bigint NOT NULL,
	origin     text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (kind, name)
);
CREATE INDEX erp_runtime_entries_revision ON erp_runtime_entries (revision);
