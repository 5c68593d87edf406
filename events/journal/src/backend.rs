//! The storage seam: what the domain, the projections, the HTTP API and the CLI need from
//! storage, as one object-safe trait ([`Backend`]) with two implementations:
//!
//! - [`crate::PgJournal`]: PostgreSQL (production; several servers on one journal, NATS for
//!   dashboards), the global log ordered by writing transaction ([`crate::GlobalLog`]);
//! - [`crate::sqlite::SqliteJournal`]: one SQLite file (embedded; the default with nothing
//!   configured), one writer, the global log ordered by position.
//!
//! Both keep the same hash chain ([`crate::chain`]), the same command ledger (idempotency
//! keys), the read models with their checkpoints next to the journal, and the API tokens.
//! [`Journal`] is the cheap-to-clone handle the rest of the code holds; [`open`] picks the
//! implementation from the URL (`sqlite://PATH` or `postgres://...`).

use crate::audit::{AuditRecord, Cut, EventFilter, StreamSet};
use crate::chain::{SealedEvent, VerifyReport};
use crate::digests::SignedDigest;
use crate::reservations::{Reservation, ReservationsRebuilt};
use crate::sealing::{MasterKey, Sealed, SubjectKey};
use crate::signing_keys::PublishedKey;
use crate::{AppendedCommand, CommandMetadata, Cursor, JournalError, RejectedCommand, StoredEvent};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// One event to append: `(event type, event type version, payload without its type tag)`.
pub type NewEvent = (String, String, Value);

/// One command's append inside a batch ([`Backend::append_batch`]): the events of one stream
/// at an expected version, with the command's metadata (its idempotency key).
#[derive(Clone, Debug, PartialEq)]
pub struct AppendRequest {
    /// `programme`, `cohort` or `field_study`.
    pub stream_type: String,
    /// The aggregate id.
    pub stream_id: String,
    /// The stream version the command was decided against (0: a new stream); a later request
    /// of the same batch on the same stream expects the version the earlier one ends at.
    pub expected: i64,
    /// `(event_type, event_version, payload without tag)`, in order.
    pub events: Vec<NewEvent>,
    /// The command's metadata; `command_id` goes into the ledger.
    pub metadata: CommandMetadata,
}

/// One stream's part of a command that appends to several streams
/// ([`Backend::append_streams`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamAppend {
    /// `programme`, `cohort` or `field_study`.
    pub stream_type: String,
    /// The aggregate id.
    pub stream_id: String,
    /// The stream version the command was decided against (0: a new stream).
    pub expected: i64,
    /// `(event_type, event_version, payload without tag)`, in order.
    pub events: Vec<NewEvent>,
}

/// Which implementation is behind a [`Journal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// PostgreSQL.
    Postgres,
    /// An embedded SQLite file.
    Sqlite,
}

impl BackendKind {
    /// `postgres` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Postgres => "postgres",
            BackendKind::Sqlite => "sqlite",
        }
    }
}

/// A question about which streams exist, answered from the journal's payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamQuery<'a> {
    /// The programme a cohort was opened on (zero or one id).
    ProgrammeOf {
        /// The cohort.
        cohort_id: &'a str,
    },
    /// The field studies formed in a cohort, in the order they were formed (global position).
    FieldStudiesOf {
        /// The cohort.
        cohort_id: &'a str,
    },
    /// The cohorts other than `except` where one of `learner_ids` enrolled, sorted.
    CohortsEnrolling {
        /// The learners.
        learner_ids: &'a [String],
        /// The cohort to leave out.
        except: &'a str,
    },
}

/// Whose history an auditor asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryOf<'a> {
    /// One stream, in stream-version order.
    Stream {
        /// `programme`, `cohort` or `field_study`.
        stream_type: &'a str,
        /// The stream's id.
        stream_id: &'a str,
    },
    /// Every event an actor issued (as `actor` or as `reported_actor`), in global-log order.
    Actor(&'a str),
}

