-- Bearer tokens of SCIM tenants. Only a SHA-256 hash of each token is stored; the token
-- itself is shown once, when it is issued. Several may be active at once (rotation).
CREATE TABLE scim_tokens (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX scim_tokens_by_tenant ON scim_tokens (tenant);
