//! `TestEnv`: each test gets its own journal and its own JetStream stream and subject prefix:
//! on PostgreSQL ([`TestEnv::new`]) a database created and migrated on the server named by
//! `FIELDTRAIL_TEST_PG`, on the embedded backend ([`TestEnv::sqlite`]) a SQLite file in a
//! temporary directory. NATS is the server named by `FIELDTRAIL_TEST_NATS`. A missing server
//! fails the test. [`both_backends!`] runs one test body on each backend.

use deadpool_postgres::Pool;
use fieldtrail::cli::import::{import_text, ImportReport};
use fieldtrail::handler::CommandHandler;
use fieldtrail::workers::relay::{self, Relay};
use fieldtrail::Settings;
use fieldtrail_journal::{database, Journal};
use fieldtrail_projections::runner::Projector;
use serde_json::Value;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// The server's base URL without a database name.
pub fn server_url() -> String {
    std::env::var("FIELDTRAIL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The NATS server tests use.
pub fn nats_url() -> String {
    std::env::var("FIELDTRAIL_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The master key of the tests' journals, installed in each test process before its first
/// journal ([`TestEnv::new`], [`TestEnv::sqlite`]): a PostgreSQL journal needs one.
pub const TEST_MASTER_KEY: &str =
    "74657374206b6579206f6620666965646c747261696c2774207465737473212e";

fn install_test_master_key() {
    let key = fieldtrail_journal::sealing::MasterKey::from_hex(TEST_MASTER_KEY).expect("hex");
    // `false` when installed already (or read first): the binaries get whichever is in force.
    let _ = fieldtrail_journal::sealing::MasterKey::install(key);
}

/// The `fieldtrail` binary with this process's master key in its environment (the key the
/// test's in-process journals seal with; a PostgreSQL journal refuses to open without one).
pub fn fieldtrail_binary() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fieldtrail"));
    command.env(
        fieldtrail_journal::sealing::MASTER_KEY_ENV,
        master_key_hex().as_str(),
    );
    command
}

/// This process's master key as hex (for a child's environment).
pub fn master_key_hex() -> String {
    fieldtrail_journal::sealing::MasterKey::configured()
        .expect("master key")
        .to_hex()
        .to_string()
}

/// A test's own journal and NATS stream.
pub struct TestEnv {
    /// Settings naming the test's journal, stream and prefix.
    pub settings: Settings,
    /// The test's journal (either backend).
    pub journal: Journal,
    /// Pool on the test's database (PostgreSQL only; see [`TestEnv::pool`]).
    pg: Option<Pool>,
    /// The embedded journal's directory (removed on drop).
    _dir: Option<tempfile::TempDir>,
    /// Database name (dropped by [`TestEnv::cleanup`]); on the embedded backend, a unique name
    /// for the test's other scratch files.
    pub db_name: String,
    /// The server's URL without a database name.
    pub server: String,
    /// A `staff` token on the test's database (the HTTP API needs one).
    pub staff: String,
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
        Self::on(&server_url(), &nats_url(), name).await
    }

    /// As [`TestEnv::new`], on the PostgreSQL server `server` (a URL without database name)
    /// and the NATS server `nats`.
    pub async fn on(server: &str, nats: &str, name: &str) -> Self {
        install_test_master_key();
        // PostgreSQL identifiers hold 63 bytes: keep the name's start.
        let name = &name[..name.len().min(32)];
        let unique = format!(
            "{name}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let db_name = format!("ft_{unique}");
        let url = format!("{server}/{db_name}");
        let settings = Settings::new(
            &url,
            nats,
            &format!("FT_{}", unique.to_uppercase()),
            &format!("ft_{unique}"),
        );
        let pool = database::open(&url, 16)
            .await
            .expect("PostgreSQL must be running for the integration tests");
        let journal = Journal::new(fieldtrail_journal::PgJournal::with_url(pool.clone(), &url));
        Self::with_journal(settings, journal, Some(pool), None, db_name, server).await
    }

    /// A test's own embedded journal: a SQLite file in a new temporary directory (removed when
    /// the environment is dropped), with its own NATS stream and prefix as [`TestEnv::new`].
    pub async fn sqlite(name: &str) -> Self {
        install_test_master_key();
        let unique = format!(
            "{name}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("journal.db").display());
        let settings = Settings::new(
            &url,
            &nats_url(),
            &format!("FT_{}", unique.to_uppercase()),
            &format!("ft_{unique}"),
        );
        let journal = fieldtrail_journal::open(&url, 4)
            .await
            .expect("embedded journal");
        Self::with_journal(
            settings,
            journal,
            None,
            Some(dir),
            format!("ft_{unique}"),
            "",
        )
        .await
    }

    async fn with_journal(
        settings: Settings,
        journal: Journal,
        pg: Option<Pool>,
        dir: Option<tempfile::TempDir>,
        db_name: String,
        server: &str,
    ) -> Self {
        let staff = fieldtrail::auth::tokens::create(
            &journal,
            "test",
            fieldtrail::auth::Role::Staff,
            None,
            None,
        )
        .await
        .expect("staff token");
        Self {
            settings,
            journal,
            pg,
            _dir: dir,
            db_name,
            server: server.to_owned(),
            staff,
        }
    }

    /// The pool on the test's PostgreSQL database.
    ///
    /// # Panics
    /// On the embedded backend: the calling test is PostgreSQL-only.
    pub fn pool(&self) -> &Pool {
        self.pg
            .as_ref()
            .expect("a PostgreSQL-only test helper was called on the embedded backend")
    }

    /// The same environment on new connections to its PostgreSQL database (after the server
    /// was restarted under the old pool).
    pub fn reconnected(mut self) -> Self {
        let url = self.settings.database_url.clone();
        let pool = database::pool(&url, 4).expect("pool");
        self.journal = Journal::new(fieldtrail_journal::PgJournal::with_url(pool.clone(), &url));
        self.pg = Some(pool);
        self
    }

    /// Copies `source`'s key table into this journal (what a test copying rows by hand needs
    /// beside them, as `fieldtrail copy` does).
    pub async fn copy_keys_from(&self, source: &Journal) {
        let keys = source.export_subject_keys().await.expect("key table");
        self.journal
            .insert_subject_keys(&keys)
            .await
            .expect("key table copy");
    }

    /// A command handler on the test's journal.
    pub fn handler(&self) -> CommandHandler {
        CommandHandler::new(self.journal.clone())
    }

    /// Imports `text` line by line, then runs the projector until it is caught up.
    pub async fn import(&self, text: &str) -> ImportReport {
        let report = import_text(&self.handler(), text, None)
            .await
            .expect("import");
        self.project().await;
        report
    }

    /// Runs the projector until caught up with every committed event (waiting, if another
    /// test holds an old transaction open on the server, until the horizon passes them).
    pub async fn project(&self) {
        let readable = self
            .journal
            .wait_readable(std::time::Duration::from_secs(60))
            .await
            .expect("horizon");
        assert!(
            readable,
            "a transaction on the server held the global log back for 60 s"
        );
        self.project_now().await;
    }

    /// Runs the projector once until it reads nothing more (without waiting for the horizon).
    pub async fn project_now(&self) {
        let mut projector = Projector::start(self.journal.clone())
            .await
            .expect("projector start");
        projector.catch_up().await.expect("projector");
    }

    /// Publishes every event to the test's stream; returns how many (and how many duplicates).
    pub async fn relay(&self) -> fieldtrail::workers::relay::Published {
        let client = relay::connect(&self.settings.nats_url)
            .await
            .expect("NATS must be running for the integration tests");
        relay::ensure_stream(&async_nats::jetstream::new(client.clone()), &self.settings)
            .await
            .expect("stream");
        Relay::new(self.journal.clone(), client, &self.settings)
            .catch_up()
            .await
            .expect("relay")
    }

    /// Number of rows in the events table.
    pub async fn event_count(&self) -> i64 {
        self.journal.count().await.expect("count")
    }

    /// A stored read-model document.
    pub async fn document(&self, kind: &str, key: &str) -> Option<Value> {
        fieldtrail::read::document(&self.journal, kind, key)
            .await
            .expect("read model")
    }

    /// Every stored document.
    pub async fn documents(&self) -> Vec<(String, String, Value)> {
        fieldtrail::read::all_documents(&self.journal)
            .await
            .expect("read models")
    }

    /// An HTTP client that sends the test's `staff` token with every request.
    pub fn client(&self) -> reqwest::Client {
        self.client_with(&self.staff)
    }

    /// An HTTP client that sends `token` with every request.
    pub fn client_with(&self, token: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("token header");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// A token of `role` (scoped to `cohort` / `learner`) on the test's database.
    pub async fn token(
        &self,
        role: fieldtrail::auth::Role,
        cohort: Option<&str>,
        learner: Option<&str>,
    ) -> String {
        fieldtrail::auth::tokens::create(
            &self.journal,
            &format!("{role}-test"),
            role,
            cohort,
            learner,
        )
        .await
        .expect("token")
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

    /// Waits (up to `limit`) until the projector's and the relay's checkpoints are at the
    /// journal's last event; returns how long it took.
    pub async fn wait_caught_up(&self, limit: std::time::Duration) -> std::time::Duration {
        let started = std::time::Instant::now();
        let relay = fieldtrail_journal::checkpoint::relay(&self.settings.nats_stream);
        loop {
            if let Ok(client) = self.pool().get().await {
                let row = client
                    .query_one(
                        "SELECT (SELECT tx_id::text || '/' || position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1),
                                (SELECT tx_id::text || '/' || position FROM checkpoints WHERE name = 'projector'),
                                (SELECT tx_id::text || '/' || position FROM checkpoints WHERE name = $1)",
                        &[&relay],
                    )
                    .await;
                if let Ok(row) = row {
                    let (head, projector, relay): (Option<String>, Option<String>, Option<String>) =
                        (row.get(0), row.get(1), row.get(2));
                    if head.is_some() && head == projector && head == relay {
                        return started.elapsed();
                    }
                }
            }
            assert!(
                started.elapsed() < limit,
                "projector and relay did not catch up within {limit:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Asserts that the stored read models equal a rebuild from the journal.
    pub async fn assert_read_models_equal_replay(&self) {
        let live = self.documents().await;
        fieldtrail_projections::runner::rebuild(&self.journal)
            .await
            .expect("rebuild");
        assert_eq!(
            self.documents().await,
            live,
            "read models differ from a replay"
        );
    }

    /// Drops the test's database and stream (call at the end of a passing test).
    pub async fn cleanup(self) {
        self.journal.close();
        if let Ok(client) = relay::connect(&self.settings.nats_url).await {
            let _ = async_nats::jetstream::new(client)
                .delete_stream(&self.settings.nats_stream)
                .await;
        }
        if self.pg.is_none() {
            return;
        }
        let admin = database::pool(&format!("{}/postgres", self.server), 1).expect("admin pool");
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

/// Runs one test body on both backends: `both_backends!(name, body)` defines the tests
/// `name::postgres` and `name::sqlite`, each calling `body(TestEnv)` with its own journal.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn postgres() {
                let env = $crate::helpers::TestEnv::new(stringify!($name)).await;
                super::$body(env).await;
            }

            #[tokio::test]
            async fn sqlite() {
                let env = $crate::helpers::TestEnv::sqlite(stringify!($name)).await;
                super::$body(env).await;
            }
        }
    };
}
