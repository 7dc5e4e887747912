-- Review and approvals (issue 13).

-- One row per decision, never updated or deleted, so an asset's history
-- stays. An asset is the exact file (sha256) made for the exact request
-- (request_sha256): the current approval of an asset is its latest
-- decision, and a changed request makes a new asset with no decision yet.
CREATE TABLE decisions (
    id             INTEGER PRIMARY KEY,
    campaign       TEXT    NOT NULL,
    asset_path     TEXT    NOT NULL,   -- as in the manifest, when decided
    sha256         TEXT    NOT NULL,
    request_sha256 TEXT    NOT NULL,
    decision       TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected')),
    decided_by     TEXT    NOT NULL,
    note           TEXT,
    decided_at     INTEGER NOT NULL
);
CREATE INDEX decisions_asset ON decisions (campaign, sha256, request_sha256, id);

-- The copy meant to be in each image (JSON object: column -> text), shown
-- on the review page and in the manifest. Not part of any hash.
ALTER TABLE jobs ADD COLUMN copy_json TEXT;
ALTER TABLE composites ADD COLUMN copy_json TEXT;

-- The manifest as each run built it. Decisions made after a run rewrite
-- manifest.json and the review page from the latest one (the overlay plan
-- needs the campaign folder, the decisions do not), and the page compares
-- it with the one before to show what changed since the previous run.
CREATE TABLE manifest_snapshots (
    run_id     INTEGER PRIMARY KEY REFERENCES runs (id),
    campaign   TEXT    NOT NULL,
    json       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX manifest_snapshots_campaign ON manifest_snapshots (campaign, run_id);