/// A projector's write: documents and the checkpoint that covers them, in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentCommit {
    /// The checkpoint's name (e.g. [`crate::checkpoint::PROJECTOR`]).
    pub checkpoint: String,
    /// The checkpoint this write continues from; `None` for a rebuild, which replaces every
    /// document and accepts any stored checkpoint not beyond `cursor`.
    pub expected: Option<Cursor>,
    /// The checkpoint after this write.
    pub cursor: Cursor,
    /// `(kind, key, document)` to store (upsert).
    pub documents: Vec<(String, String, Value)>,
    /// The last global position folded into the documents.
    pub position: i64,
}

/// What a [`DocumentCommit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written.
    Written,
    /// Not written: another projector moved the checkpoint to this cursor first.
    Moved(Cursor),
}

/// An API token as stored: the SHA-256 of its secret (hex), never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's id.
    pub token_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its role (`staff`, `facilitator`, ...).
    pub role: String,
    /// Its cohort scope.
    pub cohort_id: Option<String>,
    /// Its learner scope.
    pub learner_id: Option<String>,
    /// SHA-256 of the secret, 64 hex digits.
    pub secret_sha256: String,
    /// Creation time (UTC).
    pub created_at: DateTime<Utc>,
    /// Revocation time (UTC), if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One row of the command ledger, as a journal copy carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    /// The idempotency key.
    pub command_id: String,
    /// The command's name.
    pub command: String,
    /// The stream it appended to.
    pub stream_type: String,
    /// The stream's id.
    pub stream_id: String,
    /// Global position of its first event.
    pub first_position: i64,
    /// Global position of its last event.
    pub last_position: i64,
    /// When the ledger recorded it (UTC).
    pub recorded_at: DateTime<Utc>,
}

