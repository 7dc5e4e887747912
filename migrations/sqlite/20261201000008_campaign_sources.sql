-- Campaigns queued by `adloc enqueue`, with every file of their folder, so
-- a worker on any host (and `adloc manifest`) loads the campaign from the
-- store alone.
CREATE TABLE enqueued_campaigns (
    campaign        TEXT    PRIMARY KEY,
    sources_sha256  TEXT    NOT NULL,
    mode            TEXT,
    enqueued_at     INTEGER NOT NULL
);

CREATE TABLE campaign_sources (
    campaign  TEXT NOT NULL REFERENCES enqueued_campaigns (campaign),
    path      TEXT NOT NULL,
    bytes     BLOB NOT NULL,
    PRIMARY KEY (campaign, path)
);
