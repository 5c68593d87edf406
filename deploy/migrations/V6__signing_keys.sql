-- The public signing keys, kept beside the journal so that the published keys (the JWK Set
-- and the DID document) survive the loss of the keys directory. See ARCHITECTURE.md
-- ("Signing"). Public parts only: no private key is ever stored here.
CREATE TABLE signing_keys (
    -- The key's RFC 7638 JWK thumbprint (base64url).
    kid         text        PRIMARY KEY,
    -- The public key as a JWK (kty OKP, crv Ed25519, x, kid, alg, use).
    public_jwk  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    -- Set once, when `fieldtrail keys rotate` (or `keys init` over a lost directory) retires it.
    retired_at  timestamptz
);

-- A published key stays published: no DELETE; the one UPDATE allowed sets the retirement
-- time of a key in force and changes nothing else.
CREATE FUNCTION signing_keys_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
       AND NEW.kid = OLD.kid AND NEW.public_jwk = OLD.public_jwk
       AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'published signing keys are kept: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER signing_keys_kept BEFORE UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION signing_keys_refuse_change();
