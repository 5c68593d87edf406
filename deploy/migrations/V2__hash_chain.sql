-- The hash chain (tamper evidence). See ARCHITECTURE.md ("Hash chain").
--
-- Every event stores `hash` = SHA-256 of its canonical form (which includes `prev_hash`), and
-- `prev_hash` = the `hash` of the previous event of its stream (32 zero bytes for version 1).
-- Both are computed by the application (fieldtrail_journal::chain) in the append's transaction.

ALTER TABLE events
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash      bytea;

-- New rows must carry the chain. NOT VALID: rows written before this migration (hash NULL) are
-- sealed by the application when it opens the database (fieldtrail_journal::audit::seal_unsealed).
ALTER TABLE events ADD CONSTRAINT events_chained
    CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32) NOT VALID;

-- Finds rows still to seal without scanning the journal.
CREATE INDEX events_unsealed ON events (stream_type, stream_id, stream_version) WHERE hash IS NULL;

-- Still append-only. The one UPDATE allowed seals a row written before the chain existed: it
-- sets `hash` and `prev_hash` where `hash` was NULL and changes no other column.
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.hash IS NULL AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
           AND (to_jsonb(NEW) - 'hash' - 'prev_hash') = (to_jsonb(OLD) - 'hash' - 'prev_hash') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the events table is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
