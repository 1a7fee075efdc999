-- Accounts locked by the security monitor (rule action lock_account): the
-- auth service refuses their logins, exactly as it refuses a disabled
-- account's, until an admin unlocks them (PATCH /api/v1/admin/users/{id}
-- {"locked": false}). Their sessions are not revoked by a lock.
ALTER TABLE users ADD COLUMN locked boolean NOT NULL DEFAULT false;
