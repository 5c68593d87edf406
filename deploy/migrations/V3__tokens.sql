-- API tokens (bearer keys). The secret is never stored: only its SHA-256, in hex.
-- See ARCHITECTURE.md ("Who may do what").

CREATE TABLE api_tokens (
    token_id     uuid        PRIMARY KEY,
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('staff', 'facilitator', 'jury', 'learner',
                                                      'auditor', 'researcher', 'dashboard')),
    cohort_id    text,
    learner_id   text,
    secret_sha256 text       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at   timestamptz
);

-- The client-supplied actor, kept beside the authenticated one (`actor`).
ALTER TABLE events ADD COLUMN reported_actor text;
