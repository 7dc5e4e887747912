-- no-transaction
-- Copy QA (issue 12): a job whose image must be read back passes through
-- `checking` (the image is stored; its read is due) and `read_in_flight`
-- (a reader call under a lease) before it is `done`; batched reads use
-- `read_batch_submitting` / `read_batch_submitted`. SQLite cannot alter a
-- CHECK constraint, so the table is rebuilt the documented way (foreign
-- keys off, one transaction).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE jobs_new (
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
                        'checking', 'read_in_flight', 'read_batch_submitting', 'read_batch_submitted',
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
    finished_at      INTEGER,
    plan_hash        TEXT,
    fallback_from    TEXT,
    fallback_reason  TEXT,
    -- Copy QA: reads of the current image, reads in all, regenerations
    -- asked, the verdict and its per-string detail (JSON), the reader and
    -- what reading cost (kept apart from the image's cost).
    qa_image_reads   INTEGER NOT NULL DEFAULT 0,
    qa_reads         INTEGER NOT NULL DEFAULT 0,
    qa_regenerations INTEGER NOT NULL DEFAULT 0,
    qa_verdict       TEXT CHECK (qa_verdict IN ('pass', 'fail', 'kept', 'skipped')),
    qa_strings       TEXT,
    qa_reader        TEXT,
    qa_cost_usd      REAL    NOT NULL DEFAULT 0,
    qa_regen_cost_usd REAL   NOT NULL DEFAULT 0   -- images bought again after a mismatch
);
INSERT INTO jobs_new (id, campaign, row_id, locale, variant, resolved_locale, resolution,
        request_hash, model, aspect_ratio, image_size, prompt, state, attempts, lease_run,
        lease_expires_at, not_before, batch_id, provider, mode, asset_path, sha256, bytes, width,
        height, mime_type, cost_usd, usage_json, error_code, error_detail, block_reason,
        created_at, updated_at, finished_at, plan_hash, fallback_from, fallback_reason)
    SELECT id, campaign, row_id, locale, variant, resolved_locale, resolution,
        request_hash, model, aspect_ratio, image_size, prompt, state, attempts, lease_run,
        lease_expires_at, not_before, batch_id, provider, mode, asset_path, sha256, bytes, width,
        height, mime_type, cost_usd, usage_json, error_code, error_detail, block_reason,
        created_at, updated_at, finished_at, plan_hash, fallback_from, fallback_reason
    FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE UNIQUE INDEX jobs_identity ON jobs (campaign, row_id, locale, variant)
    WHERE state NOT IN ('superseded', 'retired');
CREATE INDEX jobs_claim ON jobs (campaign, state, not_before);
CREATE INDEX jobs_batch ON jobs (batch_id);
-- A batch buys images or reads; so does an attempt.
ALTER TABLE attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'read'));
ALTER TABLE batches ADD COLUMN kind TEXT NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'read'));
COMMIT;
PRAGMA foreign_keys = ON;
