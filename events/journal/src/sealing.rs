//! Personal data sealed at the serialization boundary (crypto-shredding, RGPD articles 15
//! and 17).
//!
//! Every field the domain classifies as personal ([`fieldtrail_domain::personal`]) is
//! encrypted before its event is hashed and stored, with a key of its data subject
//! (XChaCha20-Poly1305, a random 24-byte nonce, the event's id and the field's path as
//! associated data, so a ciphertext cannot be moved to another event or field). The stored
//! value is a string, `ft1:` then the base64url (no padding) of nonce and ciphertext; the
//! plaintext is the field's JSON. Events are hashed as stored, so `audit verify` needs no key
//! and keeps verifying once a key is destroyed.
//!
//! The subjects' keys live in the key table (`subject_keys`, apart from the journal's tables
//! on both backends), each wrapped by the master key (XChaCha20-Poly1305 again, the subject id
//! as associated data). The master key comes from configuration
//! ([`MasterKey::configured`]); without one, a fixed development key is used for an embedded
//! journal and said so in the log, and a PostgreSQL journal is refused ([`crate::open`]). Erasing a subject destroys its wrapped key (the row stays, without key, to say
//! when): from then on its fields read as [`ERASED`], and new personal data given for it is
//! not kept (stored as [`ERASED`]).
//!
//! [`Sealed`] is the [`Backend`] every [`crate::Journal`] is: it seals on every append and
//! opens on every read that answers events (stream, global log, histories); everything else,
//! and the exact rows of [`Backend::export_events`] (copies, audit exports), pass through
//! as stored.

use crate::audit::{AuditRecord, Cut, EventFilter, StreamSet};
use crate::backend::{
    AppendRequest, Backend, BackendKind, CommitOutcome, DocumentCommit, HistoryOf, LedgerRow,
    NewEvent, StreamAppend, StreamQuery, TokenRecord,
};
use crate::chain::{SealedEvent, VerifyReport};
use crate::digests::SignedDigest;
use crate::reservations::{Reservation, ReservationsRebuilt};
use crate::{AppendedCommand, CommandMetadata, Cursor, JournalError, StoredEvent};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use fieldtrail_domain::event::current_version;
use fieldtrail_domain::personal;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;
use zeroize::Zeroizing;

/// What an erased subject's personal field reads as.
pub const ERASED: &str = "[effacé]";

/// The prefix of a sealed field's stored string (format version 1).
pub const SEALED_PREFIX: &str = "ft1:";

/// The environment variable holding the master key (64 hex digits).
pub const MASTER_KEY_ENV: &str = "FIELDTRAIL_MASTER_KEY";

/// The environment variable naming a file that holds the master key (64 hex digits).
pub const MASTER_KEY_FILE_ENV: &str = "FIELDTRAIL_MASTER_KEY_FILE";

const NONCE: usize = 24;
const WRAP_CONTEXT: &[u8] = b"fieldtrail subject key v1 ";

/// The key that wraps every subject key (32 bytes, wiped from memory when dropped).
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    development: bool,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

static CONFIGURED: OnceLock<MasterKey> = OnceLock::new();

impl MasterKey {
    /// A key from 64 hex digits (surrounding white space ignored).
    ///
    /// # Errors
    /// [`JournalError::Other`] when it is not 32 bytes of hex (the message never shows it).
    pub fn from_hex(text: &str) -> Result<Self, JournalError> {
        let bytes = hex::decode(text.trim()).map_err(|_| {
            JournalError::Other("the master key is not hex (64 hex digits expected)".into())
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            JournalError::Other("the master key is not 32 bytes (64 hex digits expected)".into())
        })?;
        Ok(Self {
            key: Zeroizing::new(key),
            development: false,
        })
    }

    /// The fixed development key: anyone can read it here, so it protects nothing. Used only
    /// when no master key is configured, and logged as such.
    pub fn development() -> Self {
        Self {
            key: Zeroizing::new(*b"fieldtrail development master ky"),
            development: true,
        }
    }

