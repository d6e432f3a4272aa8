-- One unrevoked admin token per name, enforced by the database: two `admin-token create`
-- of one name at the same moment (several nodes, one PostgreSQL) cannot both succeed.
CREATE UNIQUE INDEX admin_tokens_one_per_name ON admin_tokens (name) WHERE revoked_at IS NULL;
