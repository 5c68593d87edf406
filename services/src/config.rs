//! Where fieldtrail finds its servers: flags, then environment variables, then defaults.

use clap::Args;

/// Connection settings shared by every subcommand.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// PostgreSQL URL; the database is created if missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/fieldtrail",
        global = true
    )]
    pub database_url: String,
    /// NATS URL (JetStream must be enabled on the server).
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
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
    #[arg(long, env = "FIELDTRAIL_DEDUP_WINDOW_SECS", default_value_t = 120, global = true)]
    pub dedup_window_secs: u64,
    /// Largest HTTP request body accepted, in bytes (a larger one is refused with `invalid`).
    #[arg(long, env = "FIELDTRAIL_MAX_BODY_BYTES", default_value_t = 256 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Longest time one HTTP request may take, in seconds (then 408).
    #[arg(long, env = "FIELDTRAIL_REQUEST_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub request_timeout_secs: u64,
    /// Size of the PostgreSQL connection pool.
    #[arg(
        long,
        env = "FIELDTRAIL_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub pool_size: usize,
}

impl Settings {
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
        }
    }
}
