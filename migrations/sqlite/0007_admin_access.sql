-- Locking the admin API and recording what admins do (issue 11).

-- Bearer tokens of the admin API. Only a SHA-256 hash of each token is stored; the token is
-- shown once, when it is created. `name` says whose token it is and appears in the audit
-- trail; one active token per name.
CREATE TABLE admin_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX admin_tokens_by_name ON admin_tokens (name);

-- What admins did: confirmations and discards of held runs, runs started by hand, token
-- changes. `actor` is the admin token's name (or `cli:<user>` for local commands).
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX audit_log_by_at ON audit_log (at);

-- Each scheduled due time of a connector, claimed by the first node that reaches it, so
-- that nodes whose clocks differ run a slot once between them.
CREATE TABLE schedule_slots (
    connector  TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    node       TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (connector, due_at)
);
