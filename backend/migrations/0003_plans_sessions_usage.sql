-- Contract version 3: plans and roles as data, refresh-token rotation, daily usage.

-- Plans are data (plans.toml, checked at start and at every request that names one), so
-- the database no longer fixes their names; 0001 allowed only free, pro and enterprise.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_plan_check;
-- 0001 already created the column; stated here too because v3 is what gives it meaning.
ALTER TABLE users ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'member';

-- Refresh tokens used up by a rotation. user_sessions.refresh_token_hash is the current
-- one; a hash found here instead was presented twice, which revokes its session. Only
-- SHA-256 hashes are stored, as for the current token.
CREATE TABLE spent_refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    spent_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spent_refresh_tokens_session_id ON spent_refresh_tokens (session_id);

-- Today's runs of one user are counted at every chat.
CREATE INDEX agent_executions_user_started ON agent_executions (user_id, started_at);

-- Threads need nothing new: since 0001 a session thread stores its creating session and a
-- user thread none (the CHECK on user_threads), which is what section 12 asks.
