-- Revise by editing and text = "edit" (issue 13): the same change as the
-- SQLite migration of this version (see its comments), which SQLite can
-- only make by rebuilding the jobs table. PostgreSQL alters it in place.
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check CHECK (state IN
    ('pending', 'in_flight', 'batch_submitting', 'batch_submitted',
     'checking', 'read_in_flight', 'read_batch_submitting', 'read_batch_submitted',
     'waiting', 'done', 'blocked', 'failed', 'superseded', 'retired'));
ALTER TABLE jobs
    ADD COLUMN revision          BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN parent_sha256     TEXT COLLATE "C",
    ADD COLUMN thought_signature TEXT COLLATE "C",
    ADD COLUMN edit_note         TEXT COLLATE "C",
    ADD COLUMN base_job          BIGINT REFERENCES jobs (id),
    ADD COLUMN base_sha256       TEXT COLLATE "C",
    ADD COLUMN copy_edit         TEXT COLLATE "C";
CREATE INDEX jobs_base ON jobs (base_job);

CREATE TABLE revisions (
    job_id            BIGINT NOT NULL REFERENCES jobs (id),
    revision          BIGINT NOT NULL,
    sha256            TEXT COLLATE "C"   NOT NULL,
    path              TEXT COLLATE "C"   NOT NULL,
    mime_type         TEXT COLLATE "C"   NOT NULL,
    thought_signature TEXT COLLATE "C",
    note              TEXT COLLATE "C"   NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (job_id, revision)
);
CREATE INDEX revisions_image ON revisions (job_id, sha256);
