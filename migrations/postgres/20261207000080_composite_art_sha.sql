-- Brand layers on model-text variants; see the SQLite migration of the same
-- version for the meaning of the column.
ALTER TABLE composites ADD COLUMN art_sha256 TEXT COLLATE "C";
