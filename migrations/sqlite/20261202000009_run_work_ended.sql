-- When a run had done its work on its campaign (dispatch, renditions,
-- composites), before it publishes. Of several runners serving one
-- campaign (`adloc worker` on many hosts), the last live one to get here
-- builds the manifest, once. Same column in the PostgreSQL migration of
-- the same version.
ALTER TABLE runs ADD COLUMN work_ended_at INTEGER;
