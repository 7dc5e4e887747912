-- Renditions that could not be derived from their master (unreadable,
-- changed on disk, undecodable). One row per job and settings hash, replaced
-- on every reconcile; the manifest lists them as failures with reason
-- `rendition_failed`, and the run exits 3.
CREATE TABLE rendition_failures (
    job_id         INTEGER NOT NULL REFERENCES jobs (id),
    settings_hash  TEXT    NOT NULL,
    path           TEXT    NOT NULL,   -- where the rendition would have gone
    detail         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (job_id, settings_hash)
);
