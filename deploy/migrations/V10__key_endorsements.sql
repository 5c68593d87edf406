-- Each published signing key after the first carries its endorsement: a JWS (EdDSA, typ
-- `fieldtrail-key-endorsement+jwt`) by the key in force before it, over the new key's id and
-- public key, made by `fieldtrail keys rotate` from the keys directory. The published key set
-- is the keys reachable by endorsements from a key the server trusts outside the database (its
-- keys directory, or the pinned root `FIELDTRAIL_SIGNING_ROOT`): a row inserted here by hand
-- is not published. See ARCHITECTURE.md ("Signing"). NULL for a root, and for keys recorded
-- before this migration.
ALTER TABLE signing_keys ADD COLUMN endorsement text;

-- The one UPDATE allowed still sets the retirement time of a key in force and changes nothing
-- else, the endorsement included.
CREATE OR REPLACE FUNCTION signing_keys_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
       AND NEW.kid = OLD.kid AND NEW.public_jwk = OLD.public_jwk
       AND NEW.created_at = OLD.created_at
       AND NEW.endorsement IS NOT DISTINCT FROM OLD.endorsement THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'published signing keys are kept: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
