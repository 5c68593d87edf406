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

-- A refused id is spent: a ledger insert of it fails as a duplicate would (the append maps a
-- unique violation on command_ledger_pkey to "duplicate command", whose answer is then the
-- remembered refusal).
CREATE FUNCTION command_ledger_refuse_rejected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