    /// The key as 64 hex digits, to hand it to a child process's environment
    /// ([`MASTER_KEY_ENV`]) so that both read the same journal; never log it.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.key.as_ref()))
    }

    /// Whether this is the development key.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// The master key from the environment: [`MASTER_KEY_ENV`] (hex), else the file named by
    /// [`MASTER_KEY_FILE_ENV`]; `None` when neither is set.
    ///
    /// # Errors
    /// [`JournalError::Other`] when the value or the file is not a key.
    pub fn from_env() -> Result<Option<Self>, JournalError> {
        if let Ok(hex) = std::env::var(MASTER_KEY_ENV) {
            if !hex.trim().is_empty() {
                return Self::from_hex(&hex).map(Some);
            }
        }
        if let Ok(path) = std::env::var(MASTER_KEY_FILE_ENV) {
            if !path.trim().is_empty() {
                let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                    JournalError::Other(format!("{MASTER_KEY_FILE_ENV}={path}: {e}"))
                })?);
                return Self::from_hex(&text).map(Some);
            }
        }
        Ok(None)
    }

    /// Installs the process's master key (what [`MasterKey::configured`] answers from then
    /// on); `false` when one was installed or read already.
    pub fn install(key: MasterKey) -> bool {
        CONFIGURED.set(key).is_ok()
    }

    /// The process's master key: the one installed, else the environment's, else the
    /// development key (logged as such at its first use, [`Keyring`]). A malformed environment value is an
    /// error logged once, and the development key is NOT used then: nothing is sealed with a
    /// key the operator did not mean.
    ///
    /// # Errors
    /// [`JournalError::Other`] when the environment's key is malformed.
    pub fn configured() -> Result<MasterKey, JournalError> {
        if let Some(key) = CONFIGURED.get() {
            return Ok(key.clone());
        }
        let key = match Self::from_env()? {
            Some(key) => key,
            None => Self::development(),
        };
        Ok(CONFIGURED.get_or_init(|| key).clone())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }
}

/// A row of the key table.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey {
    /// The data subject (`learner:<id>`, `field_study:<id>`, `jury:<id>`,
    /// `complaint:<cohort>:<id>`: [`personal::Subject::id`]).
    pub subject_id: String,
    /// The subject's key wrapped by the master key (nonce then ciphertext); `None` once
    /// erased.
    pub wrapped: Option<Vec<u8>>,
    /// When the key was made (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was destroyed (UTC), if it was.
    pub erased_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectKey")
            .field("subject_id", &self.subject_id)
            .field("wrapped", &self.wrapped.as_ref().map(|_| "…"))
            .field("created_at", &self.created_at)
            .field("erased_at", &self.erased_at)
            .finish()
    }
}

type Key = Arc<Zeroizing<[u8; 32]>>;

/// The subjects' keys of one process: the master key and the keys unwrapped so far (`None`:
/// erased), each read again from the key table after [`KEY_CACHE_TTL`]. One per [`Sealed`]
/// backend.
pub struct Keyring {
    master: MasterKey,
    cache: Mutex<HashMap<String, (std::time::Instant, Option<Key>)>>,
}

/// How long an unwrapped key is used without reading the key table again: the bound on how
/// long another process's erasure may go unseen by a process that does not read its event.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

fn crypto_error(what: &str) -> JournalError {
    JournalError::Other(what.to_owned())
}

impl Keyring {
    /// A keyring wrapping subject keys with `master`.
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the master key is the development key.
    pub fn is_development(&self) -> bool {
        self.master.is_development()
    }