/// Storage for one journal (see the module documentation). Every method is one short
/// transaction (or one consistent read); errors are [`JournalError`]s, and an error changes
/// nothing.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// Appends `events` to a stream whose current version must be exactly `expected`, and
    /// records `metadata.command_id` in the command ledger, in one transaction, chaining each
    /// event's hash to the one before. Returns the new events' global positions.
    ///
    /// # Errors
    /// [`JournalError::VersionConflict`] when the stream is not at `expected`;
    /// [`JournalError::DuplicateCommand`] when the command id is in the ledger already.
    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[NewEvent],
        metadata: &CommandMetadata,
    ) -> Result<Vec<i64>, JournalError>;

    /// Appends ONE command's events to several streams in one transaction, all or nothing:
    /// each part with its own expected-version check and hash chain, in the order given
    /// (global positions increase along it), then one ledger row for `metadata.command_id`
    /// naming the LAST part's stream (the command's own, which must come last) with the
    /// positions of the first and the last event, then the parts' claims. What a command that
    /// starts a stream beside its own appends (`split_field_study`: the new study's
    /// `field_study_formed`, then the old study's `field_study_split`). Returns each part's
    /// positions.
    ///
    /// # Errors
    /// As [`Backend::append`], for any part ([`JournalError::ClaimHeld`] included).
    async fn append_streams(
        &self,
        parts: &[StreamAppend],
        metadata: &CommandMetadata,
    ) -> Result<Vec<Vec<i64>>, JournalError>;

    /// Appends every request of `batch` in ONE transaction, all or nothing, in the batch's
    /// order (global positions increase along it), each with its own expected-version check,
    /// hash chain (a request chains to the one before it on the same stream) and ledger row.
    /// Returns each request's positions. The bulk path of the import: commands are decided in
    /// memory first, so a rule's rejection never reaches this call.
    ///
    /// # Errors
    /// [`JournalError::VersionConflict`] when a stream is not at the version its first
    /// request expects (another writer went first); [`JournalError::DuplicateCommand`] when a
    /// command id is in the ledger already; [`JournalError::ClaimHeld`] when an event takes a
    /// claim another stream holds. Nothing of the batch is appended then.
    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Vec<i64>>, JournalError>;

    /// The ledger's record of `command_id`, if it was applied.
    async fn applied(&self, command_id: &str) -> Result<Option<AppendedCommand>, JournalError>;

    /// The ledger's records of those of `command_ids` that were applied (one look-up for a
    /// batch), in no particular order.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn applied_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<AppendedCommand>, JournalError> {
        let mut found = Vec::new();
        for id in command_ids {
            if let Some(a) = self.applied(id).await? {
                found.push(a);
            }
        }
        Ok(found)
    }

    /// Remembers commands refused by the rules ([`crate::rejections`]): the first answer of an
    /// id wins, and an id already in the ledger is left out. From then on the ledger refuses
    /// the id ([`JournalError::DuplicateCommand`] from an append).
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn record_rejections(&self, rejections: &[RejectedCommand]) -> Result<(), JournalError>;

    /// The remembered refusals among `command_ids` (one look-up for a batch), in no particular
    /// order.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn rejected_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<RejectedCommand>, JournalError>;

    /// Every remembered refusal, by command id (for `fieldtrail copy`).
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn export_rejections(&self) -> Result<Vec<RejectedCommand>, JournalError>;

    /// Every event of one stream from version `after + 1`, in stream-version order.
    async fn stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, JournalError>;

    /// The event at `stream_version` of one stream (`None` when the stream has no such
    /// version): what a subscriber that got the event sealed from the bus reads in clear.
    async fn event_at(
        &self,
        stream_type: &str,
        stream_id: &str,
        stream_version: i64,
    ) -> Result<Option<StoredEvent>, JournalError> {
        let events = self
            .stream(stream_type, stream_id, stream_version - 1)
            .await?;
        Ok(events
            .into_iter()
            .next()
            .filter(|e| e.stream_version == stream_version))
    }

    /// Up to `limit` events of the global log after `after`, in global-log order, kept by
    /// `cut` and (when given) narrowed to `streams`. Never returns an event behind one that
    /// could still commit: a reader that resumes after the last event it got skips nothing.
    async fn read_log(
        &self,
        cut: Cut,
        streams: Option<&StreamSet>,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, JournalError>;

    /// As [`Backend::read_log`] over the whole log, the personal fields as stored (sealed,
    /// [`crate::sealing`]): what leaves for the bus, whose retention must not undo an erasure.
    async fn read_log_sealed(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        self.read_log(Cut::Position(i64::MAX), None, after, limit)
            .await
    }

    /// The global-log cursor just after the event at global position `position` (or, where no
    /// event has that position, after the highest one below it): where a reader that last saw
    /// `position` resumes. `Cursor::default()` for 0.
    async fn cursor_at(&self, position: i64) -> Result<Cursor, JournalError>;

    /// The highest global position committed (0 when empty).
    async fn head(&self) -> Result<i64, JournalError>;

    /// Number of events.
    async fn count(&self) -> Result<i64, JournalError>;

    /// Waits until every event committed so far is readable from the global log; `false` if
    /// that did not happen within `limit` (always `true` at once on a single-writer backend).
    async fn wait_readable(&self, limit: Duration) -> Result<bool, JournalError>;

    /// Stream ids answering `query`.
    async fn find_streams(&self, query: StreamQuery<'_>) -> Result<Vec<String>, JournalError>;

    /// The auditor's history of a stream or an actor, narrowed by `filter`.
    async fn history(
        &self,
        of: HistoryOf<'_>,
        filter: &EventFilter,
    ) -> Result<Vec<AuditRecord>, JournalError>;

    /// `audit verify`: every row's hash recomputed, every stream's chain followed, in one
    /// consistent read (see [`crate::chain::JournalCheck`]); with `at_position`, also the
    /// digest as it stood there.
    async fn verify(&self, at_position: Option<i64>) -> Result<VerifyReport, JournalError>;

    /// Up to `limit` rows after `after` in global-log order (as [`Backend::read_log`]: none
    /// behind one that could still commit), exactly as stored (payload not upcast, chain
    /// columns and transaction id included): what a journal copy reads.
    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<SealedEvent>, JournalError>;

    /// The whole command ledger, by first position.
    async fn export_ledger(&self) -> Result<Vec<LedgerRow>, JournalError>;

    /// Keeps a signed digest of the journal's head (append-only); returns its number: a new
    /// one, or the digest's own when it has one (`digest_id` > 0: a copied digest).
    ///
    /// # Errors
    /// [`JournalError::Other`] for a digest whose fields are not hex or whose statement is not
    /// a JWS; the backend's errors.
    async fn store_digest(&self, digest: &SignedDigest) -> Result<i64, JournalError>;

    /// Every signed digest kept, oldest first.
    async fn digests(&self) -> Result<Vec<SignedDigest>, JournalError>;

    /// Keeps the public signing keys given ([`crate::signing_keys`]): each one not kept yet,
    /// and the retirement of each kept one that was in force; nothing else changes (a kept
    /// key is never removed, its JWK and creation time never change). One transaction.
    ///
    /// # Errors
    /// [`JournalError::Other`] for a key without a base64url id or a public JWK naming it;
    /// the backend's errors.
    async fn publish_keys(&self, keys: &[PublishedKey]) -> Result<(), JournalError>;

    /// Every public signing key kept, oldest first.
    async fn published_keys(&self) -> Result<Vec<PublishedKey>, JournalError>;

    /// Writes copied rows exactly as given (positions, times, chain columns), keeping their
    /// global-log order (the order given), after every row already there, with their ledger
    /// rows. The reservation table is marked stale: call [`Backend::rebuild_reservations`]
    /// once the copy is complete (the next open does it otherwise).
    ///
    /// # Errors
    /// [`JournalError::Other`] when a row's position is not beyond the journal's head.
    async fn import_events(
        &self,
        events: &[SealedEvent],
        ledger: &[LedgerRow],
    ) -> Result<(), JournalError>;

    /// Rebuilds the reservation table ([`crate::reservations`]) from the events, folded in
    /// global-log order, in one transaction: what a journal written before the table gets at
    /// open, and what `fieldtrail copy` does once the events are copied.
    async fn rebuild_reservations(&self) -> Result<ReservationsRebuilt, JournalError>;

    /// Every reservation held, by kind then key.
    async fn reservations(&self) -> Result<Vec<Reservation>, JournalError>;

    /// The cursor stored under checkpoint `name` (the start of the log when none).
    async fn checkpoint(&self, name: &str) -> Result<Cursor, JournalError>;

    /// Stores documents and their checkpoint in one transaction, serialized with every other
    /// projector on this journal (see [`DocumentCommit`]).
    async fn commit_documents(&self, commit: DocumentCommit)
        -> Result<CommitOutcome, JournalError>;

    /// The stored document of `kind` under `key` and the position it reflects.
    async fn document(&self, kind: &str, key: &str) -> Result<Option<(Value, i64)>, JournalError>;

    /// Every stored document, by kind then key: `(kind, key, document)`.
    async fn documents(&self) -> Result<Vec<(String, String, Value)>, JournalError>;

    /// Stores a new API token.
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), JournalError>;

    /// Every API token, newest first.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, JournalError>;

    /// The live (not revoked) token `token_id`.
    async fn live_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>, JournalError>;

    /// Revokes a live token; whether one was revoked.
    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, JournalError>;

    /// The key table's rows of those of `subjects` it has ([`crate::sealing`]: the subjects'
    /// keys, wrapped, kept apart from the journal's tables).
    async fn subject_keys(&self, subjects: &[String]) -> Result<Vec<SubjectKey>, JournalError>;

    /// Adds rows to the key table, keeping the row of a subject that has one already (so
    /// that two writers making a key for one subject agree on the first stored).
    async fn insert_subject_keys(&self, keys: &[SubjectKey]) -> Result<(), JournalError>;

    /// Destroys `subject_id`'s key: its row keeps no key and says when (a row is made when the
    /// subject had none, so that nothing is sealed for it later). Idempotent. An append of
    /// `subject_erased` does this itself, in its own transaction; this is the same statement
    /// on its own.
    async fn erase_subject_key(&self, subject_id: &str) -> Result<(), JournalError>;

    /// The whole key table, by subject id: what a journal copy carries beside the events.
    async fn export_subject_keys(&self) -> Result<Vec<SubjectKey>, JournalError>;

    /// The in-process event bus: notified after events commit (on PostgreSQL, from
    /// `LISTEN`, so also for other processes' commits once [`Backend::listen`] runs).
    fn notifier(&self) -> Arc<Notify>;

    /// Starts what delivers other processes' commits to [`Backend::notifier`] (PostgreSQL:
    /// a `LISTEN` connection); `None` when there is nothing to start.
    fn listen(&self) -> Option<tokio::task::JoinHandle<()>>;

    /// The PostgreSQL pool, for the production-only parts (relay, leader election, metrics).
    fn postgres(&self) -> Option<&deadpool_postgres::Pool> {
        None
    }

    /// Closes connections.
    fn close(&self) {}
}

