//! Connecting: create the database if it is missing, pool connections, run the migrations.

use crate::JournalError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::{Config, NoTls};

mod embedded {
    refinery::embed_migrations!("../../deploy/migrations");
}

/// How long a connection attempt may take before the URL is reported unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses a `postgres://` URL.
///
/// # Errors
/// [`JournalError::Other`] naming the URL when it does not parse.
pub fn parse_url(url: &str) -> Result<Config, JournalError> {
    let mut config = Config::from_str(url)
        .map_err(|e| JournalError::Other(format!("DATABASE_URL {url}: {e}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    Ok(config)
}

/// Creates the URL's database when it does not exist, by connecting to the server's
/// `postgres` database (PostgreSQL has no `CREATE DATABASE IF NOT EXISTS`; a concurrent
/// creation's `duplicate_database` error is taken as success).
///
/// # Errors
/// [`JournalError::Other`] naming the URL when the server cannot be reached.
pub async fn ensure_database(url: &str) -> Result<(), JournalError> {
    let config = parse_url(url)?;
    let name = config.get_dbname().unwrap_or("postgres").to_owned();
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin
        .connect(NoTls)
        .await
        .map_err(|e| JournalError::Other(format!("cannot reach PostgreSQL at {url}: {e}")))?;
    let task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                && e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            {
                return Err(e.into());
            }
        }
    }
    drop(client);
    task.abort();
    Ok(())
}

/// Runs the migrations of `deploy/migrations` (refinery; applied ones are skipped).
///
/// # Errors
/// [`JournalError::Other`] with the failing migration.
pub async fn migrate(url: &str) -> Result<(), JournalError> {
    let config = parse_url(url)?;
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| JournalError::Other(format!("cannot reach PostgreSQL at {url}: {e}")))?;
    let task = tokio::spawn(connection);
    // Two processes migrating at once would race on refinery's history table: serialize them.
    client
        .batch_execute("SELECT pg_advisory_lock(7461001)")
        .await?;
    let result = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map_err(|e| JournalError::Other(format!("migration failed: {e}")));
    client
        .batch_execute("SELECT pg_advisory_unlock(7461001)")
        .await?;
    drop(client);
    task.abort();
    result.map(|_| ())
}

/// The session setting naming the pool that wrote a commit (a random id per [`pool`], set on
/// each of its connections): the payload of the commit notification (migration V11).
pub const WRITER_SETTING: &str = "fieldtrail.writer";

/// A connection pool on `url` (`max_size` connections). Its connections set
/// [`WRITER_SETTING`] to an id of their own pool.
///
/// # Errors
/// [`JournalError::Other`] naming the URL when it does not parse.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, JournalError> {
    let mut config = parse_url(url)?;
    // Every connection of this pool names it as the writer of its commits (migration V11:
    // the commit notification carries it, and this pool's LISTEN connection skips it).
    let writer = format!("-c {WRITER_SETTING}={}", uuid::Uuid::new_v4().simple());
    let options = match config.get_options() {
        Some(given) if !given.is_empty() => format!("{given} {writer}"),
        _ => writer,
    };
    config.options(options);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| JournalError::Other(format!("pool for {url}: {e}")))
}

/// Creates the database if missing, migrates it, seals rows written before the hash chain
/// ([`crate::audit::seal_unsealed`]), rebuilds the reservations if they are stale
/// ([`crate::reservations`]), and returns a pool: what every command of the CLI does first.
///
/// # Errors
/// As [`ensure_database`], [`migrate`] and [`pool`].
pub async fn open(url: &str, max_size: usize) -> Result<Pool, JournalError> {
    ensure_database(url).await?;
    migrate(url).await?;
    let pool = pool(url, max_size)?;
    // Rows written before the hash chain (migration V2) get theirs; nothing to do afterwards.
    crate::audit::seal_unsealed(&pool).await?;
    // A journal written before the reservations (migration V4), or left half-copied, gets them.
    crate::reservations::pg::rebuild(&pool, true).await?;
    Ok(pool)
}

/// As [`open`], for a database that must already exist: it is not created (an unknown
/// database is PostgreSQL's error, naming it); the migrations are applied.
///
/// # Errors
/// As [`migrate`] and [`pool`].
pub async fn open_existing(url: &str, max_size: usize) -> Result<Pool, JournalError> {
    migrate(url).await?;
    let pool = pool(url, max_size)?;
    crate::audit::seal_unsealed(&pool).await?;
    // A journal written before the reservations (migration V4), or left half-copied, gets them.
    crate::reservations::pg::rebuild(&pool, true).await?;
    Ok(pool)
}
