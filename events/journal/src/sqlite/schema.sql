-- The embedded journal: the same tables as deploy/migrations (PostgreSQL), in one SQLite file.
-- Times are integers: microseconds since the Unix epoch, UTC (PostgreSQL's timestamptz
-- precision, so a hash computed on one backend verifies on the other). JSON is text.

CREATE TABLE IF NOT EXISTS events (
    -- Global position. One writer at a time (BEGIN IMMEDIATE), so positions commit in order.
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    stream_type     TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    -- The appending transaction's number (1, 2, ...), or the source's transaction id for rows
    -- copied from PostgreSQL: readers order by (tx_id, position) on both backends.
    tx_id           INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    event_version   TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    actor           TEXT    NOT NULL,
    command_id      TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT    NOT NULL,
    reported_actor  TEXT,
    prev_hash       BLOB,
    hash            BLOB,
    -- Which canonical form `hash` covers: 2 (with the position) for every row written since
    -- user_version 3; a file from before gets the column at open, its rows keeping 1.
    chain_version   INTEGER NOT NULL DEFAULT 1,
    -- The name of the command that appended the row, covered by its hash (user_version 5; NULL
    -- in rows written before, whose hashes do not cover it; a file from before gets the
    -- column at open).
    command         TEXT,
    UNIQUE (stream_type, stream_id, stream_version)
);

CREATE INDEX IF NOT EXISTS events_global_order ON events (tx_id, position);

-- Nothing is overwritten: corrections are new events.
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only: DELETE refused');
END;

CREATE TABLE IF NOT EXISTS command_ledger (
    command_id      TEXT    PRIMARY KEY,
    command         TEXT    NOT NULL,
    stream_type     TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL
);

-- Commands refused by the rules, by idempotency key (see rejections.rs): their id is spent.
CREATE TABLE IF NOT EXISTS command_rejections (
    command_id   TEXT    PRIMARY KEY,
    command      TEXT    NOT NULL,
    stream       TEXT    NOT NULL,
    code         TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    recorded_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS read_models (
    kind      TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    document  TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE IF NOT EXISTS checkpoints (
    name        TEXT    PRIMARY KEY,
    tx_id       INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS api_tokens (
    token_id      TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('staff', 'facilitator', 'jury', 'learner',
                                                   'auditor', 'researcher', 'dashboard')),
    cohort_id     TEXT,
    learner_id    TEXT,
    secret_sha256 TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

-- Reservations (user_version 2): the claims of the rules that span aggregates (see
-- deploy/migrations/V4__reservations.sql and ARCHITECTURE.md, "Reservations"). A derived index
-- of the events: the append writes it under the write lock; releases delete from it.
CREATE TABLE IF NOT EXISTS reservations (
    claim_kind  TEXT    NOT NULL CHECK (claim_kind IN ('field_study_member', 'certificate')),
    claim_key   TEXT    NOT NULL,
    holder      TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (claim_kind, claim_key)
);

-- NULL `rebuilt_at`: rebuild the reservations from the events at the next open (a file
-- written before user_version 2, or one a copy is filling).
CREATE TABLE IF NOT EXISTS reservations_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    rebuilt_at  INTEGER
);
INSERT OR IGNORE INTO reservations_state (id, rebuilt_at) VALUES (1, NULL);

-- Signed digests (user_version 3): see deploy/migrations/V5__chain_positions_and_digests.sql.
CREATE TABLE IF NOT EXISTS signed_digests (
    digest_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id       INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    head_hash   TEXT    NOT NULL,
    signed_at   INTEGER NOT NULL,
    key_id      TEXT    NOT NULL,
    jws         TEXT    NOT NULL
);
CREATE TRIGGER IF NOT EXISTS signed_digests_no_update BEFORE UPDATE ON signed_digests
BEGIN
    SELECT RAISE(ABORT, 'signed digests are kept as signed: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS signed_digests_no_delete BEFORE DELETE ON signed_digests
BEGIN
    SELECT RAISE(ABORT, 'signed digests are kept as signed: DELETE refused');
END;

-- Published signing keys (user_version 4): see deploy/migrations/V6__signing_keys.sql.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid         TEXT    PRIMARY KEY,
    public_jwk  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    -- The JWS by which the key before it endorsed it (user_version 6): see
    -- deploy/migrations/V10__key_endorsements.sql. A file from before gets the column at open.
    endorsement TEXT
);
CREATE TRIGGER IF NOT EXISTS signing_keys_no_delete BEFORE DELETE ON signing_keys
BEGIN
    SELECT RAISE(ABORT, 'published signing keys are kept: DELETE refused');
END;
-- (Created at open, after the column `endorsement` exists: see `SIGNING_KEYS_TRIGGER`.)

-- The events' command names (user_version 5): see deploy/migrations/V7__event_command.sql.

-- The key table (see deploy/migrations/V9__subject_keys.sql): each data subject's key,
-- wrapped by the master key; NULL `wrapped_key` once the subject is erased. Apart from the
-- journal's tables: no trigger, no reference to them, never copied into an export.
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id  TEXT    PRIMARY KEY,
    wrapped_key BLOB,
    created_at  INTEGER NOT NULL,
    erased_at   INTEGER,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

PRAGMA user_version = 6;
