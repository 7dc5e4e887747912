-- adloc state: runs, jobs, attempts, batches.
-- Times are unix milliseconds (INTEGER) for comparisons and RFC 3339 text for people.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    campaign      TEXT    NOT NULL,
    provider      TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    host          TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT
);

CREATE TABLE batches (
    id             INTEGER PRIMARY KEY,
    campaign       TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    display_name   TEXT    NOT NULL UNIQUE,
    remote_name    TEXT,
    state          TEXT    NOT NULL CHECK (state IN
                     ('submitting', 'submitted', 'succeeded', 'failed', 'expired', 'cancelled', 'ingested', 'abandoned')),
    request_count  INTEGER NOT NULL,
    detail         TEXT,
    created_at     INTEGER NOT NULL,
    submitted_at   INTEGER,
    finished_at    INTEGER,
    polls          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batches_campaign_state ON batches (campaign, state);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    campaign         TEXT    NOT NULL,
    row_id           TEXT    NOT NULL,
    locale           TEXT    NOT NULL,
    variant          TEXT    NOT NULL,
    resolved_locale  TEXT    NOT NULL,
    resolution       TEXT    NOT NULL DEFAULT '{}',
    request_hash     TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    aspect_ratio     TEXT    NOT NULL,
    image_size       TEXT    NOT NULL,
    prompt           TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN
                       ('pending', 'in_flight', 'batch_submitting', 'batch_submitted',
                        'done', 'blocked', 'failed', 'superseded', 'retired')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_run        INTEGER REFERENCES runs (id),
    lease_expires_at INTEGER,
    not_before       INTEGER,
    batch_id         INTEGER REFERENCES batches (id),
    provider         TEXT,
    mode             TEXT,
    asset_path       TEXT,
    sha256           TEXT,
    bytes            INTEGER,
    width            INTEGER,
    height           INTEGER,
    mime_type        TEXT,
    cost_usd         REAL,
    usage_json       TEXT,
    error_code       TEXT,
    error_detail     TEXT,
    block_reason     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
-- One live job per identity; superseded and retired rows are history.
CREATE UNIQUE INDEX jobs_identity ON jobs (campaign, row_id, locale, variant)
    WHERE state NOT IN ('superseded', 'retired');
CREATE INDEX jobs_claim ON jobs (campaign, state, not_before);
CREATE INDEX jobs_batch ON jobs (batch_id);

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    job_id       INTEGER NOT NULL REFERENCES jobs (id),
    run_id       INTEGER REFERENCES runs (id),
    mode         TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL CHECK (outcome IN ('ok', 'retry', 'job_terminal', 'run_terminal')),
    reason       TEXT,
    http_status  INTEGER,
    detail       TEXT,
    cost_usd     REAL    NOT NULL DEFAULT 0
);
CREATE INDEX attempts_job ON attempts (job_id);
