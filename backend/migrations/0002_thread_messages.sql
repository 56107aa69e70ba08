-- Messages posted to conversation threads (user_threads is in 0001).
-- Each row keeps who posted it; a thread's audience is decided by the thread, not the row.

CREATE TABLE thread_messages (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    thread_id  uuid NOT NULL REFERENCES user_threads (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id uuid REFERENCES user_sessions (id) ON DELETE SET NULL,
    text       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX thread_messages_thread_created ON thread_messages (thread_id, created_at);
