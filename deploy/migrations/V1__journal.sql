-- The journal: one row per event, append-only. See ARCHITECTURE.md ("Journal").

CREATE TABLE events (
    -- Global position: taken at insert, visible at commit. Readers order by (tx_id, position).
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_type     text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    -- The writing transaction's id (PostgreSQL 13+ xid8), for the commit-safe global log.
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           text        NOT NULL,
    command_id      text        NOT NULL,
    correlation_id  text        NOT NULL,
    causation_id    text        NOT NULL,
    UNIQUE (stream_type, stream_id, stream_version)
);

CREATE INDEX events_global_order ON events (tx_id, position);
CREATE INDEX events_field_study_cohort ON events ((payload ->> 'cohort_id'))
    WHERE stream_type = 'field_study' AND event_type = 'field_study_formed';

-- Nothing is overwritten: corrections are new events.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Readers wait on LISTEN fieldtrail_events; NOTIFY is delivered at commit.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fieldtrail_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- The command ledger: one row per applied command_id, written in the append's transaction.
CREATE TABLE command_ledger (
    command_id      text        PRIMARY KEY,
    command         text        NOT NULL,
    stream_type     text        NOT NULL,
    stream_id       text        NOT NULL,
    first_position  bigint      NOT NULL,
    last_position   bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Read models: one JSON document per (kind, key), written with their checkpoint in one transaction.
CREATE TABLE read_models (
    kind      text   NOT NULL,
    key       text   NOT NULL,
    document  jsonb  NOT NULL,
    position  bigint NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Cursors of the projector and the relay over the global log: (tx_id, position).
CREATE TABLE checkpoints (
    name        text        PRIMARY KEY,
    tx_id       xid8        NOT NULL,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