/// The handle to a journal that the rest of fieldtrail holds (cheap to clone).
#[derive(Clone)]
pub struct Journal(Arc<dyn Backend>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.0.kind().as_str())
    }
}

impl std::ops::Deref for Journal {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Journal {
    /// A handle on `backend`, personal fields sealed with the process's master key
    /// ([`MasterKey::configured`]).
    ///
    /// # Panics
    /// When the environment's master key is malformed ([`open`] reports it as an error
    /// first).
    pub fn new(backend: impl Backend) -> Self {
        match MasterKey::configured() {
            Ok(master) => Self::with_master_key(backend, master),
            Err(e) => panic!("{e}"),
        }
    }

    /// A handle on `backend` WITHOUT sealing: personal fields are stored in clear. Only for
    /// measuring what sealing costs (`services/examples/sealing_cost.rs`); nothing in
    /// fieldtrail opens a journal this way.
    #[doc(hidden)]
    pub fn unsealed_for_measurement(backend: impl Backend) -> Self {
        Self(Arc::new(backend))
    }

    /// As [`Journal::with_master_key`], once `master` is known to open the journal's key
    /// table ([`Sealed::check_master_key`]).
    ///
    /// # Errors
    /// When it does not, or the key table cannot be read.
    pub async fn checked(backend: impl Backend, master: MasterKey) -> Result<Self, JournalError> {
        let sealed = Sealed::new(Arc::new(backend), master);
        sealed.check_master_key().await?;
        Ok(Self(Arc::new(sealed)))
    }

