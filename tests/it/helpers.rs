//! `TestEnv`: each test gets its own database (created and migrated) and its own JetStream
//! stream and subject prefix, on the real servers named by `DATABASE_URL` / `NATS_URL`
//! (defaults: the local PostgreSQL and NATS). A missing server fails the test.

use deadpool_postgres::Pool;
use fieldtrail::handler::CommandHandler;
use fieldtrail::import::{import_text, ImportReport};
use fieldtrail::relay::{self, Relay};
use fieldtrail::Settings;
use fieldtrail_journal::{database, GlobalLog, PgJournal};
use fieldtrail_projections::runner::Projector;
use serde_json::Value;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// The server's base URL without a database name.
fn server_url() -> String {
    std::env::var("FIELDTRAIL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The NATS server tests use.
pub fn nats_url() -> String {
    std::env::var("FIELDTRAIL_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A test's own database and NATS stream.
pub struct TestEnv {
    /// Settings naming the test's database, stream and prefix.
    pub settings: Settings,
    /// Pool on the test's database.
    pub pool: Pool,
    /// Database name (dropped by [`TestEnv::cleanup`]).
    pub db_name: String,
}

/// The demo cohort and the rule probes, with their right answers (copied from the scenarios).
pub const COHORT: &str = include_str!("../../data/cohort-2025.jsonl");
/// Right answers for [`COHORT`].
pub const COHORT_EXPECTED: &str = include_str!("../data/cohort-2025.expected.json");
/// The rule probes.
pub const RULES: &str = include_str!("../data/rules.jsonl");
/// Right answers for [`RULES`].
pub const RULES_EXPECTED: &str = include_str!("../data/rules.expected.json");

impl TestEnv {
    /// Creates a fresh database `ft_<name>_<random>` and a stream `FT_<NAME>_<RANDOM>` on
    /// subjects `ft_<name>_<random>.>`.
    pub async fn new(name: &str) -> Self {
        let unique = format!(
            "{name}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let db_name = format!("ft_{unique}");
        let url = format!("{}/{db_name}", server_url());
        let settings = Settings::new(
            &url,
            &nats_url(),
            &format!("FT_{}", unique.to_uppercase()),
            &format!("ft_{unique}"),
        );
        let pool = database::open(&url, 16)
            .await
            .expect("PostgreSQL must be running for the integration tests");
        Self {
            settings,
            pool,
            db_name,
        }
    }

    /// A command handler on the test's journal.
    pub fn handler(&self) -> CommandHandler {
        CommandHandler::new(PgJournal::new(self.pool.clone()))
    }

    /// Imports `text` line by line, then runs the projector until it is caught up.
    pub async fn import(&self, text: &str) -> ImportReport {
        let report = import_text(&self.handler(), text).await.expect("import");
        self.project().await;
        report
    }

    /// Runs the projector until caught up.
    pub async fn project(&self) {
        let mut projector = Projector::start(self.pool.clone())
            .await
            .expect("projector start");
        projector.catch_up().await.expect("projector");
    }

    /// Publishes every event to the test's stream; returns how many (and how many duplicates).
    pub async fn relay(&self) -> fieldtrail::relay::Published {
        let client = relay::connect(&self.settings.nats_url)
            .await
            .expect("NATS must be running for the integration tests");
        relay::ensure_stream(&async_nats::jetstream::new(client.clone()), &self.settings)
            .await
            .expect("stream");
        Relay::new(self.pool.clone(), client, &self.settings)
            .catch_up()
            .await
            .expect("relay")
    }

    /// Number of rows in the events table.
    pub async fn event_count(&self) -> i64 {
        GlobalLog::new(self.pool.clone())
            .count()
            .await
            .expect("count")
    }

    /// A stored read-model document.
    pub async fn document(&self, kind: &str, key: &str) -> Option<Value> {
        fieldtrail::read::document(&self.pool, kind, key)
            .await
            .expect("read model")
    }

    /// Every stored document.
    pub async fn documents(&self) -> Vec<(String, String, Value)> {
        fieldtrail::read::all_documents(&self.pool)
            .await
            .expect("read models")
    }

    /// Starts `serve` on a free port; returns its address and the token that stops it.
    pub async fn serve(
        &self,
    ) -> (
        SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let token = CancellationToken::new();
        let task = tokio::spawn(fieldtrail::serve::run(
            self.settings.clone(),
            listener,
            token.clone(),
        ));
        (address, token, task)
    }

    /// Drops the test's database and stream (call at the end of a passing test).
    pub async fn cleanup(self) {
        self.pool.close();
        if let Ok(client) = relay::connect(&self.settings.nats_url).await {
            let _ = async_nats::jetstream::new(client)
                .delete_stream(&self.settings.nats_stream)
                .await;
        }
        let admin = database::pool(&format!("{}/postgres", server_url()), 1).expect("admin pool");
        if let Ok(client) = admin.get().await {
            let _ = client
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.db_name
                ))
                .await;
        }
    }
}
