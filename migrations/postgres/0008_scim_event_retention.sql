-- The SCIM event log keeps requests refused before authentication (401, 403, 429) under
-- their own cap, so a flood of them cannot push accepted requests out, and deletes events
-- past a maximum age. Both trims use an index.
ALTER TABLE scim_events ADD COLUMN rejected BIGINT NOT NULL DEFAULT 0;
CREATE INDEX scim_events_by_outcome ON scim_events (tenant, rejected, id);
CREATE INDEX scim_events_by_age ON scim_events (tenant, at);
