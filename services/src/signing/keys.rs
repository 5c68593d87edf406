//! The signing keys: Ed25519 key pairs (RFC 8032, `ed25519-dalek`) kept in a directory, outside
//! the journal and never in the database.
//!
//! ```text
//! <keys_dir>/            0700
//!   keys.json            every key ever used: kid, created_at, retired_at, public key (x)
//!   <kid>.pem            the private key in force, PKCS #8 (RFC 5958) PEM, 0600
//! ```
//!
//! `kid` is the key's JWK thumbprint (RFC 7638: SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":…}`,
//! base64url). `fieldtrail keys init` creates the first key; `fieldtrail keys rotate` creates a
//! new one, has the old one sign its **endorsement** ([`endorse`]: a JWS over the new key's id
//! and public key, kept in the manifest and in the journal), marks the old one retired and
//! deletes its private key (nothing can sign with it again), while its public key stays
//! listed, so what it signed still verifies. The endorsements chain every key back to the
//! first one: the root of trust of the keys the journal keeps
//! ([`crate::signing::published`]). A private key
//! file that the group or others may read is refused, as `ssh` refuses one. The manifest is
//! written to a temporary file and renamed, so a crash leaves the old or the new one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The keys directory when none is configured (relative to the working directory).
pub const DEFAULT_DIR: &str = "fieldtrail-keys";

/// The manifest's file name.
const MANIFEST: &str = "keys.json";

/// One key, as the manifest lists it (public parts only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The JWK thumbprint of the public key (RFC 7638), base64url.
    pub kid: String,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When `keys rotate` retired it; `None` for the key in force.
    pub retired_at: Option<DateTime<Utc>>,
    /// The public key, 32 bytes, base64url without padding (the JWK's `x`).
    pub x: String,
    /// Its endorsement by the key in force before it ([`endorse`]); `None` for a first key
    /// and for keys made before keys were endorsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
}

impl KeyRecord {
    /// The public key as a JWK (RFC 8037: `kty` `OKP`, `crv` `Ed25519`), with `kid`, `alg`
    /// `EdDSA` and `use` `sig`.
    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid,
               "alg": "EdDSA", "use": "sig"})
    }

    /// The 32 bytes of the public key.
    ///
    /// # Errors
    /// [`KeyError::Damaged`] when `x` is not 32 bytes of base64url.
    pub fn public_key(&self) -> Result<VerifyingKey, KeyError> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&self.x)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError::Damaged(format!("key {}: x is not 32 bytes", self.kid)))?;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|e| KeyError::Damaged(format!("key {}: {e}", self.kid)))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    keys: Vec<KeyRecord>,
}

/// Why the keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key in force: `fieldtrail keys init` has not been run for this directory.
    #[error("no signing key in {0}: run `fieldtrail keys init` (keys directory: --keys-dir, FIELDTRAIL_KEYS_DIR)")]
    NoKey(PathBuf),
    /// `keys init` on a directory that has a key in force.
    #[error("{0} already has a signing key in force ({1}): `fieldtrail keys rotate` replaces it")]
    AlreadyInitialised(PathBuf, String),
    /// A private key others may read.
    #[error("{0}")]
    Insecure(String),
    /// A file that cannot be read or written.
    #[error("{0}")]
    Io(String),
    /// A manifest or key file that does not parse, or a private key that is not the listed one.
    #[error("{0}")]
    Damaged(String),
}

impl KeyError {
    /// What an HTTP answer may say of this error: no file name, no path, no detail of the
    /// server (those go to the server's log).
    pub fn public_message(&self) -> &'static str {
        match self {
            KeyError::NoKey(_) => {
                "no signing key: the operator has to run `fieldtrail keys init` on the server"
            }
            KeyError::AlreadyInitialised(..) => "a signing key is already in force",
            KeyError::Insecure(_) => {
                "the signing key is refused: others may read it (see the server's log)"
            }
            KeyError::Io(_) | KeyError::Damaged(_) => {
                "the signing keys cannot be read (see the server's log)"
            }
        }
    }
}

/// The private key in force, with its record.
pub struct ActiveKey {
    /// Its record.
    pub record: KeyRecord,
    signing: SigningKey,
}

