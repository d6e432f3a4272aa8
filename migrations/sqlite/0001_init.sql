-- idsync schema for SQLite. Keep in step with migrations/postgres/0001_init.sql: the same
-- tables and columns; only the types differ (booleans are INTEGER 0/1 here), and the link
-- tables are WITHOUT ROWID (their primary key is the whole row).

-- The mirror: the last-known state of each connector's source, unfiltered.
CREATE TABLE mirror_users (
    connector    TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    data         TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (connector, external_id)
);

CREATE TABLE mirror_groups (
    connector    TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    data         TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (connector, external_id)
);

-- Per connector: the delta checkpoint, and generations that tell whether the target has
-- caught up with the mirror (and with the mapping it was projected through).
CREATE TABLE mirror_state (
    connector            TEXT PRIMARY KEY,
    checkpoint           TEXT,
    generation           INTEGER NOT NULL DEFAULT 0,
    applied_generation   INTEGER NOT NULL DEFAULT 0,
    applied_mapping_hash TEXT,
    updated_at           TEXT NOT NULL
);

-- The target directory.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    connector     TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    display_name  TEXT,
    given_name    TEXT,
    family_name   TEXT,
    email         TEXT,
    active        INTEGER NOT NULL,
    attributes    TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    removed_at    TEXT,
    UNIQUE (connector, external_id)
);

CREATE TABLE groups (
    id           TEXT PRIMARY KEY,
    connector    TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,
    description  TEXT,
    attributes   TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (connector, external_id)
);

-- Direct memberships, each granted by one connector.
CREATE TABLE memberships (
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_kind TEXT NOT NULL CHECK (member_kind IN ('user', 'group')),
    connector   TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id, connector)
) WITHOUT ROWID;
CREATE INDEX memberships_by_member ON memberships (member_id);
CREATE INDEX memberships_by_connector ON memberships (connector);

-- Effective (transitive) user membership of every group, nesting resolved.
CREATE TABLE effective_memberships (
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX effective_by_user ON effective_memberships (user_id);

CREATE TABLE sync_runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    connector           TEXT NOT NULL,
    operation           TEXT NOT NULL,
    dry_run             INTEGER NOT NULL,
    started_at          TEXT NOT NULL,
    finished_at         TEXT,
    outcome             TEXT NOT NULL,
    read_mode           TEXT,
    records_read        INTEGER NOT NULL DEFAULT 0,
    users_created       INTEGER NOT NULL DEFAULT 0,
    users_updated       INTEGER NOT NULL DEFAULT 0,
    users_disabled      INTEGER NOT NULL DEFAULT 0,
    users_deleted       INTEGER NOT NULL DEFAULT 0,
    groups_created      INTEGER NOT NULL DEFAULT 0,
    groups_updated      INTEGER NOT NULL DEFAULT 0,
    groups_deleted      INTEGER NOT NULL DEFAULT 0,
    memberships_added   INTEGER NOT NULL DEFAULT 0,
    memberships_removed INTEGER NOT NULL DEFAULT 0,
    conflicts           INTEGER NOT NULL DEFAULT 0,
    warnings            INTEGER NOT NULL DEFAULT 0,
    message             TEXT,
    details             TEXT
);
CREATE INDEX sync_runs_by_connector ON sync_runs (connector, id);
