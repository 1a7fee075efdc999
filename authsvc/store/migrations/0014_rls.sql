-- Row-level security. The service runs as erpgate_app: not a superuser, no
-- BYPASSRLS, owning nothing, with DML on the tables and nothing else. Every
-- company-scoped table has ENABLE and FORCE ROW LEVEL SECURITY and a
-- policy on the transaction's app.company_id (SET LOCAL per transaction by
-- the store): a query with no company set sees no row, and a company's
-- transaction cannot read, change or insert another company's rows, even
-- through a wrong WHERE. The roles:
--
--   erpgate_owner     owns the schema's objects; migrations run as it
--                     (`gateway erp migrate` with the owner's URL). Its
--                     policies see every row: data migrations need them.
--   erpgate_app       the service. A user's own memberships and sessions,
--                     across companies, are visible with app.user_id set
--                     (login, the sessions list, refresh).
--   erpgate_platform  platform-admin and cross-company paths (admin
--                     listings, relays, retention): every row. The store
--                     switches to it with SET LOCAL ROLE, per transaction,
--                     and records why (see postgres_scope.go).
--
-- Roles are cluster-wide: databases migrating at once may race on CREATE
-- ROLE, so a role that appears meanwhile is taken as it is (the runner
-- also retries a migration that lost such a race).
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['erpgate_owner', 'erpgate_platform', 'erpgate_app'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			BEGIN
				EXECUTE format('CREATE ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS %s',
					r, CASE r WHEN 'erpgate_app' THEN 'LOGIN NOINHERIT' ELSE 'NOLOGIN' END);
			EXCEPTION WHEN duplicate_object OR unique_violation THEN
				NULL;
			END;
		END IF;
	END LOOP;
	-- erpgate_app may SET ROLE erpgate_platform but inherits nothing of it
	-- (NOINHERIT): its policies apply only once switched to.
	IF NOT pg_has_role('erpgate_app', 'erpgate_platform', 'MEMBER') THEN
		GRANT erpgate_platform TO erpgate_app;
	END IF;
	-- The migrator (a superuser, or a role granted erpgate_owner) hands its
	-- objects to erpgate_owner below and runs later migrations as it; it may
	-- also be the service's login (one URL), which takes erpgate_app.
	IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		IF NOT pg_has_role(current_user, 'erpgate_owner', 'MEMBER') THEN
			EXECUTE format('GRANT erpgate_owner TO %I', current_user);
		END IF;
		IF current_user <> 'erpgate_app' AND NOT pg_has_role(current_user, 'erpgate_app', 'MEMBER') THEN
			EXECUTE format('GRANT erpgate_app TO %I', current_user);
		END IF;
	END IF;
END $$;

-- Everything of this schema belongs to erpgate_owner.
DO $$
DECLARE
	o record;
BEGIN
	EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO erpgate_owner', current_schema());
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO erpgate_app, erpgate_platform', current_schema());
	FOR o IN SELECT c.relname, c.relkind FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
	LOOP
		EXECUTE format('ALTER TABLE %I OWNER TO erpgate_owner', o.relname);
	END LOOP;
	FOR o IN SELECT p.oid::regprocedure::text AS sig FROM pg_proc p
		WHERE p.pronamespace = current_schema()::regnamespace
	LOOP
		EXECUTE format('ALTER FUNCTION %s OWNER TO erpgate_owner', o.sig);
	END LOOP;
	-- Tables of later migrations (created by erpgate_owner) get the same
	-- grants; their company-scoped ones must add RLS as below.
	EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE erpgate_owner IN SCHEMA %I
		GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO erpgate_app, erpgate_platform', current_schema());
	EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE erpgate_owner IN SCHEMA %I
		GRANT USAGE, SELECT ON SEQUENCES TO erpgate_app, erpgate_platform', current_schema());
	EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO erpgate_app, erpgate_platform', current_schema());
	EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO erpgate_app, erpgate_platform', current_schema());
END $$;

-- The trail is append-only for the service; the migrations' record is the
-- owner's.
REVOKE UPDATE, DELETE ON audit_events FROM erpgate_app, erpgate_platform;
REVOKE INSERT, UPDATE, DELETE ON erpgate_schema_migrations FROM erpgate_app, erpgate_platform;

-- The company-scoped tables. The setting is read with missing_ok and an
-- empty value taken as none: after a SET LOCAL a pooled connection's
-- setting is '' (not NULL), and '' must match no row.
ALTER TABLE companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE companies FORCE ROW LEVEL SECURITY;
-- A company is visible in its own transactions, and to a user's
-- transaction when one of the visible memberships names it.
CREATE POLICY companies_app ON companies TO erpgate_app
	USING (id = nullif(current_setting('app.company_id', true), '')
		OR EXISTS (SELECT 1 FROM memberships m WHERE m.company_id = companies.id))
	WITH CHECK (id = nullif(current_setting('app.company_id', true), ''));

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY memberships_app ON memberships TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), '')
		OR user_id = nullif(current_setting('app.user_id', true), '')::uuid)
	WITH CHECK (company_id = nullif(current_setting('app.company_id', true), ''));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
