-- One row per element of the multi-valued attributes SCIM filters are answered from
-- (a User's emails and phoneNumbers, a Group's members), kept in step with the mirror row
-- in the same transaction, so that `emails.value eq "…"` or `members.value eq "<id>"` is
-- an index lookup. A bracket filter (`emails[type eq "work" and primary eq true]`) applies
-- to one element, i.e. one row here. The index also answers "groups containing X".
CREATE TABLE mirror_values (
    connector   TEXT NOT NULL,
    -- 'user' or 'group': the mirror table the element belongs to.
    resource    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    -- 'emails', 'phonenumbers' or 'members'.
    attr        TEXT NOT NULL,
    -- The element's position in the attribute's array.
    position    INTEGER NOT NULL,
    -- The element's `value`, lower-cased unless the sub-attribute is case-exact
    -- (members.value); NULL when it is not a string.
    value_key   TEXT,
    -- The element's `type`, lower-cased; NULL when it is not a string.
    type_key    TEXT,
    -- 'true' or 'false' for a JSON boolean `primary`, 'other' for any other present
    -- value (`primary pr` counts it, `primary eq true` does not), NULL when absent.
    is_primary  TEXT,
    -- 1 when the element holds any present value (what `emails pr` asks).
    present     INTEGER NOT NULL,
    PRIMARY KEY (connector, resource, external_id, attr, position)
);
CREATE INDEX mirror_values_by_value ON mirror_values (connector, resource, attr, value_key);

-- Rows already in the mirror are indexed by idsync itself right after this migration (the
-- case folding is Unicode's, which SQL lower() is not everywhere); this row says that is
-- still to do and is deleted when it is done.
CREATE TABLE mirror_values_backfill (pending INTEGER NOT NULL);
INSERT INTO mirror_values_backfill (pending) VALUES (1);
