-- Commands refused by the rules, remembered by their idempotency key, so that sending the same
-- command again (or importing the same file again) gives its first answer and appends nothing,
-- even when the state has changed since. See events/journal/src/rejections.rs.
CREATE TABLE command_rejections (
    command_id  text        PRIMARY KEY,
    command     text        NOT NULL,
    -- `stream_type/stream_id` the command was decided on.
    stream      text        NOT NULL,
    -- FORMAT.md's code and the message answered.
    code        text        NOT NULL,
    message     text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- One command id gets one answer, applied or refused, even from two servers at once: both
-- writes take the same transaction-scoped advisory lock on the id first, then look at the
-- other table with a fresh snapshot (a statement inside a volatile PL/pgSQL function sees what
-- committed before it started), so the second writer sees the first one's row.
CREATE FUNCTION command_answer_lock(command_id text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('fieldtrail command ' || command_id, 0))
$$;

-- A refused id is spent: a ledger insert of it fails as a duplicate would (the append maps a
-- unique violation on command_ledger_pkey to "duplicate command", whose answer is then the
-- remembered refusal).
CREATE FUNCTION command_ledger_refuse_rejected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM command_answer_lock(NEW.command_id);
    IF EXISTS (SELECT 1 FROM command_rejections WHERE command_id = NEW.command_id) THEN
        RAISE EXCEPTION 'command % was refused before: its id is spent', NEW.command_id
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'command_ledger_pkey';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER command_ledger_refuse_rejected
    BEFORE INSERT ON command_ledger
    FOR EACH ROW EXECUTE FUNCTION command_ledger_refuse_rejected();

-- An applied id is not remembered as refused: the refusal is dropped (its writer then reads
-- the ledger's answer).
CREATE FUNCTION command_rejections_skip_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM command_answer_lock(NEW.command_id);
    IF EXISTS (SELECT 1 FROM command_ledger WHERE command_id = NEW.command_id) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER command_rejections_skip_applied
    BEFORE INSERT ON command_rejections
    FOR EACH ROW EXECUTE FUNCTION command_rejections_skip_applied();
