-- Undo in the review server (issue 25): a decision may take an asset back
-- to pending. The undo is a row like any other decision, so the history
-- keeps it and the latest row stays the current approval. SQLite cannot
-- alter a CHECK constraint, so the table is rebuilt with its rows and ids
-- (nothing references it).
CREATE TABLE decisions_new (
    id             INTEGER PRIMARY KEY,
    campaign       TEXT    NOT NULL,
    asset_path     TEXT    NOT NULL,
    sha256         TEXT    NOT NULL,
    request_sha256 TEXT    NOT NULL,
    decision       TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected', 'pending')),
    decided_by     TEXT    NOT NULL,
    note           TEXT,
    decided_at     INTEGER NOT NULL
);
INSERT INTO decisions_new (id, campaign, asset_path, sha256, request_sha256, decision,
                           decided_by, note, decided_at)
    SELECT id, campaign, asset_path, sha256, request_sha256, decision, decided_by, note, decided_at
    FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_new RENAME TO decisions;
CREATE INDEX decisions_asset ON decisions (campaign, sha256, request_sha256, id);
