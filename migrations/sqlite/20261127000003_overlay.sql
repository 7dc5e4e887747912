-- Overlay text: per-locale composites typeset locally onto copy-free art.
-- One live row per (campaign, row, locale, variant); a changed compose hash
-- supersedes the old row, an identity that left the campaign is retired.
-- compose_hash covers the copy, the box settings and the art's SHA-256, so
-- a rerun with the same hash for the same art job does nothing.

CREATE TABLE composites (
    id               INTEGER PRIMARY KEY,
    campaign         TEXT    NOT NULL,
    art_job_id       INTEGER NOT NULL REFERENCES jobs (id),
    row_id           TEXT    NOT NULL,
    locale           TEXT    NOT NULL,
    variant          TEXT    NOT NULL,
    compose_hash     TEXT    NOT NULL,
    resolved_locale  TEXT    NOT NULL,
    resolution       TEXT    NOT NULL DEFAULT '{}',
    state            TEXT    NOT NULL CHECK (state IN ('done', 'failed', 'superseded', 'retired')),
    asset_path       TEXT,
    sha256           TEXT,
    bytes            INTEGER,
    width            INTEGER,
    height           INTEGER,
    mime_type        TEXT,
    layout_json      TEXT,
    cost_usd         REAL    NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_detail     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX composites_identity ON composites (campaign, row_id, locale, variant)
    WHERE state NOT IN ('superseded', 'retired');
CREATE INDEX composites_art ON composites (art_job_id, locale, compose_hash);
