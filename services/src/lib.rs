//! The fieldtrail processes: the HTTP API, the projector runner, the NATS relay and the CLI's
//! jobs (import, report, replay, demo). `main.rs` only parses the command line and calls these.

pub mod api;
pub mod audit;
pub mod audit_api;
pub mod auth;
pub mod bench;
pub mod config;
pub mod consumer;
pub mod copy;
pub mod demo;
pub mod event_stream;
pub mod export;
pub mod generate;
pub mod handler;
pub mod health;
pub mod import;
pub mod leader;
pub mod metrics;
pub mod openapi;
pub mod progress;
pub mod read;
pub mod relay;
pub mod research;
pub mod serve;
pub mod settings_file;
pub mod status;
pub mod telemetry;

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
pub use handler::{CommandHandler, HandleError, Outcome};
