-- The run that assigned a batch. Only a batch whose owner run has ended may
-- be resumed by another runner: a live owner may be in the middle of the
-- create call, and resuming it then would create the batch twice.
ALTER TABLE batches ADD COLUMN owner_run INTEGER REFERENCES runs (id);