    /// A handle on `backend`, personal fields sealed with `master` ([`crate::sealing`]).
    pub fn with_master_key(backend: impl Backend, master: MasterKey) -> Self {
        Self(Arc::new(Sealed::new(Arc::new(backend), master)))
    }

    /// Up to `limit` events after `cursor` in global-log order (the whole log).
    ///
    /// # Errors
    /// As [`Backend::read_log`].
    pub async fn read(&self, cursor: Cursor, limit: i64) -> Result<Vec<StoredEvent>, JournalError> {
        self.0
            .read_log(Cut::Position(i64::MAX), None, cursor, limit)
            .await
    }

    /// Pages of the global log after `from`, `page` events each (personal fields opened,
    /// as [`Journal::read`], or left sealed as stored, as [`Backend::read_log_sealed`]), read by
    /// a task of their own one page ahead of their reader: the database reads the next page
    /// while the reader works on this one. The channel ends after a page shorter than `page`
    /// (the end of the log when it was read), or after an error, which is its last item; a
    /// reader that drops the receiver stops the task. Needs a tokio runtime.
    pub fn read_ahead(
        &self,
        from: Cursor,
        page: i64,
        sealed: bool,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<StoredEvent>, JournalError>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let journal = self.clone();
        tokio::spawn(async move {
            let mut cursor = from;
            loop {
                let result = if sealed {
                    journal.read_log_sealed(cursor, page).await
                } else {
                    journal.read(cursor, page).await
                };
                let last = match &result {
                    Ok(events) => {
                        if let Some(event) = events.last() {
                            cursor = Cursor::after(event);
                        }
                        i64::try_from(events.len()).unwrap_or(i64::MAX) < page
                    }
                    Err(_) => true,
                };
                let empty = matches!(&result, Ok(events) if events.is_empty());
                if empty || sender.send(result).await.is_err() || last {
                    return;
                }
            }
        });
        receiver
    }

