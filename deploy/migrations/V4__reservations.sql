-- Reservations: the claims of the rules that span aggregates (a learner in at most one field
-- study of their cohort; one certificate per learner and cohort). See ARCHITECTURE.md
-- ("Reservations") and fieldtrail_domain::claims.
--
-- A derived index of the events, written by the append in the same transaction as the events
-- that take a claim (the primary key refuses a second holder) and deleted from by the events
-- that release one. Unlike `events`, rows may be deleted: the facts stay in the journal.

CREATE TABLE reservations (
    claim_kind  text   NOT NULL CHECK (claim_kind IN ('field_study_member', 'certificate')),
    -- `<cohort_id>/<learner_id>`.
    claim_key   text   NOT NULL,
    -- `type/id` of the stream whose event took the claim.
    holder      text   NOT NULL,
    -- Global position of that event.
    position    bigint NOT NULL,
    PRIMARY KEY (claim_kind, claim_key)
);

-- Whether the table reflects the events. NULL: rebuild it from the events (in global-log
-- order) when fieldtrail next opens the database: a journal written before this migration,
-- or one a copy (`fieldtrail copy`) is filling.
CREATE TABLE reservations_state (
    id          integer     PRIMARY KEY CHECK (id = 1),
    rebuilt_at  timestamptz
);
INSERT INTO reservations_state (id, rebuilt_at)
SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM events) THEN NULL ELSE clock_timestamp() END;
