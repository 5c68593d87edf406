//! The fieldtrail processes. `main.rs` only parses the command line and calls these rooms:
//!
//! - [`handler`]: the command handler, the one path every command takes (HTTP, import, CLI);
//! - [`http`]: the HTTP surface (routes, the event stream, audit routes, health, metrics, the
//!   API's description);
//! - [`cli`]: the command-line jobs (import, demo, copy, status, the reference consumer);
//! - [`workers`]: what runs in the background of `serve` (the projector loop, the NATS relay,
//!   leader election);
//! - [`config`]: settings, their layers, logging;
//! - reads shared by HTTP and CLI: [`read`] (read models), [`audit`] (the auditor's views),
//!   [`export`] (iCalendar, CLR, xAPI), [`research`] (pseudonymised exports); [`auth`] (tokens,
//!   roles); [`subjects`] (subject access, RGPD); [`serve`] (the server process); [`bench`].

pub mod audit;
pub mod auth;
pub mod bench;
pub mod bulk;
pub mod cli;
pub(crate) mod companion;
pub mod config;
pub mod export;
pub mod handler;
pub mod http;
pub mod pages;
pub mod read;
pub mod research;
pub mod serve;
pub mod signing;
pub mod subjects;
pub mod workers;

pub use config::Settings;

/// Opens the journal named by `settings.database_url` (either backend; see
/// [`fieldtrail_journal::open`]) with up to `pool_size` connections on PostgreSQL.
///
/// # Errors
/// A one-line error naming the URL when it cannot be opened.
pub async fn open_journal(
    settings: &Settings,
    pool_size: usize,
) -> anyhow::Result<fieldtrail_journal::Journal> {
    Ok(fieldtrail_journal::open(&settings.database_url, pool_size).await?)
}

/// As [`open_journal`], for the jobs that only read a journal (reports, audits, exports,
/// status, replay): nothing is created when it does not exist, and a SQLite file that cannot
/// be written is opened read-only ([`fieldtrail_journal::open_existing`]).
///
/// # Errors
/// A one-line error naming the journal when it does not exist or cannot be opened.
pub async fn open_existing_journal(
    settings: &Settings,
    pool_size: usize,
) -> anyhow::Result<fieldtrail_journal::Journal> {
    Ok(fieldtrail_journal::open_existing(&settings.database_url, pool_size).await?)
}
pub use handler::{CommandHandler, HandleError, Outcome};
