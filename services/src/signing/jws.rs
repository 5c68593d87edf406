//! JSON Web Signatures (RFC 7515, compact serialization) with EdDSA (RFC 8037, Ed25519), by the
//! `jsonwebtoken` crate: what signs credentials (VC-JWT) and audit digests, and checks them
//! with nothing but public keys.

use crate::signing::keys::{ActiveKey, KeyError, KeyRecord};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

/// Why a signed document did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a JWS, or its header does not parse.
    #[error("not a signed document (JWS compact serialization): {0}")]
    Malformed(String),
    /// The header names no key, or a key the given public keys do not hold.
    #[error("signed with key {0:?}, which is not among the public keys given")]
    UnknownKey(String),
    /// The signature does not match the content.
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
}

/// Signs `payload` (a JSON object) with `key`: header `alg` `EdDSA`, `typ` and `kid` as given
/// (a DID URL `<did>#<kid>`, or the bare key id), and `cty` when given.
///
/// # Errors
/// [`KeyError::Damaged`] when the key cannot be loaded or the payload not encoded.
pub fn sign(
    key: &ActiveKey,
    kid: &str,
    typ: &str,
    cty: Option<&str>,
    payload: &Value,
) -> Result<String, KeyError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    header.cty = cty.map(str::to_owned);
    let encoding = EncodingKey::from_ed_der(&key.pkcs8_der()?);
    jsonwebtoken::encode(&header, payload, &encoding)
        .map_err(|e| KeyError::Damaged(format!("cannot sign: {e}")))
}

/// The key id a header's `kid` names: the fragment of a DID URL, or the whole value.
pub fn key_id(kid: &str) -> &str {
    kid.rsplit_once('#').map_or(kid, |(_, fragment)| fragment)
}

/// Checks `token` against `keys` (found by the header's `kid`) and returns its header and
/// payload. Only `EdDSA` is accepted; time claims are not checked (a digest or a credential
/// stays verifiable after its time).
///
/// # Errors
/// [`VerifyError`].
pub fn verify(token: &str, keys: &[KeyRecord]) -> Result<(Header, Value), VerifyError> {
    let token = token.trim();
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::EdDSA {
        return Err(VerifyError::Malformed(format!(
            "algorithm {:?}, expected EdDSA",
            header.alg
        )));
    }
    let kid = header.kid.clone().unwrap_or_default();
    let record = keys
        .iter()
        .find(|k| k.kid == key_id(&kid))
        .ok_or_else(|| VerifyError::UnknownKey(kid.clone()))?;
    let decoding = DecodingKey::from_ed_components(&record.x)
        .map_err(|e| VerifyError::UnknownKey(format!("{kid}: {e}")))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .map_err(|e| VerifyError::BadSignature(e.to_string()))?;
    Ok((header, data.claims))
}

/// Public keys from a file as an auditor gets them: a JWK Set (`/.well-known/jwks.json`), one
/// JWK, or a DID document (`/.well-known/did.json`, its `verificationMethod`s'
/// `publicKeyJwk`). Only Ed25519 keys (`kty` `OKP`, `crv` `Ed25519`) are kept; a key without
/// `kid` gets its thumbprint.
///
/// # Errors
/// A sentence when the text holds no such key.
pub fn public_keys(text: &str) -> Result<Vec<KeyRecord>, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("not JSON (a JWK Set, a JWK or a DID document): {e}"))?;
    let candidates: Vec<Value> = if let Some(keys) = value.get("keys").and_then(Value::as_array) {
        keys.clone()
    } else if let Some(methods) = value.get("verificationMethod").and_then(Value::as_array) {
        methods
            .iter()
            .filter_map(|m| {
                let mut jwk = m.get("publicKeyJwk")?.clone();
                let fragment = m.get("id").and_then(Value::as_str).map(key_id);
                if let (Value::Object(map), Some(kid)) = (&mut jwk, fragment) {
                    map.entry("kid").or_insert_with(|| Value::from(kid));
                }
                Some(jwk)
            })
            .collect()
    } else {
        vec![value]
    };
    let keys: Vec<KeyRecord> = candidates
        .iter()
        .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
        .filter_map(|k| {
            let mut record = KeyRecord {
                kid: String::new(),
                created_at: chrono::DateTime::UNIX_EPOCH,
                retired_at: None,
                x: k["x"].as_str()?.to_owned(),
                endorsement: None,
            };
            let public = record.public_key().ok()?;
            record.kid = k["kid"]
                .as_str()
                .map_or_else(|| crate::signing::keys::thumbprint(&public), str::to_owned);
            Some(record)
        })
        .collect();
    if keys.is_empty() {
        return Err("it holds no Ed25519 public key (kty OKP, crv Ed25519)".to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::keys::KeyStore;
    use serde_json::json;

    #[test]
    fn a_signature_verifies_with_the_public_key_only_and_not_once_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        store.init().unwrap();
        let key = store.active().unwrap();
        let token = sign(
            &key,
            &format!("did:web:a.example#{}", key.record.kid),
            "JWT",
            None,
            &json!({"position": 7}),
        )
        .unwrap();
        let jwks = serde_json::to_string(&store.jwks().unwrap()).unwrap();
        let keys = public_keys(&jwks).unwrap();
        let (header, payload) = verify(&token, &keys).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(payload["position"], 7);
        // One character of the payload changed.
        let (head, rest) = token.split_once('.').unwrap();
        let (body, signature) = rest.split_once('.').unwrap();
        let mut body = body.to_owned().into_bytes();
        body[3] = if body[3] == b'A' { b'B' } else { b'A' };
        let forged = format!("{head}.{}.{signature}", String::from_utf8(body).unwrap());
        assert!(verify(&forged, &keys).is_err());
        // Another key.
        let other = tempfile::tempdir().unwrap();
        let other = KeyStore::new(other.path());
        other.init().unwrap();
        let theirs = public_keys(&serde_json::to_string(&other.jwks().unwrap()).unwrap()).unwrap();
        assert!(matches!(
            verify(&token, &theirs),
            Err(VerifyError::UnknownKey(_))
        ));
        let did = crate::signing::keys::did_document("did:web:a.example", &store.list().unwrap());
        assert_eq!(public_keys(&did.to_string()).unwrap(), keys);
    }
}
