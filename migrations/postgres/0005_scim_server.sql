-- What the SCIM server needs beyond the mirror: when a pushed resource was created (its
-- meta.created), the request event log, deletion bursts held for an admin, and the
-- removals counted against a tenant's burst limit.
ALTER TABLE mirror_users ADD COLUMN created_at TEXT;
ALTER TABLE mirror_groups ADD COLUMN created_at TEXT;

-- Every SCIM request: who, what, how it ended; bodies redacted and capped.
CREATE TABLE scim_events (
    id            BIGSERIAL PRIMARY KEY,
    tenant        TEXT NOT NULL,
    at            TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    status        BIGINT NOT NULL,
    duration_ms   DOUBLE PRECISION NOT NULL,
    operation     TEXT NOT NULL,
    client        TEXT,
    request_body  TEXT,
    response_body TEXT
);
CREATE INDEX scim_events_by_tenant ON scim_events (tenant, id);

-- A tenant whose removals exceeded its burst limit: its pushes keep landing in the mirror,
-- the target waits until an admin reconciles it.
CREATE TABLE scim_holds (
    tenant   TEXT PRIMARY KEY,
    held_at  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    run_id   BIGINT
);

-- Removals applied to the target per tenant, for the burst window.
CREATE TABLE scim_removals (
    tenant TEXT NOT NULL,
    at     TEXT NOT NULL,
    count  BIGINT NOT NULL
);
CREATE INDEX scim_removals_by_tenant ON scim_removals (tenant, at);