-- A user's session may move to another company (switch-company): the
-- user's transaction may write it.
CREATE POLICY sessions_app ON sessions TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), '')
		OR user_id = nullif(current_setting('app.user_id', true), '')::uuid);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_app ON api_keys TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), ''));

ALTER TABLE sso_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY sso_connections_app ON sso_connections TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), ''));

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_endpoints_app ON webhook_endpoints TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), ''));

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_app ON webhook_deliveries TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), ''));

-- Every transaction that changes state appends its audit record, whatever
-- the record's company (a login has none): appending is open, reading is
-- the company's own records.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_app_read ON audit_events FOR SELECT TO erpgate_app
	USING (company_id = nullif(current_setting('app.company_id', true), ''));
CREATE POLICY audit_events_app_append ON audit_events FOR INSERT TO erpgate_app
	WITH CHECK (true);

-- The platform role and the owner see and write every row.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['companies', 'memberships', 'sessions', 'api_keys', 'sso_connections',
		'webhook_endpoints', 'webhook_deliveries', 'audit_events'] LOOP
		EXECUTE format('CREATE POLICY %I ON %I TO erpgate_platform, erpgate_owner USING (true) WITH CHECK (true)',
			t || '_platform', t);
	END LOOP;
END $$;

-- The lookups that find the scope of a request that names no company: a
-- refresh token's user, an API key's company, an SSO domain's company. Each
-- answers only for a secret or a name the caller already holds, and runs
-- as erpgate_owner (SECURITY DEFINER) with a fixed search_path, pg_temp
-- last, so that no temporary table can stand in for the real one.
DO $$
DECLARE
	s text := quote_ident(current_schema());
BEGIN
	EXECUTE format($f$
		CREATE FUNCTION %1$s.erpgate_refresh_user(token bytea) RETURNS text
		LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %1$s, pg_temp
		AS 'SELECT s.user_id::text FROM %1$s.refresh_tokens t JOIN %1$s.sessions s ON s.id = t.session_id WHERE t.hash = token'
	$f$, s);
	EXECUTE format($f$
		CREATE FUNCTION %1$s.erpgate_api_key_company(key_prefix text) RETURNS text
		LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %1$s, pg_temp
		AS 'SELECT k.company_id FROM %1$s.api_keys k WHERE k.prefix = key_prefix'
	$f$, s);
	EXECUTE format($f$
		CREATE FUNCTION %1$s.erpgate_sso_domain_company(sso_domain text) RETURNS text
		LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %1$s, pg_temp
		AS 'SELECT c.company_id FROM %1$s.sso_domains d JOIN %1$s.sso_connections c ON c.id = d.connection_id WHERE d.domain = sso_domain'
	$f$, s);
END $$;
ALTER FUNCTION erpgate_refresh_user(bytea) OWNER TO erpgate_owner;
ALTER FUNCTION erpgate_api_key_company(text) OWNER TO erpgate_owner;
ALTER FUNCTION erpgate_sso_domain_company(text) OWNER TO erpgate_owner;
REVOKE ALL ON FUNCTION erpgate_refresh_user(bytea), erpgate_api_key_company(text), erpgate_sso_domain_company(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erpgate_refresh_user(bytea), erpgate_api_key_company(text), erpgate_sso_domain_company(text)
	TO erpgate_app, erpgate_platform;
