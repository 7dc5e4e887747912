-- Renditions: exact-size copies of a done job's master, derived locally.
-- Keyed by the job and a hash of the rendition settings, so a settings change
-- is a new key (produce it) and a key no longer declared is removed.
CREATE TABLE renditions (
    job_id         INTEGER NOT NULL REFERENCES jobs (id),
    settings_hash  TEXT    NOT NULL,
    master_sha256  TEXT    NOT NULL,   -- the master it was derived from
    path           TEXT    NOT NULL,   -- relative to <out>/<campaign>/
    sha256         TEXT    NOT NULL,
    bytes          INTEGER NOT NULL,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    mime_type      TEXT    NOT NULL,
    fit            TEXT    NOT NULL CHECK (fit IN ('cover', 'contain')),
    upscaled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (job_id, settings_hash)
);
