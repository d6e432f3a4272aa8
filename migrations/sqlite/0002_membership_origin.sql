-- Why a membership exists: `source` (the source's own group membership), `mapping` (an
-- application group, or a default group applied on every run) or `default` (a default group
-- given when the user was created; runs never remove it).
ALTER TABLE memberships ADD COLUMN origin TEXT NOT NULL DEFAULT 'source';
