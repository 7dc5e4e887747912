-- Multi-turn edits as documented (issue 21): an edit of revision N sends
-- the whole conversation (prompt, model turn 1, note 1, …, model turn N,
-- note N), each model turn with its non-thought parts and their
-- `thoughtSignature`s exactly as received. `model_turn` keeps the turn that
-- made the current image (JSON: text parts with their signatures and one
-- image part with its signature); it moves to `revisions` with the image
-- when an edit replaces it. The image bytes are never stored here: they are
-- the kept file (`revisions.path`, checked against `revisions.sha256`) or
-- the asset. NULL for images made before this version (an edit then falls
-- back to the image's own signature) and for vendors without turns.
-- Same columns in the PostgreSQL migration of the same version.
ALTER TABLE jobs ADD COLUMN model_turn TEXT;
ALTER TABLE revisions ADD COLUMN model_turn TEXT;
