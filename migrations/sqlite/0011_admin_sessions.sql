-- Browser sessions of the admin pages (issue 16). Only a SHA-256 hash of the session
-- cookie is stored. `token_id` is the admin token the admin signed in with (NULL for the
-- `[admin] token` of idsync.toml): revoking that token ends its sessions. A session ends
-- after its idle time without a request (`[admin] session_idle`).
CREATE TABLE admin_sessions (
    session_hash TEXT PRIMARY KEY,
    actor        TEXT NOT NULL,
    token_id     TEXT,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX admin_sessions_by_last_seen ON admin_sessions (last_seen_at);
