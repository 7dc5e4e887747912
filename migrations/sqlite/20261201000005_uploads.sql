-- Object storage output (issue 14): what this state file has uploaded to a
-- bucket, so a rerun uploads only objects whose bytes changed and deletes
-- the objects whose files the run removed. `target` is the bucket URL as
-- given to --out (`s3://bucket/prefix`), `object_key` the campaign-relative
-- path (`de-DE/hero/r1.png`, `manifest.json`). Only written after the
-- object was read back from the bucket with this sha256.
CREATE TABLE uploads (
    target      TEXT    NOT NULL,
    campaign    TEXT    NOT NULL,
    object_key  TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (target, campaign, object_key)
);
