-- The index of multi-valued attributes (0009) as a WITHOUT ROWID table: its primary key
-- is the whole identity of a row, so a rowid table kept it twice (the table ordered by
-- rowid, plus the key's own index). An initial sync writes one row per e-mail and per
-- group member (600,000 at 100,000 users), so each b-tree less is a large share of the
-- merge. PostgreSQL has no equivalent; its migration 0013 changes nothing.
CREATE TABLE mirror_values_keyed (
    connector   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    attr        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    value_key   TEXT,
    type_key    TEXT,
    is_primary  TEXT,
    present     INTEGER NOT NULL,
    PRIMARY KEY (connector, resource, external_id, attr, position)
) WITHOUT ROWID;
INSERT INTO mirror_values_keyed
SELECT connector, resource, external_id, attr, position, value_key, type_key, is_primary, present
FROM mirror_values;
DROP TABLE mirror_values;
ALTER TABLE mirror_values_keyed RENAME TO mirror_values;
CREATE INDEX mirror_values_by_value ON mirror_values (connector, resource, attr, value_key);
