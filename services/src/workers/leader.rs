//! Leadership among several `serve` processes on one database: the projector and the relay
//! each run in exactly one process at a time.
//!
//! The leader holds a session-level PostgreSQL advisory lock on its own connection. If the
//! process dies, PostgreSQL ends the session and releases the lock, and another process takes
//! it at its next attempt (every poll interval, 500 ms). If the lock connection breaks, the
//! leader stops at once and tries to take the lock again.

use fieldtrail_journal::database;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What this process currently leads; shown by `/healthz`.
#[derive(Debug, Default)]
pub struct Roles {
    /// This process runs the projector.
    pub projector: AtomicBool,
    /// This process runs the relay.
    pub relay: AtomicBool,
}

impl Roles {
    /// `leader` or `standby`.
    pub fn name(flag: &AtomicBool) -> &'static str {
        if flag.load(Ordering::SeqCst) {
            "leader"
        } else {
            "standby"
        }
    }
}

/// The lock key of the projector: `pg_try_advisory_lock(74612, 0)`.
pub const PROJECTOR_KEY: (i32, &str) = (74_612, "");
/// The lock key class of the relay; the second key is `hashtext(<stream name>)`, so one
/// relay runs per JetStream stream.
pub const RELAY_CLASS: i32 = 74_613;

/// A claim on one advisory lock.
pub struct Leadership {
    database_url: String,
    class: i32,
    name: String,
    flag: Arc<Roles>,
    which: fn(&Roles) -> &AtomicBool,
    session: Option<(tokio_postgres::Client, tokio::task::JoinHandle<()>)>,
}

impl Leadership {
    /// A claim on the lock (`class`, `hashtext(name)`), reflected in `which(roles)`.
    pub fn new(
        database_url: &str,
        class: i32,
        name: &str,
        roles: Arc<Roles>,
        which: fn(&Roles) -> &AtomicBool,
    ) -> Self {
        Self {
            database_url: database_url.to_owned(),
            class,
            name: name.to_owned(),
            flag: roles,
            which,
            session: None,
        }
    }

    fn set(&self, leader: bool) {
        (self.which)(&self.flag).store(leader, Ordering::SeqCst);
    }

    /// Whether this process holds the lock now, taking it if it is free.
    ///
    /// On the embedded journal (a `sqlite://` URL) every process leads: its projector's
    /// writes are serialized by the file's write lock and checked against the checkpoint
    /// ([`fieldtrail_journal::Backend::commit_documents`]), so no lock is needed.
    pub async fn hold(&mut self) -> bool {
        if fieldtrail_journal::sqlite_path(&self.database_url).is_some() {
            self.set(true);
            return true;
        }
        if let Some((client, _)) = &self.session {
            if client.simple_query("SELECT 1").await.is_ok() {
                return true;
            }
            tracing::warn!(lock = %self.name, "lost the leadership connection; standing down");
            self.release();
        }
        let Ok(config) = database::parse_url(&self.database_url) else {
            return false;
        };
        let Ok((client, connection)) = config.connect(tokio_postgres::NoTls).await else {
            return false;
        };
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        let taken = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&self.class, &self.name],
            )
            .await
            .map(|row| row.get::<_, bool>(0))
            .unwrap_or(false);
        if taken {
            tracing::info!(lock = %self.name, "took the leadership");
            self.session = Some((client, task));
            self.set(true);
            true
        } else {
            task.abort();
            false
        }
    }

    /// Gives the lock up (closing its session).
    pub fn release(&mut self) {
        if let Some((_, task)) = self.session.take() {
            task.abort();
        }
        self.set(false);
    }
}
