-- The hash chain covers each event's global position (chain version 2), and signed digests of
-- the chain's head are kept. See ARCHITECTURE.md ("Hash chain", "Signed digests").
--
-- `chain_version` says which canonical form a row's hash covers: 1 (every row written before
-- this migration, and rows a binary older than it writes: the default) or 2 (with
-- `chain_version` and `position`). The append computes the positions before the insert
-- (nextval of the identity's sequence) and stores them explicitly.
ALTER TABLE events ADD COLUMN chain_version smallint NOT NULL DEFAULT 1;

-- Signed digests: what `fieldtrail audit digest` (and the periodic job of `serve`) signed. A
-- digest is not a fact of the domain, so not an event; like events, it is never changed.
CREATE TABLE signed_digests (
    digest_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The cut it signs: the global log up to this row (transaction id, position).
    tx_id       bigint      NOT NULL,
    position    bigint      NOT NULL,
    events      bigint      NOT NULL,
    -- Hex: the journal digest (RFC 6962 Merkle root of the stream heads) and the hash of the
    -- cut's last event.
    digest      text        NOT NULL,
    head_hash   text        NOT NULL,
    signed_at   timestamptz NOT NULL,
    key_id      text        NOT NULL,
    -- The signed statement itself (JWS compact serialization, EdDSA).
    jws         text        NOT NULL
);

CREATE FUNCTION signed_digests_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signed digests are kept as signed: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER signed_digests_append_only BEFORE UPDATE OR DELETE ON signed_digests
    FOR EACH ROW EXECUTE FUNCTION signed_digests_refuse_change();
