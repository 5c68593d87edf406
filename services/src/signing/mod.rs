//! Verifiable outside the building: signing keys, signed credentials, signed audit digests.
//!
//! - [`keys`]: the Ed25519 keys in their directory (`fieldtrail keys init|rotate|list`), the
//!   JWK Set and the `did:web` DID document that publish every key ever used.
//! - [`published`]: the public keys as published, the directory's and those the journal
//!   keeps (`signing_keys`), so that losing the directory loses no published key.
//! - [`jws`]: JWS compact serialization with EdDSA (the `jsonwebtoken` crate).
//! - [`credential_jwt`]: a credential secured as a **VC-JWT** (W3C "Securing Verifiable
//!   Credentials using JOSE and COSE", the JOSE form Open Badges 3.0 section 8.2 describes):
//!   the JWS payload is the credential itself with the registered claims `iss` (the issuer's
//!   DID), `jti` (the credential's id) and `nbf` (its `validFrom`); the header has `alg`
//!   `EdDSA`, `typ` `vc+jwt`, `cty` `vc` and `kid` = `<did>#<key id>`, which the issuer's DID
//!   document and the JWK Set resolve. Chosen over a Data Integrity proof because any JOSE
//!   library verifies it without JSON-LD processing or a canonicalization library.
//! - [`digest`]: the signed digests of the journal's head, kept, listed, and checked offline
//!   against an exported journal ([`export`]).
//! - [`http`] and [`cli`]: the routes and commands.

pub mod cli;
pub mod digest;
pub mod export;
pub mod http;
pub mod jws;
pub mod keys;
pub mod published;

use chrono::DateTime;
use fieldtrail_projections::formats::Publisher;
use keys::{KeyError, KeyStore};
use serde_json::Value;

/// Media type of a VC-JWT.
pub const VC_JWT_MEDIA_TYPE: &str = "application/vc+jwt";

/// The key store the settings name, with their pinned roots of trust.
pub fn store(settings: &crate::Settings) -> KeyStore {
    KeyStore::new(&settings.keys_dir).with_roots(settings.signing_roots())
}

/// `credential` secured as a VC-JWT with the key in force (see the module documentation).
///
/// # Errors
/// [`KeyError`] when there is no usable key.
pub fn credential_jwt(
    store: &KeyStore,
    publisher: &Publisher,
    credential: &Value,
) -> Result<String, KeyError> {
    let key = store.active()?;
    let did = publisher.did();
    let mut payload = credential.clone();
    if let Value::Object(map) = &mut payload {
        map.insert("iss".to_owned(), Value::from(did.clone()));
        if let Some(id) = credential.get("id").and_then(Value::as_str) {
            map.insert("jti".to_owned(), Value::from(id));
        }
        if let Some(from) = credential
            .get("validFrom")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            map.insert("nbf".to_owned(), Value::from(from.timestamp()));
        }
    }
    jws::sign(
        &key,
        &format!("{did}#{}", key.record.kid),
        "vc+jwt",
        Some("vc"),
        &payload,
    )
}
