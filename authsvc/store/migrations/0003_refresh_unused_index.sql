-- A session's outstanding refresh tokens, found without visiting every token
-- the family ever had: switch-company consumes them all, and a long-lived
-- session (refreshed every few minutes for days) collects hundreds of used ones.
CREATE INDEX refresh_tokens_session_unused ON refresh_tokens (session_id) WHERE used_at IS NULL;
