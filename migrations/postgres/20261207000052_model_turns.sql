-- Multi-turn edits as documented (issue 21): the model turn that made the
-- current image (JSON, its non-thought parts with their signatures, no image
-- bytes), moved to `revisions` with the image when an edit replaces it.
-- Same columns in the SQLite migration of the same version (see its
-- comments).
ALTER TABLE jobs ADD COLUMN model_turn TEXT COLLATE "C";
ALTER TABLE revisions ADD COLUMN model_turn TEXT COLLATE "C";
