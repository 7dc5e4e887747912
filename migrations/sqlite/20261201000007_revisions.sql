-- no-transaction
-- Revise by editing (issue 13, third part).
--
-- A rejected asset is regenerated as an edit of its current image, with the
-- reviewer's note as the instruction. The edit is the same job queued again
-- (`edit_note` set while it is due), so it is claimed, batched, retried and
-- priced like any other call. The image it replaces is kept beside the asset
-- (`<row-id>.r<N>.<ext>`) and recorded in `revisions`, one row per replaced
-- image, never updated: an edit is keyed by (job, sha256 of the image it
-- edits), so a rerun after an edit does not edit again, and a new rejection
-- of revision 2 makes revision 3.
--
-- Gemini answers an edit as a second conversational turn, which needs the
-- model's image part with its `thoughtSignature` exactly as returned: the
-- signature is stored with every image when it is made.
--
-- text = "edit" (a third text mode): the base locale's image is generated
-- from the prompt and every other locale is an edit of it that replaces the
-- copy. A locale job waits (`waiting`) for its base job's image; a changed
-- base image re-edits the locales. SQLite cannot alter a CHECK constraint,
-- so the jobs table is rebuilt the documented way (as in
-- 20261201000003_copy_qa.sql), with the new columns in place.
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
                        'waiting', 'done', 'blocked', 'failed', 'superseded', 'retired')),
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
    qa_regen_cost_usd REAL   NOT NULL DEFAULT 0,  -- images bought again after a mismatch
    copy_json        TEXT,
    qa_overlay       INTEGER NOT NULL DEFAULT 0 CHECK (qa_overlay IN (0, 1)),
    -- Revise by editing.
    revision          INTEGER NOT NULL DEFAULT 1,
    parent_sha256     TEXT,     -- the image this revision was edited from
    thought_signature TEXT,     -- of the current image (Gemini)
    edit_note         TEXT,     -- set while an edit of the current image is due
    -- text = "edit": a locale's image is an edit of the base locale's.
    base_job          INTEGER REFERENCES jobs (id),
    base_sha256       TEXT,     -- the base image the locale was (or is to be) edited from
    copy_edit         TEXT      -- the instruction: replace the base copy with the locale's
);
INSERT INTO jobs_new (id, campaign, row_id, locale, variant, resolved_locale, resolution, request_hash, model, aspect_ratio, image_size, prompt, state, attempts, lease_run, lease_expires_at, not_before, batch_id, provider, mode, asset_path, sha256, bytes, width, height, mime_type, cost_usd, usage_json, error_code, error_detail, block_reason, created_at, updated_at, finished_at, plan_hash, fallback_from, fallback_reason, qa_image_reads, qa_reads, qa_regenerations, qa_verdict, qa_strings, qa_reader, qa_cost_usd, qa_regen_cost_usd, copy_json, qa_overlay)
    SELECT id, campaign, row_id, locale, variant, resolved_locale, resolution, request_hash, model, aspect_ratio, image_size, prompt, state, attempts, lease_run, lease_expires_at, not_before, batch_id, provider, mode, asset_path, sha256, bytes, width, height, mime_type, cost_usd, usage_json, error_code, error_detail, block_reason, created_at, updated_at, finished_at, plan_hash, fallback_from, fallback_reason, qa_image_reads, qa_reads, qa_regenerations, qa_verdict, qa_strings, qa_reader, qa_cost_usd, qa_regen_cost_usd, copy_json, qa_overlay
    FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE UNIQUE INDEX jobs_identity ON jobs (campaign, row_id, locale, variant)
    WHERE state NOT IN ('superseded', 'retired');
CREATE INDEX jobs_claim ON jobs (campaign, state, not_before);
CREATE INDEX jobs_batch ON jobs (batch_id);
CREATE INDEX jobs_base ON jobs (base_job);

CREATE TABLE revisions (
    job_id            INTEGER NOT NULL REFERENCES jobs (id),
    revision          INTEGER NOT NULL,   -- the revision number of the replaced image
    sha256            TEXT    NOT NULL,   -- the replaced image
    path              TEXT    NOT NULL,   -- where it is kept, relative to <out>/<campaign>/
    mime_type         TEXT    NOT NULL,
    thought_signature TEXT,
    note              TEXT    NOT NULL,   -- the instruction that replaced it
    created_at        INTEGER NOT NULL,   -- when it was replaced
    PRIMARY KEY (job_id, revision)
);
CREATE INDEX revisions_image ON revisions (job_id, sha256);
COMMIT;
PRAGMA foreign_keys = ON;
