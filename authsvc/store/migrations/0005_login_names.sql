-- Login names (issue #13): users.email is the canonical login name (PRECIS
-- UsernameCaseMapped local part, IDNA domain: package authsvc/loginname) and
-- email_skeleton its look-alike key (UTS #39 skeleton), unique, so that no two
-- accounts look alike: `alіce` (Cyrillic і) can't be created next to `alice`.
--
-- The normaliser is Go code: right after this file, in the same transaction,
-- the migration runner's Go step for version 5 (backfillLoginNames in
-- migrate_login_names.go) rewrites every existing row's email to its
-- canonical form, fills email_skeleton, and makes it NOT NULL.
ALTER TABLE users ADD COLUMN email_skeleton text;
CREATE UNIQUE INDEX users_email_skeleton ON users (email_skeleton);
