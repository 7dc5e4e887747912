-- Brand layers on model-text variants (issue 23): a composite may be drawn
-- onto a model-text job's own image instead of shared art. art_sha256 is the
-- SHA-256 of the image it was drawn onto, so a reviewer's decision about the
-- layered file counts for the job only while the job still holds that image
-- (a revision or regeneration is never bought twice before it is layered
-- again). NULL for composites recorded before this migration.
ALTER TABLE composites ADD COLUMN art_sha256 TEXT;
