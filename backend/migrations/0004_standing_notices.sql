-- Every change of what a handshake reads (a session revoked or removed, a user's plan or role
-- changed, a user removed) is announced at its commit on the channel `standing_changed`, with
-- the user's id. Instances keep sessions' standings between handshakes (backend/standing.py)
-- only while they hear this channel; Redis carries the same news, and this is the way it
-- still arrives when the instance that made the change cannot reach Redis. NOTIFY is part of
-- the transaction: a change rolled back is never announced, one committed always is.
CREATE FUNCTION standing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('standing_changed', OLD.id::text);
    ELSE
        PERFORM pg_notify('standing_changed', OLD.user_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_sessions_standing_changed AFTER UPDATE OF revoked_at, user_id OR DELETE ON user_sessions
    FOR EACH ROW EXECUTE FUNCTION standing_changed();
CREATE TRIGGER users_standing_changed AFTER UPDATE OF plan, role OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION standing_changed();
