-- Columns that SCIM filters are answered from (through indexes, never by scanning rows in
-- Rust): the case-folded user name / group name and the client's externalId.
ALTER TABLE mirror_users ADD COLUMN user_name_key TEXT;
ALTER TABLE mirror_users ADD COLUMN client_external_id TEXT;
ALTER TABLE mirror_groups ADD COLUMN name_key TEXT;
ALTER TABLE mirror_groups ADD COLUMN client_external_id TEXT;
CREATE INDEX mirror_users_by_name ON mirror_users (connector, user_name_key);
CREATE INDEX mirror_users_by_client_external_id ON mirror_users (connector, client_external_id);
CREATE INDEX mirror_users_by_updated ON mirror_users (connector, updated_at);
CREATE INDEX mirror_groups_by_name ON mirror_groups (connector, name_key);
CREATE INDEX mirror_groups_by_client_external_id ON mirror_groups (connector, client_external_id);
CREATE INDEX mirror_groups_by_updated ON mirror_groups (connector, updated_at);
