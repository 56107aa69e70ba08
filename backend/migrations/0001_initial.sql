-- Users, their sessions (one per login), conversation threads and agent runs.
-- Column names and types read by the specification are fixed by docs/contract.md section 8.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    password_hash text NOT NULL,
    display_name  text,
    plan          text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'enterprise')),
    role          text NOT NULL DEFAULT 'member',
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique regardless of case; the address is stored as given.
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));

CREATE TABLE user_sessions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_type        text NOT NULL
                       CHECK (device_type IN ('laptop_browser', 'mobile_browser', 'desktop_app', 'tablet_browser')),
    refresh_token_hash text NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz,
    revoked_at         timestamptz
);
CREATE INDEX user_sessions_user_id ON user_sessions (user_id);

CREATE TABLE user_threads (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id uuid REFERENCES user_sessions (id) ON DELETE CASCADE,
    scope      text NOT NULL CHECK (scope IN ('session', 'user')),
    title      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- A session thread belongs to one session; a user thread to none.
    CHECK ((scope = 'session') = (session_id IS NOT NULL))
);
CREATE INDEX user_threads_user_id ON user_threads (user_id);

CREATE TABLE agent_executions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id   uuid NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    request_id   text NOT NULL,
    agent        text NOT NULL,
    tool         text,
    status       text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'refused')),
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX agent_executions_session_request ON agent_executions (session_id, request_id);