    fn wrap(&self, subject_id: &str, key: &[u8; 32]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = [WRAP_CONTEXT, subject_id.as_bytes()].concat();
        let sealed = self
            .master
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: key,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    fn unwrap(&self, subject_id: &str, wrapped: &[u8]) -> Result<Key, JournalError> {
        let refuse = || {
            crypto_error(&format!(
                "the key of subject {subject_id} does not open with the configured master key \
                 (another master key, or the key table was altered)"
            ))
        };
        if wrapped.len() < NONCE {
            return Err(refuse());
        }
        let (nonce, sealed) = wrapped.split_at(NONCE);
        let aad = [WRAP_CONTEXT, subject_id.as_bytes()].concat();
        let plain = Zeroizing::new(
            self.master
                .cipher()
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| refuse())?,
        );
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| refuse())?;
        Ok(Arc::new(Zeroizing::new(key)))
    }

    fn cached(&self, subjects: &BTreeSet<String>) -> (HashMap<String, Option<Key>>, Vec<String>) {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for s in subjects {
            match cache.get(s) {
                // An erased key stays erased: no need to look again.
                Some((_, None)) => {
                    found.insert(s.clone(), None);
                }
                Some((at, Some(k))) if at.elapsed() < KEY_CACHE_TTL => {
                    found.insert(s.clone(), Some(k.clone()));
                }
                _ => missing.push(s.clone()),
            }
        }
        (found, missing)
    }

    fn remember(&self, rows: &[SubjectKey]) -> Result<HashMap<String, Option<Key>>, JournalError> {
        let mut out = HashMap::new();
        for row in rows {
            let key = match &row.wrapped {
                Some(w) => Some(self.unwrap(&row.subject_id, w)?),
                None => None,
            };
            out.insert(row.subject_id.clone(), key);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        for (s, k) in &out {
            cache.insert(s.clone(), (now, k.clone()));
        }
        Ok(out)
    }

    /// Forgets what this process knows of `subject_id`'s key (after its erasure).
    pub fn forget(&self, subject_id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(subject_id.to_owned(), (std::time::Instant::now(), None));
    }

    /// The keys of `subjects` (`None`: erased), from memory or the key table; with `create`,
    /// a subject the table does not know gets a new key (stored before it is used: a
    /// concurrent writer's key wins, both read the row back).
    async fn keys(
        &self,
        backend: &dyn Backend,
        subjects: &BTreeSet<String>,
        create: bool,
    ) -> Result<HashMap<String, Option<Key>>, JournalError> {
        if self.master.is_development() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "no master key configured ({MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV}): \
                     personal data is sealed with the DEVELOPMENT master key, which protects \
                     nothing; configure a key before storing real personal data"
                );
            });
        }
        let (mut found, missing) = self.cached(subjects);
        if missing.is_empty() {
            return Ok(found);
        }
        let rows = backend.subject_keys(&missing).await?;
        found.extend(self.remember(&rows)?);
        let absent: Vec<String> = missing
            .into_iter()
            .filter(|s| !found.contains_key(s))
            .collect();
        if absent.is_empty() {
            return Ok(found);
        }
        if !create {
            return Err(JournalError::Other(format!(
                "no key for subject {} in the key table: its personal data cannot be read (was \
                 the key table left behind when the journal was copied or restored?)",
                absent[0]
            )));
        }
        let now = Utc::now();
        let new: Vec<SubjectKey> = absent
            .iter()
            .map(|s| {
                let mut raw = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(raw.as_mut());
                SubjectKey {
                    subject_id: s.clone(),
                    wrapped: Some(self.wrap(s, &raw)),
                    created_at: now,
                    erased_at: None,
                }
            })
            .collect();
        backend.insert_subject_keys(&new).await?;
        let rows = backend.subject_keys(&absent).await?;
        found.extend(self.remember(&rows)?);
        if let Some(lost) = absent.iter().find(|s| !found.contains_key(*s)) {
            return Err(JournalError::Other(format!(
                "the key of subject {lost} was stored but cannot be read back"
            )));
        }
        Ok(found)
    }
}

/// The subjects whose keys an event's personal fields need (`event_type` at its current
/// version only: a row of an older version is stored as given).
fn subjects_of(event_type: &str, event_version: &str, payload: &Value, out: &mut BTreeSet<String>) {
    if event_version != current_version(event_type) {
        return;
    }
    for (_, subject) in personal::personal_fields(event_type) {
        if let Some(id) = subject.id(payload) {
            out.insert(id);
        }
    }
}

fn aad(event_id: Uuid, path: &str) -> Vec<u8> {
    [event_id.as_bytes().as_slice(), path.as_bytes()].concat()
}

/// The key table's row whose key seals the read models at rest.
pub const DOCUMENTS_KEY: &str = "read-models";

fn document_aad(kind: &str, key: &str) -> Vec<u8> {
    format!("read model {kind}/{key}").into_bytes()
}

fn is_sealed(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with(SEALED_PREFIX))
}

