-- Placements: a delivered asset made to an ad platform's slot; see the
-- SQLite migration of the same version for the meaning of each column.
CREATE TABLE placements (
    campaign       TEXT COLLATE "C" NOT NULL,
    row_id         TEXT COLLATE "C" NOT NULL,
    locale         TEXT COLLATE "C" NOT NULL,
    variant        TEXT COLLATE "C" NOT NULL,
    placement      TEXT COLLATE "C" NOT NULL,
    settings_hash  TEXT COLLATE "C" NOT NULL,
    source_sha256  TEXT COLLATE "C" NOT NULL,
    state          TEXT COLLATE "C" NOT NULL CHECK (state IN ('done', 'failed')),
    path           TEXT COLLATE "C" NOT NULL,
    sha256         TEXT COLLATE "C",
    bytes          BIGINT,
    width          BIGINT,
    height         BIGINT,
    mime_type      TEXT COLLATE "C",
    quality        BIGINT,
    colors         BIGINT,
    upscaled       BIGINT NOT NULL DEFAULT 0,
    error_code     TEXT COLLATE "C",
    error_detail   TEXT COLLATE "C",
    created_at     BIGINT NOT NULL,
    safe_area      TEXT COLLATE "C",
    PRIMARY KEY (campaign, row_id, locale, variant, placement)
);
