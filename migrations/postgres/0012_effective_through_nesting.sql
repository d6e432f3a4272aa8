-- Effective memberships are stored only where nesting gives them (issue 17): a direct
-- user membership is its own effective membership, so storing it twice doubled the rows
-- an initial sync writes. Applications keep reading `effective_memberships`, now a view
-- with the same columns and the same rows: the direct user memberships (once per pair,
-- whichever connectors grant it) and the pairs only nesting gives.
CREATE TABLE effective_nested (
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX effective_nested_by_user ON effective_nested (user_id);

INSERT INTO effective_nested (group_id, user_id)
SELECT e.group_id, e.user_id FROM effective_memberships e
WHERE NOT EXISTS (SELECT 1 FROM memberships m
                  WHERE m.group_id = e.group_id AND m.member_id = e.user_id
                    AND m.member_kind = 'user');

DROP TABLE effective_memberships;

-- UNION ALL of two arms that cannot share a pair, rather than UNION: a lookup by group or
-- by user then reaches each table's index (SQLite materialises a UNION view whole).
CREATE VIEW effective_memberships (group_id, user_id) AS
SELECT m.group_id, m.member_id FROM memberships m
WHERE m.member_kind = 'user'
  AND NOT EXISTS (SELECT 1 FROM memberships o
                  WHERE o.group_id = m.group_id AND o.member_id = m.member_id
                    AND o.connector < m.connector)
UNION ALL
SELECT n.group_id, n.user_id FROM effective_nested n
WHERE NOT EXISTS (SELECT 1 FROM memberships o
                  WHERE o.group_id = n.group_id AND o.member_id = n.user_id
                    AND o.member_kind = 'user');
