//! Where fieldtrail finds its servers and how it runs: flags, then environment variables, then
//! the configuration file, then defaults (the file layer: [`crate::config::file`]).

pub mod file;
pub mod telemetry;

use clap::Args;
use std::net::SocketAddr;

/// Connection settings shared by every subcommand.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// The journal: `sqlite://PATH` (embedded, one file; the default is `fieldtrail.db` in the
    /// working directory) or `postgres://...` (production; the database is created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = fieldtrail_journal::DEFAULT_URL,
        global = true
    )]
    pub database_url: String,
    /// NATS URL (JetStream must be enabled on the server); empty (the default): no NATS, the
    /// events reach subscribers through `GET /events/stream` only.
    #[arg(long, env = "NATS_URL", default_value = "", global = true)]
    pub nats_url: String,
    /// JetStream stream the relay publishes to (created if absent).
    #[arg(
        long,
        env = "FIELDTRAIL_NATS_STREAM",
        default_value = "FIELDTRAIL",
        global = true
    )]
    pub nats_stream: String,
    /// First token of every subject: `<prefix>.<stream type>.<stream id>.<event type>`.
    #[arg(
        long,
        env = "FIELDTRAIL_SUBJECT_PREFIX",
        default_value = "fieldtrail",
        global = true
    )]
    pub subject_prefix: String,
    /// JetStream's duplicate window for the stream, in seconds (used when the relay creates
    /// the stream): a re-publish of an event id within it is acknowledged as a duplicate and
    /// not stored again. Consumers deduplicate by event id beyond it.
    #[arg(
        long,
        env = "FIELDTRAIL_DEDUP_WINDOW_SECS",
        default_value_t = 120,
        global = true
    )]
    pub dedup_window_secs: u64,
    /// Largest HTTP request body accepted, in bytes (a larger one is refused with `invalid`).
    #[arg(long, env = "FIELDTRAIL_MAX_BODY_BYTES", default_value_t = 256 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Longest time one HTTP request may take, in seconds (then 408).
    #[arg(
        long,
        env = "FIELDTRAIL_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,
    /// Size of the PostgreSQL connection pool.
    #[arg(
        long,
        env = "FIELDTRAIL_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub pool_size: usize,
    /// Address `fieldtrail serve` listens on (HTTP API, `/healthz`, `/readyz`, `/metrics`).
    #[arg(
        long,
        env = "FIELDTRAIL_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// Whether `serve` runs the NATS relay (`false`: no NATS connection at all; `/readyz` then
    /// does not ask for NATS).
    #[arg(
        long,
        env = "FIELDTRAIL_RELAY",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub relay: bool,
    /// Replicas of the JetStream stream when the relay creates it (3 on a 3-node cluster).
    #[arg(
        long,
        env = "FIELDTRAIL_NATS_REPLICAS",
        default_value_t = 1,
        global = true
    )]
    pub nats_replicas: usize,
    /// `/readyz` fails when a read model is more than this many events behind the journal.
    #[arg(
        long,
        env = "FIELDTRAIL_READY_MAX_LAG_EVENTS",
        default_value_t = 1000,
        global = true
    )]
    pub ready_max_lag_events: u64,
    /// `/readyz` fails when a read model's oldest unprojected event is older than this (seconds).
    #[arg(
        long,
        env = "FIELDTRAIL_READY_MAX_LAG_SECS",
        default_value_t = 60,
        global = true
    )]
    pub ready_max_lag_secs: u64,
    /// Longest a graceful shutdown (SIGTERM, Ctrl-C) may take, in seconds: in-flight requests,
    /// the projector's batch and the relay's publishes; what is still running then is dropped.
    #[arg(
        long,
        env = "FIELDTRAIL_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 20,
        global = true
    )]
    pub shutdown_timeout_secs: u64,
    /// Log filter, `RUST_LOG` syntax (`info`, `warn,fieldtrail=debug`, ...).
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = DEFAULT_LOG_FILTER,
        global = true
    )]
    pub log: String,
    /// Log format: `auto` (readable on a terminal, JSON otherwise), `json` or `text`.
    #[arg(
        long,
        env = "FIELDTRAIL_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Auto,
        global = true
    )]
    pub log_format: LogFormat,
    /// Seconds between two plain progress lines of a long job when stderr is not a terminal.
    #[arg(
        long,
        env = "FIELDTRAIL_PROGRESS_INTERVAL_SECS",
        default_value_t = 10,
        global = true
    )]
    pub progress_interval_secs: u64,
    /// The directory of the signing keys (Ed25519, `fieldtrail keys init|rotate`): kept
    /// outside the journal, readable by the service's user only (created `0700`, each private
    /// key `0600`; a key readable by others is refused).
    #[arg(
        long,
        env = "FIELDTRAIL_KEYS_DIR",
        default_value = crate::signing::keys::DEFAULT_DIR,
        global = true
    )]
    pub keys_dir: String,
    /// The pinned roots of trust of the published keys: key ids (RFC 7638 thumbprints, as
    /// `fieldtrail keys list` prints them), comma-separated; empty: none. The keys the journal
    /// keeps are published only when a chain of endorsements leads to them from a key of the
    /// keys directory or from one of these (a server without the directory, or whose
    /// directory was lost, names the first key here).
    #[arg(
        long,
        env = "FIELDTRAIL_SIGNING_ROOT",
        default_value = "",
        global = true
    )]
    pub signing_root: String,
    /// Seconds between two signed digests of the journal's head made by `serve` (0: none;
    /// `fieldtrail audit digest` signs one at any time). A digest is made only when the head
    /// moved since the last one and a signing key exists.
    #[arg(
        long,
        env = "FIELDTRAIL_DIGEST_INTERVAL_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub digest_interval_secs: u64,
}

/// The log filter when none is configured.
pub const DEFAULT_LOG_FILTER: &str = "info,async_nats=warn,refinery_core=warn,tokio_postgres=warn";

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable text on a terminal, JSON lines otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Readable text.
    Text,
}

impl LogFormat {
    /// `auto`, `json` or `text`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}

impl Settings {
    /// The pinned roots of trust ([`Settings::signing_root`]), one key id each.
    pub fn signing_roots(&self) -> Vec<String> {
        self.signing_root
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The NATS URL the relay publishes to, when there is a bus: `nats_url` is set and the
    /// relay is not disabled.
    pub fn bus(&self) -> Option<&str> {
        (self.relay && !self.nats_url.is_empty()).then_some(self.nats_url.as_str())
    }

    /// Settings for a test or an embedding program: the given database and NATS, with the
    /// stream and subject prefix given (each test uses its own).
    pub fn new(
        database_url: &str,
        nats_url: &str,
        nats_stream: &str,
        subject_prefix: &str,
    ) -> Self {
        Self {
            database_url: database_url.to_owned(),
            nats_url: nats_url.to_owned(),
            nats_stream: nats_stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
            dedup_window_secs: 120,
            max_body_bytes: 256 * 1024,
            request_timeout_secs: 30,
            pool_size: 16,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            relay: true,
            nats_replicas: 1,
            ready_max_lag_events: 1000,
            ready_max_lag_secs: 60,
            shutdown_timeout_secs: 20,
            log: DEFAULT_LOG_FILTER.to_owned(),
            log_format: LogFormat::Auto,
            progress_interval_secs: 10,
            keys_dir: crate::signing::keys::DEFAULT_DIR.to_owned(),
            signing_root: String::new(),
            digest_interval_secs: 3600,
        }
    }
}
