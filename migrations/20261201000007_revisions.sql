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
ALTER TABLE jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN parent_sha256 TEXT;      -- the image this revision was edited from
ALTER TABLE jobs ADD COLUMN thought_signature TEXT;  -- of the current image (Gemini)
ALTER TABLE jobs ADD COLUMN edit_note TEXT;          -- set while an edit of the current image is due

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
