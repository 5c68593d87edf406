-- The key table of crypto-shredding (ARCHITECTURE.md, "Personal data"): one key per data
-- subject (`learner:<id>`, `field_study:<id>`, `jury:<id>`, `complaint:<cohort>/<id>`),
-- wrapped by the master key from configuration. Kept apart from the journal's tables: no
-- trigger, no foreign key, never in an export; a backup that must not undo an erasure is
-- taken without it, or rotated with it. Erasing a subject sets `wrapped_key` to NULL (the
-- row stays, to say when), which makes every sealed field of the subject unreadable.

CREATE TABLE subject_keys (
    subject_id  text        PRIMARY KEY,
    wrapped_key bytea,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
