-- Model chains and fallback. `plan_hash` is the request hash of the job as
-- planned (its variant's primary model): a rerun compares against it, so a
-- job finished by a fallback model stays finished when the primary recovers.
-- `request_hash` stays the hash of what was actually asked.
ALTER TABLE jobs ADD COLUMN plan_hash TEXT;
ALTER TABLE jobs ADD COLUMN fallback_from TEXT;     -- the model the job was moved off
ALTER TABLE jobs ADD COLUMN fallback_reason TEXT;   -- why (a reason code)
