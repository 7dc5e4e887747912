-- Undo in the review server (issue 25): a decision may take an asset back
-- to pending, recorded as a row like any other decision (history kept).
ALTER TABLE decisions DROP CONSTRAINT decisions_decision_check;
ALTER TABLE decisions ADD CONSTRAINT decisions_decision_check
    CHECK (decision IN ('approved', 'rejected', 'pending'));
