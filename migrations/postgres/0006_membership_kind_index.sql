-- Effective memberships of changed users walk up the connector's nested groups; this finds
-- a connector's group-in-group memberships without reading all of its memberships.
CREATE INDEX memberships_by_kind ON memberships (connector, member_kind);