impl ActiveKey {
    /// The private key as PKCS #8 DER (what a JOSE library loads).
    ///
    /// # Errors
    /// [`KeyError::Damaged`] if it cannot be encoded.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        self.signing
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| KeyError::Damaged(format!("key {}: {e}", self.record.kid)))
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256 of the JWK's required
/// members in lexicographic order, without whitespace).
pub fn thumbprint(public: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(public.as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> KeyError {
    KeyError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// What `keys init` did ([`KeyStore::init`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initialised {
    /// The new key, in force.
    pub key: KeyRecord,
    /// The directory's mode before `init` restricted it to `0700`, when the group or others
    /// could enter or read it.
    pub tightened_from: Option<u32>,
}

/// A keys directory, and the pinned roots of trust (`FIELDTRAIL_SIGNING_ROOT`).
#[derive(Clone, Debug)]
pub struct KeyStore {
    dir: PathBuf,
    roots: Vec<String>,
}

impl KeyStore {
    /// The store in `dir` (nothing is read or created yet), with no pinned root.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            roots: Vec::new(),
        }
    }

    /// The store, trusting the keys whose ids are in `roots` (RFC 7638 thumbprints, which
    /// bind the public keys) as roots besides the directory's keys.
    #[must_use]
    pub fn with_roots(mut self, roots: Vec<String>) -> Self {
        self.roots = roots;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pinned roots of trust (key ids), as configured.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    fn manifest(&self) -> Result<Manifest, KeyError> {
        let path = self.dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                    KeyError::Damaged(format!("{} does not parse: {e}", path.display()))
                })?;
                // A record whose public key does not give its id (RFC 7638) was altered: it
                // would publish a key that verifies nothing signed under that id.
                for record in &manifest.keys {
                    if thumbprint(&record.public_key()?) != record.kid {
                        return Err(KeyError::Damaged(format!(
                            "{}: key {}: its id is not the thumbprint of its public key (x)",
                            path.display(),
                            record.kid
                        )));
                    }
                }
                Ok(manifest)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(io("read", &path, e)),
        }
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), KeyError> {
        let path = self.dir.join(MANIFEST);
        let temporary = self.dir.join(format!("{MANIFEST}.tmp"));
        let bytes =
            serde_json::to_vec_pretty(manifest).map_err(|e| KeyError::Damaged(e.to_string()))?;
        std::fs::write(&temporary, bytes).map_err(|e| io("write", &temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io("write", &path, e))
    }

    fn key_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    /// Creates the directory (`0700`), or tightens an existing one others may enter or read
    /// to `0700`; returns its mode before, when it was tightened.
    fn create_dir(&self) -> Result<Option<u32>, KeyError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| io("create", &self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&self.dir)
                .map_err(|e| io("read", &self.dir, e))?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| io("restrict to mode 700", &self.dir, e))?;
                return Ok(Some(mode));
            }
        }
        Ok(None)
    }

    /// Generates a key pair, writes its private key (`0600`, never over an existing file) and
    /// returns its record (not yet in the manifest).
    fn generate(&self) -> Result<KeyRecord, KeyError> {
        let signing = SigningKey::generate(&mut rand_core::OsRng);
        let public = signing.verifying_key();
        let record = KeyRecord {
            kid: thumbprint(&public),
            created_at: Utc::now().trunc_subsecs(0),
            retired_at: None,
            x: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            endorsement: None,
        };
        let pem = signing
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Damaged(format!("cannot encode the new key: {e}")))?;
        let path = self.key_path(&record.kid);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| io("create", &path, e))?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("write", &path, e))?;
        Ok(record)
    }

    /// Every key ever used, oldest first (empty when the directory has none).
    ///
    /// # Errors
    /// [`KeyError::Io`] / [`KeyError::Damaged`] for an unreadable manifest.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        Ok(self.manifest()?.keys)
    }

    /// `fieldtrail keys init`: creates the directory (`0700`; an existing one that the group
    /// or others may enter is restricted to `0700`) and the first key.
    ///
    /// # Errors
    /// [`KeyError::AlreadyInitialised`] when a key is in force; I/O errors.
    pub fn init(&self) -> Result<Initialised, KeyError> {
        let tightened_from = self.create_dir()?;
        let mut manifest = self.manifest()?;
        if let Some(current) = manifest.keys.iter().find(|k| k.retired_at.is_none()) {
            return Err(KeyError::AlreadyInitialised(
                self.dir.clone(),
                current.kid.clone(),
            ));
        }
        let record = self.generate()?;
        manifest.keys.push(record.clone());
        self.write_manifest(&manifest)?;
        Ok(Initialised {
            key: record,
            tightened_from,
        })
    }

    /// `fieldtrail keys rotate`: a new key comes into force; the old one is retired (its
    /// private key deleted, its public key kept in the manifest). Returns (retired, new).
    ///
    /// # Errors
    /// [`KeyError::NoKey`] when there is no key to rotate; I/O errors.
    pub fn rotate(&self) -> Result<(KeyRecord, KeyRecord), KeyError> {
        let mut manifest = self.manifest()?;
        let Some(at) = manifest.keys.iter().position(|k| k.retired_at.is_none()) else {
            return Err(KeyError::NoKey(self.dir.clone()));
        };
        // The key in force endorses its successor before its private key is deleted.
        let endorser = self.active()?;
        let mut new = self.generate()?;
        new.endorsement = Some(endorse(&endorser, &new)?);
        let now = new.created_at;
        manifest.keys[at].retired_at = Some(now);
        let retired = manifest.keys[at].clone();
        manifest.keys.push(new.clone());
        self.write_manifest(&manifest)?;
        let old = self.key_path(&retired.kid);
        match std::fs::remove_file(&old) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("delete the retired private key", &old, e))
            }
            _ => {}
        }
        Ok((retired, new))
    }

    /// The key in force, its private key read and checked: not readable by the group or
    /// others, and the one the manifest lists.
    ///
    /// # Errors
    /// [`KeyError::NoKey`], [`KeyError::Insecure`], [`KeyError::Damaged`], I/O errors.
    pub fn active(&self) -> Result<ActiveKey, KeyError> {
        let manifest = self.manifest()?;
        let record = manifest
            .keys
            .into_iter()
            .rfind(|k| k.retired_at.is_none())
            .ok_or_else(|| KeyError::NoKey(self.dir.clone()))?;
        let path = self.key_path(&record.kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .map_err(|e| io("read", &path, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyError::Insecure(format!(
                    "{} may be read by others (mode {:o}): refused; run chmod 600 on it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let pem = std::fs::read_to_string(&path).map_err(|e| io("read", &path, e))?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            KeyError::Damaged(format!(
                "{} is not a PKCS #8 Ed25519 key: {e}",
                path.display()
            ))
        })?;
        if thumbprint(&signing.verifying_key()) != record.kid {
            return Err(KeyError::Damaged(format!(
                "{} does not hold the key {} the manifest lists",
                path.display(),
                record.kid
            )));
        }
        Ok(ActiveKey { record, signing })
    }

    /// Every key ever used as a JWK Set (RFC 7517 section 5).
    ///
    /// # Errors
    /// As [`KeyStore::list`].
    pub fn jwks(&self) -> Result<Value, KeyError> {
        Ok(json!({"keys": self.list()?.iter().map(KeyRecord::jwk).collect::<Vec<_>>()}))
    }
}

