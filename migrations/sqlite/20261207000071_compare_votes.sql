-- `adloc compare` (issue 25): reviewers' votes between models, one row per
-- vote, never updated (a voter's latest vote on a cell is the one counted).
-- `campaign` is the real campaign; each model's sample lives under its own
-- campaign name (`<campaign>.compare.<model>`).
CREATE TABLE compare_votes (
    id        INTEGER PRIMARY KEY,
    campaign  TEXT    NOT NULL,
    row_id    TEXT    NOT NULL,
    locale    TEXT    NOT NULL,
    variant   TEXT    NOT NULL,
    model     TEXT    NOT NULL,
    sha256    TEXT    NOT NULL,   -- the image voted for
    voter     TEXT    NOT NULL,
    voted_at  INTEGER NOT NULL
);
CREATE INDEX compare_votes_campaign ON compare_votes (campaign, id);
