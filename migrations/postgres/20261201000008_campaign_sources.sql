-- Campaigns queued by `adloc enqueue`, with every file of their folder, so
-- a worker on any host (and `adloc manifest`) loads the campaign from the
-- store alone. Same schema as the SQLite migration of the same version.
CREATE TABLE enqueued_campaigns (
    campaign        TEXT COLLATE "C"    PRIMARY KEY,
    sources_sha256  TEXT COLLATE "C"    NOT NULL,
    mode            TEXT COLLATE "C",
    enqueued_at     BIGINT  NOT NULL
);

CREATE TABLE campaign_sources (
    campaign  TEXT COLLATE "C"  NOT NULL REFERENCES enqueued_campaigns (campaign),
    path      TEXT COLLATE "C"  NOT NULL,
    bytes     BYTEA NOT NULL,
    PRIMARY KEY (campaign, path)
);