/// The JWS `typ` of a key's endorsement.
pub const ENDORSEMENT_TYP: &str = "fieldtrail-key-endorsement+jwt";

/// `key`'s endorsement of `new`: a JWS (EdDSA, `typ` [`ENDORSEMENT_TYP`], header `kid` = the
/// endorser's key id) whose payload is `{"endorses": <new kid>, "x": <new public key>,
/// "created_at": <RFC 3339>}`. Whoever trusts `key` may trust `new`.
///
/// # Errors
/// [`KeyError::Damaged`] when the key cannot sign.
pub fn endorse(key: &ActiveKey, new: &KeyRecord) -> Result<String, KeyError> {
    crate::signing::jws::sign(
        key,
        &key.record.kid,
        ENDORSEMENT_TYP,
        None,
        &json!({"endorses": new.kid, "x": new.x,
                "created_at": new.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
    )
}

/// The key id that endorsed `key`, when its endorsement verifies with one of `trusted` and
/// names `key` (its id and public key).
///
/// # Errors
/// A sentence: no endorsement, a signature that does not verify, or one over another key.
pub fn endorser(key: &KeyRecord, trusted: &[KeyRecord]) -> Result<String, String> {
    let token = key
        .endorsement
        .as_deref()
        .ok_or_else(|| "it carries no endorsement".to_owned())?;
    let (header, payload) =
        crate::signing::jws::verify(token, trusted).map_err(|e| format!("its endorsement: {e}"))?;
    if header.typ.as_deref() != Some(ENDORSEMENT_TYP) {
        return Err(format!(
            "its endorsement has typ {:?}, not {ENDORSEMENT_TYP}",
            header.typ
        ));
    }
    if payload.get("endorses").and_then(Value::as_str) != Some(key.kid.as_str())
        || payload.get("x").and_then(Value::as_str) != Some(key.x.as_str())
    {
        return Err("its endorsement names another key".to_owned());
    }
    Ok(crate::signing::jws::key_id(header.kid.as_deref().unwrap_or_default()).to_owned())
}

/// The term that marks a retired key's verification method in the DID document, and its
/// definition in the document's `@context` (the W3C namespace of issuer-dependent terms).
pub const RETIRED_TERM: &str = "retired";

/// The DID document of `did` (W3C DID 1.0, `did:web`) listing every key ever used as a
/// `JsonWebKey2020` verification method `<did>#<kid>`, each one an `assertionMethod`, so that
/// what a retired key signed still verifies. A retired key's method says since when it signs
/// nothing more: `"retired": "<RFC 3339 time>"` (a term the document's `@context` defines).
/// Not `expires` or `revoked` from the controlled-identifier vocabulary: verifiers that honour
/// those refuse every proof of the key after that time, including the credentials it signed
/// while it was in force.
pub fn did_document(did: &str, keys: &[KeyRecord]) -> Value {
    let methods: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut jwk = k.jwk();
            if let Value::Object(map) = &mut jwk {
                map.remove("kid");
                map.remove("use");
            }
            let mut method = json!({"id": format!("{did}#{}", k.kid), "type": "JsonWebKey2020",
                                    "controller": did, "publicKeyJwk": jwk});
            if let (Some(at), Value::Object(map)) = (k.retired_at, &mut method) {
                map.insert(
                    RETIRED_TERM.to_owned(),
                    Value::from(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                );
            }
            method
        })
        .collect();
    let ids: Vec<Value> = keys
        .iter()
        .map(|k| json!(format!("{did}#{}", k.kid)))
        .collect();
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1",
            {RETIRED_TERM: {"@id": "https://www.w3.org/ns/credentials/issuer-dependent#retired",
                            "@type": "http://www.w3.org/2001/XMLSchema#dateTime"}}
        ],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_rfc_8037s_example() {
        // RFC 8037 appendix A.3: the thumbprint of the key of appendix A.2.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let public = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(
            thumbprint(&public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn a_manifest_record_whose_public_key_is_not_its_id_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        let first = store.init().unwrap().key;
        let manifest = store.dir().join(MANIFEST);
        let text = std::fs::read_to_string(&manifest).unwrap();
        // Another valid public key under the same id.
        let forged_x = URL_SAFE_NO_PAD.encode(
            SigningKey::generate(&mut rand_core::OsRng)
                .verifying_key()
                .as_bytes(),
        );
        std::fs::write(&manifest, text.replace(&first.x, &forged_x)).unwrap();
        for result in [store.jwks().map(|_| ()), store.active().map(|_| ())] {
            match result {
                Err(KeyError::Damaged(m)) => {
                    assert!(m.contains("not the thumbprint"), "{m}");
                    assert!(m.contains(&first.kid), "{m}");
                }
                other => panic!("a forged x was accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn init_rotate_and_the_files_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        assert!(matches!(store.active(), Err(KeyError::NoKey(_))));
        assert!(matches!(store.rotate(), Err(KeyError::NoKey(_))));
        let initialised = store.init().unwrap();
        assert_eq!(initialised.tightened_from, None);
        let first = initialised.key;
        assert!(matches!(
            store.init(),
            Err(KeyError::AlreadyInitialised(..))
        ));
        assert_eq!(store.active().unwrap().record, first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(store.dir()), 0o700);
            assert_eq!(mode(&store.key_path(&first.kid)), 0o600);
        }
        let (retired, second) = store.rotate().unwrap();
        assert_eq!(retired.kid, first.kid);
        assert!(retired.retired_at.is_some());
        assert_ne!(second.kid, first.kid);
        assert!(
            !store.key_path(&first.kid).exists(),
            "retired private key deleted"
        );
        assert_eq!(store.active().unwrap().record, second);
        let jwks = store.jwks().unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        let doc = did_document("did:web:a.example", &store.list().unwrap());
        assert_eq!(
            doc["assertionMethod"][0],
            format!("did:web:a.example#{}", first.kid)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = store.key_path(&second.kid);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = store.active().err().unwrap().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn init_restricts_an_existing_directory_others_may_enter() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        let initialised = KeyStore::new(&keys).init().unwrap();
        assert_eq!(initialised.tightened_from, Some(0o755));
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn the_did_document_marks_retired_keys_and_keeps_them_for_assertions() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        let first = store.init().unwrap().key;
        let (retired, second) = store.rotate().unwrap();
        let doc = did_document("did:web:a.example", &store.list().unwrap());
        let methods = doc["verificationMethod"].as_array().unwrap();
        assert_eq!(methods.len(), 2);
        assert_eq!(methods[0]["id"], format!("did:web:a.example#{}", first.kid));
        assert_eq!(
            methods[0]["retired"],
            retired
                .retired_at
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(
            methods[1]["id"],
            format!("did:web:a.example#{}", second.kid)
        );
        assert!(methods[1].get("retired").is_none());
        // Both still assert: what the retired key signed verifies against the document.
        assert_eq!(
            doc["assertionMethod"],
            json!([
                format!("did:web:a.example#{}", first.kid),
                format!("did:web:a.example#{}", second.kid)
            ])
        );
        assert_eq!(
            doc["@context"][2]["retired"]["@id"],
            "https://www.w3.org/ns/credentials/issuer-dependent#retired"
        );
    }
}