    /// The PostgreSQL pool, or an error naming the PostgreSQL-only `feature`.
    ///
    /// # Errors
    /// [`JournalError::Other`] on the embedded backend.
    pub fn require_postgres(
        &self,
        feature: &str,
    ) -> Result<&deadpool_postgres::Pool, JournalError> {
        self.0.postgres().ok_or_else(|| {
            JournalError::Other(format!(
                "{feature} needs the PostgreSQL backend (DATABASE_URL=postgres://...); this journal is an embedded SQLite file"
            ))
        })
    }
}

/// The URL of the embedded journal used when nothing is configured: `fieldtrail.db` in the
/// working directory.
pub const DEFAULT_URL: &str = "sqlite://fieldtrail.db";

/// Opens the journal at `url`, creating and migrating it if needed: `sqlite://PATH` (a file,
/// relative to the working directory unless absolute: `sqlite:///var/lib/x.db`) or
/// `postgres://...` / `postgresql://...` (`pool_size` connections). Personal data is sealed
/// with [`MasterKey::configured`]; a PostgreSQL journal needs a configured one.
///
/// # Errors
/// [`JournalError::Other`] naming the URL when its scheme is unknown or it cannot be opened;
/// on PostgreSQL, when no master key is configured.
pub async fn open(url: &str, pool_size: usize) -> Result<Journal, JournalError> {
    open_with(url, pool_size, true).await
}

/// As [`open`], for a journal that must already exist (what reads it: reports, audits,
/// exports, status, the source of a copy): nothing is created. A SQLite file that cannot be
/// written is opened read-only. On PostgreSQL the database must exist (its migrations are
/// still applied).
///
/// # Errors
/// As [`open`], and [`JournalError::Other`] naming the journal when it does not exist.
pub async fn open_existing(url: &str, pool_size: usize) -> Result<Journal, JournalError> {
    open_with(url, pool_size, false).await
}

async fn open_with(url: &str, pool_size: usize, create: bool) -> Result<Journal, JournalError> {
    let master = MasterKey::configured()?;
    if master.is_development() && sqlite_path(url).is_none() {
        return Err(JournalError::Other(format!(
            "a PostgreSQL journal needs a master key for its personal data: set {} (64 hex \
             digits, e.g. from `openssl rand -hex 32`) or {}; the development key is for the \
             embedded journal only",
            crate::sealing::MASTER_KEY_ENV,
            crate::sealing::MASTER_KEY_FILE_ENV
        )));
    }
    if let Some(path) = sqlite_path(url) {
        check_sqlite_path(path)?;
        let path = std::path::Path::new(path);
        let journal = if create {
            crate::sqlite::SqliteJournal::open(path).await?
        } else {
            crate::sqlite::SqliteJournal::open_existing(path).await?
        };
        return Journal::checked(journal, master).await;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = if create {
            crate::database::open(url, pool_size).await?
        } else {
            crate::database::open_existing(url, pool_size).await?
        };
        return Journal::checked(crate::PgJournal::with_url(pool, url), master).await;
    }
    Err(JournalError::Other(format!(
        "journal URL {url:?}: expected sqlite://PATH or postgres://..."
    )))
}

/// Refuses what a `sqlite://` path cannot mean here: nothing, `:memory:` (each connection
/// would get its own empty database) and query parameters (`?mode=...`).
///
/// # Errors
/// [`JournalError::Other`] naming the problem.
pub fn check_sqlite_path(path: &str) -> Result<(), JournalError> {
    if path.is_empty() {
        return Err(JournalError::Other(
            "sqlite:// needs a file path, e.g. sqlite://fieldtrail.db".to_owned(),
        ));
    }
    if path == ":memory:" || path.starts_with("file::memory:") {
        return Err(JournalError::Other(
            "sqlite://:memory: is not supported: the journal is a file (e.g. sqlite:///tmp/scratch.db)".to_owned(),
        ));
    }
    if path.contains('?') {
        return Err(JournalError::Other(format!(
            "sqlite://{path}: query parameters are not supported; name the file only"
        )));
    }
    Ok(())
}

/// The file path of a `sqlite://` URL (`None` for another scheme).
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_a_path() {
        assert_eq!(sqlite_path("sqlite://fieldtrail.db"), Some("fieldtrail.db"));
        assert_eq!(
            sqlite_path("sqlite:///var/lib/ft.db"),
            Some("/var/lib/ft.db")
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
