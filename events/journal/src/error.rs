//! The journal's errors.

/// What can go wrong when reading or writing the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The `command_id` was already applied: nothing was appended (FORMAT.md: "answers as a duplicate").
    #[error("command {0} was already applied")]
    DuplicateCommand(String),
    /// The stream's version was not the expected one: another command on the same aggregate
    /// committed first. Nothing was appended.
    #[error(
        "stream {stream} moved on concurrently (expected version {expected}): nothing was appended"
    )]
    VersionConflict {
        /// `type/id`
        stream: String,
        /// The version the command was decided on.
        expected: i64,
    },
    /// An event of the append takes a claim (a rule across aggregates, e.g. a learner's place
    /// in a field study) that is already held in the reservation table
    /// ([`crate::reservations`]). Nothing was appended; [`fieldtrail_domain::claims::Claim::refusal`]
    /// is the command's rejection.
    #[error("claim {} {} is held by {holder}: nothing was appended", claim.kind.as_str(), claim.key)]
    ClaimHeld {
        /// The claim.
        claim: fieldtrail_domain::claims::Claim,
        /// `type/id` of the stream holding it.
        holder: String,
    },
    /// PostgreSQL could not be reached or refused the statement.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The embedded SQLite journal refused the statement or could not be opened.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row could not be read as an event of this version.
    #[error(transparent)]
    Decode(#[from] fieldtrail_domain::DecodeError),
    /// The database could not be reached (said to every command of a group commit whose
    /// connection or commit failed that way).
    #[error("the journal is unreachable: {0}")]
    Unavailable(String),
    /// Anything else (with context).
    #[error("{0}")]
    Other(String),
}

impl JournalError {
    /// Whether the error means the database is unreachable or going away (as opposed to a
    /// refused statement): no connection, a closed one, an I/O error, or a SQLSTATE of class 08
    /// (connection exception) or 57 (operator intervention, e.g. `admin_shutdown` while the
    /// server restarts; PostgreSQL appendix A).
    pub fn is_unavailable(&self) -> bool {
        match self {
            JournalError::Pool(_) | JournalError::Unavailable(_) => true,
            JournalError::Postgres(e) => {
                e.is_closed()
                    || e.code()
                        .is_none_or(|c| c.code().starts_with("08") || c.code().starts_with("57"))
            }
            JournalError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
            ),
            _ => false,
        }
    }
}
