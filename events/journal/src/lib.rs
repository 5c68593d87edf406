//! The journal: fieldtrail's source of truth, behind one storage seam ([`Backend`], held as
//! [`Journal`]) with two implementations: PostgreSQL ([`PgJournal`], production) and an
//! embedded SQLite file ([`sqlite::SqliteJournal`], the default). [`open`] picks one by URL.
//!
//! - [`Journal`] is our cqrs-es `PersistedEventRepository` on either backend; on PostgreSQL,
//!   [`PgJournal`] loads streams and appends
//!   events with an exact expected-version check, writing the command ledger in the same
//!   transaction (idempotency by `command_id`).
//! - [`GlobalLog`] reads every committed event in a commit-safe order: by (writing
//!   transaction id, position), never beyond the oldest running transaction, so that a reader
//!   cannot skip an event that commits out of order (DESIGN.md decision 3).
//! - [`JournalLookups`] implements the domain's [`fieldtrail_domain::Lookups`] by folding streams.
//! - [`chain`] is the hash chain (canonical form, SHA-256, checks, journal digest) and
//!   [`audit`] what auditors read: stream and actor histories, `as_of` cuts, `audit verify`.
//! - [`database`] creates the database if missing, pools connections and runs the migrations
//!   of `deploy/migrations`.

pub mod audit;
mod backend;
mod batch;
mod cache;
pub mod chain;
pub mod checkpoint;
mod cqrs;
pub mod database;
pub mod digests;
mod error;
mod group;
mod log;
mod lookups;
mod metadata;
mod postgres;
mod rejections;
mod repository;
pub mod reservations;
pub mod sealing;
pub mod signing_keys;
pub mod sqlite;
mod stored;

pub use backend::{
    check_sqlite_path, open, open_existing, sqlite_path, AppendRequest, Backend, BackendKind,
    CommitOutcome, DocumentCommit, HistoryOf, Journal, LedgerRow, NewEvent, StreamAppend,
    StreamQuery, TokenRecord, DEFAULT_URL,
};
pub use cache::{fold_into, AggregateCache, CachedEventStore, DEFAULT_CAPACITY};
pub use error::JournalError;
pub use log::{spawn_listener, Cursor, GlobalLog, NOTIFY_CHANNEL};
pub use lookups::JournalLookups;
pub use metadata::CommandMetadata;
pub use rejections::RejectedCommand;
pub use repository::{append_in, AppendedCommand, PgJournal};
pub use stored::StoredEvent;
