-- Placements: a delivered asset made to an ad platform's slot (exact
-- frame, weight limit, accepted formats), derived locally at the end of
-- every run. One row per asset identity and placement id: `done` with its
-- file, or `failed` with the reason (`over_weight`, `placement_invalid`,
-- `rendition_failed`) and no file. settings_hash covers everything that
-- decides the file; source_sha256 is the asset it was made from, so a
-- rerun with both unchanged does nothing.
CREATE TABLE placements (
    campaign       TEXT    NOT NULL,
    row_id         TEXT    NOT NULL,
    locale         TEXT    NOT NULL,
    variant        TEXT    NOT NULL,
    placement      TEXT    NOT NULL,
    settings_hash  TEXT    NOT NULL,
    source_sha256  TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('done', 'failed')),
    path           TEXT    NOT NULL,   -- relative to <out>/<campaign>/ (where it would go, when failed)
    sha256         TEXT,
    bytes          INTEGER,
    width          INTEGER,
    height         INTEGER,
    mime_type      TEXT,
    quality        INTEGER,            -- the JPEG quality reached; NULL for PNG
    colors         INTEGER,            -- the palette size of a quantized PNG
    upscaled       INTEGER NOT NULL DEFAULT 0,
    error_code     TEXT,
    error_detail   TEXT,
    created_at     INTEGER NOT NULL,
    safe_area      TEXT,               -- JSON {top, bottom, left, right} the review page draws; NULL when none
    PRIMARY KEY (campaign, row_id, locale, variant, placement)
);
