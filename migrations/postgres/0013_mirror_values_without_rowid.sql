-- SQLite's migration 0013 stores the index of multi-valued attributes as a WITHOUT ROWID
-- table; PostgreSQL has no equivalent (its tables are heaps), so nothing changes here.
-- The file keeps both backends' migration numbers in step.
SELECT 1;