/// `value`'s JSON sealed with `key` (the `ft1:` form of a field).
fn seal_value(key: &Key, aad: &[u8], value: &Value) -> Result<Value, JournalError> {
    let plain = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let cipher = XChaCha20Poly1305::new(key.as_ref().as_ref().into());
    let ct = cipher
        .encrypt(&nonce, Payload { msg: &plain, aad })
        .map_err(|_| crypto_error("a value could not be sealed"))?;
    let bytes = [nonce.as_slice(), &ct].concat();
    Ok(Value::String(format!(
        "{SEALED_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    )))
}

/// The value [`seal_value`] sealed (`None` when it does not open with `key` and `aad`).
fn try_open(key: &Key, aad: &[u8], text: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    if bytes.len() <= NONCE {
        return None;
    }
    let (nonce, ct) = bytes.split_at(NONCE);
    let cipher = XChaCha20Poly1305::new(key.as_ref().as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()?,
    );
    serde_json::from_slice(&plain).ok()
}

fn open_value(key: &Key, aad: &[u8], value: &Value) -> Result<Value, JournalError> {
    value
        .as_str()
        .and_then(|s| s.strip_prefix(SEALED_PREFIX))
        .and_then(|text| try_open(key, aad, text))
        .ok_or_else(|| crypto_error("a sealed read model does not open (altered, or moved)"))
}

/// The subject a `subject_erased` event erases.
fn erased_subject<'a>(event_type: &str, payload: &'a Value) -> Option<&'a str> {
    (event_type == "subject_erased")
        .then(|| payload.get("subject_id").and_then(Value::as_str))
        .flatten()
}

/// The subjects that `events` erase (`subject_erased`). Their keys are destroyed by the
/// append itself, in its transaction (both backends keep the key table in the journal's
/// database): the erasure and its event commit together or not at all.
pub(crate) fn erased_by(events: &[NewEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|(t, _, p)| erased_subject(t, p))
        .collect()
}

/// PostgreSQL: destroys the keys of the subjects `events` erase, inside the append's
/// transaction `tx` (the key row stays, without key, saying when).
///
/// # Errors
/// [`JournalError::Postgres`]; the caller rolls back.
pub(crate) async fn erase_keys_pg(
    tx: &tokio_postgres::Transaction<'_>,
    events: &[NewEvent],
) -> Result<(), JournalError> {
    for subject_id in erased_by(events) {
        tx.execute(ERASE_KEY_PG, &[&subject_id]).await?;
    }
    Ok(())
}

/// The statement destroying one subject's key (PostgreSQL), `$1` the subject id.
pub(crate) const ERASE_KEY_PG: &str =
    "INSERT INTO subject_keys (subject_id, wrapped_key, erased_at)
     VALUES ($1, NULL, clock_timestamp())
     ON CONFLICT (subject_id) DO UPDATE
     SET wrapped_key = NULL,
         erased_at = coalesce(subject_keys.erased_at, clock_timestamp())";

/// SQLite: as [`erase_keys_pg`], inside the writer's transaction.
///
/// # Errors
/// [`JournalError::Sqlite`]; the caller rolls back.
pub(crate) fn erase_keys_sqlite(
    tx: &rusqlite::Connection,
    events: &[NewEvent],
) -> Result<(), JournalError> {
    for subject_id in erased_by(events) {
        let now = crate::sqlite::micros(&Utc::now());
        tx.execute(ERASE_KEY_SQLITE, rusqlite::params![subject_id, now])?;
    }
    Ok(())
}

/// The statement destroying one subject's key (SQLite), `?1` the subject id, `?2` now.
pub(crate) const ERASE_KEY_SQLITE: &str =
    "INSERT INTO subject_keys (subject_id, wrapped_key, created_at, erased_at)
     VALUES (?1, NULL, ?2, ?2)
     ON CONFLICT (subject_id) DO UPDATE
     SET wrapped_key = NULL, erased_at = coalesce(erased_at, ?2)";

/// Seals the personal fields of one event with its subjects' keys.
fn seal_payload(
    keys: &HashMap<String, Option<Key>>,
    event_id: Uuid,
    event_type: &str,
    event_version: &str,
    payload: &Value,
) -> Result<Value, JournalError> {
    if event_version != current_version(event_type) || !personal::has_personal(event_type) {
        return Ok(payload.clone());
    }
    let mut sealed = payload.clone();
    for (path, subject) in personal::personal_fields(event_type) {
        let Some(subject_id) = subject.id(payload) else {
            continue;
        };
        let key = keys.get(&subject_id).cloned().flatten();
        let mut failure = None;
        personal::visit_mut(&mut sealed, path, &mut |value| {
            let Some(key) = &key else {
                // An erased subject stays erased: what is given for it later is not kept.
                *value = Value::String(ERASED.to_owned());
                return;
            };
            match seal_value(key, &aad(event_id, path), value) {
                Ok(sealed) => *value = sealed,
                Err(e) => failure = Some(e),
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(sealed)
}

/// The subjects whose keys a stored payload's sealed fields need.
fn sealed_subjects(event_type: &str, payload: &Value, out: &mut BTreeSet<String>) {
    for (path, subject) in personal::personal_fields(event_type) {
        let mut sealed = false;
        let mut probe = payload.clone();
        personal::visit_mut(&mut probe, path, &mut |v| {
            sealed |= v.as_str().is_some_and(|s| s.starts_with(SEALED_PREFIX));
        });
        if sealed {
            if let Some(id) = subject.id(payload) {
                out.insert(id);
            }
        }
    }
}

/// Opens the sealed fields of one stored payload in place ([`ERASED`] for an erased
/// subject; a field stored in clear, written before sealing, is left as it is).
fn open_payload(
    keys: &HashMap<String, Option<Key>>,
    event_id: Uuid,
    event_type: &str,
    payload: &mut Value,
) -> Result<(), JournalError> {
    for (path, subject) in personal::personal_fields(event_type) {
        let Some(subject_id) = subject.id(payload) else {
            continue;
        };
        let key = keys.get(&subject_id).cloned().flatten();
        let mut failure = None;
        personal::visit_mut(payload, path, &mut |value| {
            let Some(text) = value.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX)) else {
                return;
            };
            let Some(key) = &key else {
                *value = Value::String(ERASED.to_owned());
                return;
            };
            let opened = try_open(key, &aad(event_id, path), text);
            match opened {
                Some(v) => *value = v,
                None => {
                    failure = Some(JournalError::Other(format!(
                        "event {event_id}: the sealed field {path} does not open with the key of \
                         {subject_id} (altered, or moved from another event)"
                    )))
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(())
}

/// The journal's [`Backend`] with personal fields sealed on the way in and opened on the way
/// out (see the module documentation).
pub struct Sealed {
    inner: Arc<dyn Backend>,
    keyring: Arc<Keyring>,
}

impl Sealed {
    /// `inner` with personal fields sealed under `master`.
    pub fn new(inner: Arc<dyn Backend>, master: MasterKey) -> Self {
        Self {
            inner,
            keyring: Arc::new(Keyring::new(master)),
        }
    }

    /// Checks that the master key opens the key table: the read models' key
    /// ([`DOCUMENTS_KEY`]) when the table has it. A process with another master key would
    /// otherwise accept commands and wrap new subjects' keys under it, which the journal's
    /// own key could then never open.
    ///
    /// # Errors
    /// [`JournalError::Other`] when the key table's row does not open with this master key;
    /// the backend's errors.
    pub async fn check_master_key(&self) -> Result<(), JournalError> {
        let rows = self.inner.subject_keys(&[DOCUMENTS_KEY.to_owned()]).await?;
        self.keyring.remember(&rows).map(|_| ()).map_err(|e| {
            JournalError::Other(format!(
                "the configured master key does not open this journal's key table ({e}); \
                 nothing was done: start with the master key the journal was written with \
                 ({MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV})"
            ))
        })
    }

    /// The keyring (what erasure forgets a key in).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    async fn seal_events(
        &self,
        events: &[NewEvent],
        ids: &[Uuid],
    ) -> Result<Vec<NewEvent>, JournalError> {
        let mut subjects = BTreeSet::new();
        for (t, v, p) in events {
            subjects_of(t, v, p, &mut subjects);
        }
        if subjects.is_empty() {
            return Ok(events.to_vec());
        }
        let keys = self.keyring.keys(&*self.inner, &subjects, true).await?;
        events
            .iter()
            .zip(ids)
            .map(|((t, v, p), id)| Ok((t.clone(), v.clone(), seal_payload(&keys, *id, t, v, p)?)))
            .collect()
    }

    async fn open_all<'a, I>(&self, rows: I) -> Result<(), JournalError>
    where
        I: IntoIterator<Item = (Uuid, &'a str, &'a mut Value)>,
    {
        let rows: Vec<(Uuid, &str, &mut Value)> = rows.into_iter().collect();
        let mut subjects = BTreeSet::new();
        for (_, t, p) in &rows {
            sealed_subjects(t, p, &mut subjects);
        }
        if subjects.is_empty() {
            return Ok(());
        }
        let keys = self.keyring.keys(&*self.inner, &subjects, false).await?;
        for (id, t, p) in rows {
            open_payload(&keys, id, t, p)?;
        }
        Ok(())
    }

    async fn open_events(
        &self,
        mut events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        // An erasure read here (perhaps another process's) ends this process's copy of the
        // key at once, not after KEY_CACHE_TTL: a projector rebuilding on it must not open
        // the erased fields with a cached key.
        self.forget_erased(events.iter().map(|e| (e.event_type.as_str(), &e.payload)));
        self.open_all(
            events
                .iter_mut()
                .map(|e| (e.event_id, e.event_type.as_str(), &mut e.payload)),
        )
        .await?;
        Ok(events)
    }

    /// Forgets this process's copies of the keys of the subjects that `events` erased, once
    /// their append committed (the append destroyed the keys in its own transaction:
    /// [`erased_by`]).
    fn forget_appended<'a>(&self, events: impl IntoIterator<Item = &'a NewEvent>) {
        for (event_type, _, payload) in events {
            if let Some(subject) = erased_subject(event_type, payload) {
                self.keyring.forget(subject);
            }
        }
    }

    /// Forgets the keys of the subjects erased by `events` (read from the log: another
    /// process may have erased them), before their fields are opened.
    fn forget_erased<'a>(&self, events: impl IntoIterator<Item = (&'a str, &'a Value)>) {
        for (event_type, payload) in events {
            if let Some(subject) = erased_subject(event_type, payload) {
                self.keyring.forget(subject);
            }
        }
    }

    /// The key the read models are sealed with at rest (the key table's row
    /// [`DOCUMENTS_KEY`]; not a data subject: erasure rebuilds the documents instead).
    async fn documents_key(&self) -> Result<Key, JournalError> {
        let subjects = BTreeSet::from([DOCUMENTS_KEY.to_owned()]);
        let keys = self.keyring.keys(&*self.inner, &subjects, true).await?;
        keys.get(DOCUMENTS_KEY).cloned().flatten().ok_or_else(|| {
            JournalError::Other(format!("the key table's {DOCUMENTS_KEY} row has no key"))
        })
    }

    fn with_ids(metadata: &CommandMetadata, n: usize) -> CommandMetadata {
        let mut metadata = metadata.clone();
        metadata.event_ids = metadata.event_ids_at(0, n);
        metadata
    }
}

#[async_trait::async_trait]
impl Backend for Sealed {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[NewEvent],
        metadata: &CommandMetadata,
    ) -> Result<Vec<i64>, JournalError> {
        let metadata = Self::with_ids(metadata, events.len());
        let sealed = self.seal_events(events, &metadata.event_ids).await?;
        let positions = self
            .inner
            .append(stream_type, stream_id, expected, &sealed, &metadata)
            .await?;
        self.forget_appended(events);
        Ok(positions)
    }

    async fn append_streams(
        &self,
        parts: &[StreamAppend],
        metadata: &CommandMetadata,
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        let total = parts.iter().map(|p| p.events.len()).sum();
        let metadata = Self::with_ids(metadata, total);
        let mut sealed = Vec::with_capacity(parts.len());
        let mut offset = 0;
        for p in parts {
            let ids = &metadata.event_ids[offset..offset + p.events.len()];
            offset += p.events.len();
            sealed.push(StreamAppend {
                events: self.seal_events(&p.events, ids).await?,
                ..p.clone()
            });
        }
        let positions = self.inner.append_streams(&sealed, &metadata).await?;
        self.forget_appended(parts.iter().flat_map(|p| p.events.iter()));
        Ok(positions)
    }

    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Vec<i64>>, JournalError> {
        let mut all: Vec<NewEvent> = Vec::new();
        let mut requests = Vec::with_capacity(batch.len());
        for r in batch {
            let metadata = Self::with_ids(&r.metadata, r.events.len());
            all.extend(r.events.iter().cloned());
            requests.push(AppendRequest {
                metadata,
                ..r.clone()
            });
        }
        // One look-up of the keys for the whole batch, then each request sealed from memory.
        let mut subjects = BTreeSet::new();
        for (t, v, p) in &all {
            subjects_of(t, v, p, &mut subjects);
        }
        if !subjects.is_empty() {
            let keys = self.keyring.keys(&*self.inner, &subjects, true).await?;
            for r in &mut requests {
                let ids = r.metadata.event_ids.clone();
                for ((t, v, p), id) in r.events.iter_mut().zip(ids) {
                    *p = seal_payload(&keys, id, t, v, p)?;
                }
            }
        }
        let positions = self.inner.append_batch(&requests).await?;
        self.forget_appended(&all);
        Ok(positions)
    }

    async fn applied(&self, command_id: &str) -> Result<Option<AppendedCommand>, JournalError> {
        self.inner.applied(command_id).await
    }

    async fn record_rejections(
        &self,
        rejections: &[crate::RejectedCommand],
    ) -> Result<(), JournalError> {
        self.inner.record_rejections(rejections).await
    }

    async fn rejected_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<crate::RejectedCommand>, JournalError> {
        self.inner.rejected_many(command_ids).await
    }

    async fn export_rejections(&self) -> Result<Vec<crate::RejectedCommand>, JournalError> {
        self.inner.export_rejections().await
    }

    async fn publish_keys(
        &self,
        keys: &[crate::signing_keys::PublishedKey],
    ) -> Result<(), JournalError> {
        self.inner.publish_keys(keys).await
    }

    async fn published_keys(&self) -> Result<Vec<crate::signing_keys::PublishedKey>, JournalError> {
        self.inner.published_keys().await
    }

    async fn applied_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<AppendedCommand>, JournalError> {
        self.inner.applied_many(command_ids).await
    }

    async fn stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let events = self.inner.stream(stream_type, stream_id, after).await?;
        self.open_events(events).await
    }

    async fn event_at(
        &self,
        stream_type: &str,
        stream_id: &str,
        stream_version: i64,
    ) -> Result<Option<StoredEvent>, JournalError> {
        let Some(event) = self
            .inner
            .event_at(stream_type, stream_id, stream_version)
            .await?
        else {
            return Ok(None);
        };
        Ok(self.open_events(vec![event]).await?.into_iter().next())
    }

    async fn read_log(
        &self,
        cut: Cut,
        streams: Option<&StreamSet>,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let events = self.inner.read_log(cut, streams, after, limit).await?;
        self.open_events(events).await
    }

    async fn read_log_sealed(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.read_log_sealed(after, limit).await
    }

    async fn cursor_at(&self, position: i64) -> Result<Cursor, JournalError> {
        self.inner.cursor_at(position).await
    }

    async fn head(&self) -> Result<i64, JournalError> {
        self.inner.head().await
    }

    async fn count(&self) -> Result<i64, JournalError> {
        self.inner.count().await
    }

    async fn wait_readable(&self, limit: Duration) -> Result<bool, JournalError> {
        self.inner.wait_readable(limit).await
    }

    async fn find_streams(&self, query: StreamQuery<'_>) -> Result<Vec<String>, JournalError> {
        self.inner.find_streams(query).await
    }

    async fn history(
        &self,
        of: HistoryOf<'_>,
        filter: &EventFilter,
    ) -> Result<Vec<AuditRecord>, JournalError> {
        let mut records = self.inner.history(of, filter).await?;
        self.forget_erased(records.iter().map(|r| (r.event_type.as_str(), &r.payload)));
        self.open_all(
            records
                .iter_mut()
                .map(|r| (r.event_id, r.event_type.as_str(), &mut r.payload)),
        )
        .await?;
        Ok(records)
    }

    async fn verify(&self, at_position: Option<i64>) -> Result<VerifyReport, JournalError> {
        self.inner.verify(at_position).await
    }

    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<SealedEvent>, JournalError> {
        self.inner.export_events(after, limit).await
    }

    async fn export_ledger(&self) -> Result<Vec<LedgerRow>, JournalError> {
        self.inner.export_ledger().await
    }

    async fn store_digest(&self, digest: &SignedDigest) -> Result<i64, JournalError> {
        self.inner.store_digest(digest).await
    }

    async fn digests(&self) -> Result<Vec<SignedDigest>, JournalError> {
        self.inner.digests().await
    }

    async fn import_events(
        &self,
        events: &[SealedEvent],
        ledger: &[LedgerRow],
    ) -> Result<(), JournalError> {
        self.inner.import_events(events, ledger).await
    }

    async fn rebuild_reservations(&self) -> Result<ReservationsRebuilt, JournalError> {
        self.inner.rebuild_reservations().await
    }

    async fn reservations(&self) -> Result<Vec<Reservation>, JournalError> {
        self.inner.reservations().await
    }

    async fn checkpoint(&self, name: &str) -> Result<Cursor, JournalError> {
        self.inner.checkpoint(name).await
    }

    async fn commit_documents(
        &self,
        mut commit: DocumentCommit,
    ) -> Result<CommitOutcome, JournalError> {
        if !commit.documents.is_empty() {
            let key = self.documents_key().await?;
            for (kind, doc_key, document) in &mut commit.documents {
                *document = seal_value(&key, &document_aad(kind, doc_key), document)?;
            }
        }
        self.inner.commit_documents(commit).await
    }

    async fn document(&self, kind: &str, key: &str) -> Result<Option<(Value, i64)>, JournalError> {
        let Some((document, position)) = self.inner.document(kind, key).await? else {
            return Ok(None);
        };
        if !is_sealed(&document) {
            return Ok(Some((document, position)));
        }
        let documents_key = self.documents_key().await?;
        let document = open_value(&documents_key, &document_aad(kind, key), &document)?;
        Ok(Some((document, position)))
    }

    async fn documents(&self) -> Result<Vec<(String, String, Value)>, JournalError> {
        let mut documents = self.inner.documents().await?;
        if documents.iter().any(|(_, _, d)| is_sealed(d)) {
            let documents_key = self.documents_key().await?;
            for (kind, key, document) in &mut documents {
                if is_sealed(document) {
                    *document = open_value(&documents_key, &document_aad(kind, key), document)?;
                }
            }
        }
        Ok(documents)
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), JournalError> {
        self.inner.insert_token(token).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, JournalError> {
        self.inner.tokens().await
    }

    async fn live_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>, JournalError> {
        self.inner.live_token(token_id).await
    }

    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, JournalError> {
        self.inner.revoke_token(token_id).await
    }

    async fn subject_keys(&self, subjects: &[String]) -> Result<Vec<SubjectKey>, JournalError> {
        self.inner.subject_keys(subjects).await
    }

    async fn insert_subject_keys(&self, keys: &[SubjectKey]) -> Result<(), JournalError> {
        self.inner.insert_subject_keys(keys).await
    }

    async fn erase_subject_key(&self, subject_id: &str) -> Result<(), JournalError> {
        self.inner.erase_subject_key(subject_id).await?;
        self.keyring.forget(subject_id);
        Ok(())
    }

    async fn export_subject_keys(&self) -> Result<Vec<SubjectKey>, JournalError> {
        self.inner.export_subject_keys().await
    }

    fn notifier(&self) -> Arc<Notify> {
        self.inner.notifier()
    }

    fn listen(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.listen()
    }

    fn postgres(&self) -> Option<&deadpool_postgres::Pool> {
        self.inner.postgres()
    }

    fn close(&self) {
        self.inner.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys_for(subject: &str) -> (Keyring, HashMap<String, Option<Key>>) {
        let ring = Keyring::new(MasterKey::from_hex(&"ab".repeat(32)).unwrap());
        let raw = [7u8; 32];
        let wrapped = ring.wrap(subject, &raw);
        let keys = ring
            .remember(&[SubjectKey {
                subject_id: subject.to_owned(),
                wrapped: Some(wrapped),
                created_at: Utc::now(),
                erased_at: None,
            }])
            .unwrap();
        (ring, keys)
    }

    #[test]
    fn a_sealed_field_opens_with_its_event_id_only() {
        let (_, keys) = keys_for("learner:l1");
        let id = Uuid::now_v7();
        let payload = json!({"cohort_id": "c", "learner_id": "l1", "name": "Anne Le Goff", "deis_pathway": false});
        let sealed = seal_payload(&keys, id, "learner_enrolled", "1", &payload).unwrap();
        let stored = sealed["name"].as_str().unwrap();
        assert!(stored.starts_with(SEALED_PREFIX));
        assert!(!stored.contains("Anne"));
        assert_eq!(sealed["learner_id"], json!("l1"));
        let mut opened = sealed.clone();
        open_payload(&keys, id, "learner_enrolled", &mut opened).unwrap();
        assert_eq!(opened, payload);
        let mut moved = sealed.clone();
        assert!(open_payload(&keys, Uuid::now_v7(), "learner_enrolled", &mut moved).is_err());
        let mut erased = sealed;
        let none: HashMap<String, Option<Key>> = HashMap::from([("learner:l1".into(), None)]);
        open_payload(&none, id, "learner_enrolled", &mut erased).unwrap();
        assert_eq!(erased["name"], json!(ERASED));
    }

    #[test]
    fn array_fields_are_sealed_each_and_clear_fields_pass() {
        let (_, keys) = keys_for("jury:fs");
        let id = Uuid::now_v7();
        let payload = json!({"field_study_id": "fs", "defence_id": "d", "at": "2026-06-01T09:00:00Z",
            "jury": [{"name": "M. Centre", "role": "professional"}, {"name": "Mme Ouest", "role": "training_centre"}]});
        let sealed = seal_payload(&keys, id, "defence_scheduled", "1", &payload).unwrap();
        assert!(!sealed.to_string().contains("Centre"));
        assert_eq!(sealed["jury"][1]["role"], json!("training_centre"));
        let mut opened = sealed;
        open_payload(&keys, id, "defence_scheduled", &mut opened).unwrap();
        assert_eq!(opened, payload);
        let mut legacy = payload.clone();
        open_payload(&keys, id, "defence_scheduled", &mut legacy).unwrap();
        assert_eq!(legacy, payload);
    }

    #[test]
    fn a_wrapped_key_needs_its_master_key_and_subject() {
        let (ring, _) = keys_for("learner:l1");
        let wrapped = ring.wrap("learner:l1", &[1u8; 32]);
        assert!(ring.unwrap("learner:l1", &wrapped).is_ok());
        assert!(ring.unwrap("learner:l2", &wrapped).is_err());
        let other = Keyring::new(MasterKey::development());
        assert!(other.unwrap("learner:l1", &wrapped).is_err());
        assert!(MasterKey::from_hex("00").is_err());
    }
}
