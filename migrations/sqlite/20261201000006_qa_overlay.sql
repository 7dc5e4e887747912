-- Copy QA's overlay fallback (issue 12): a job whose painted copy could not
-- be trusted is bought once more as copy-free art, and adloc typesets the
-- locale's copy into the variant's text boxes. The flag says which request
-- the job now asks for (the art) and that its asset is a composite.
ALTER TABLE jobs ADD COLUMN qa_overlay INTEGER NOT NULL DEFAULT 0 CHECK (qa_overlay IN (0, 1));
