//! Leadership among several `serve` processes on one database: the projector and the relay
//! each run in exactly one process at a time.
//!
//! The leader holds a session-level PostgreSQL advisory lock on its own connection. If the
//! process dies, PostgreSQL ends the session and releases the lock, and another process takes
//! it at its next attempt (every poll interval, 500 ms). If the lock connection breaks, the
//! leader stops at its next wake and tries to take the lock again: a closed connection is seen
//! at once, one that stops answering within [`PING_INTERVAL`].

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
    session: Option<Session>,
}

/// The connection holding the lock, and when it last answered.
struct Session {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
    answered: std::time::Instant,
}

/// How long a leader trusts its lock connection without asking it (`SELECT 1`). A connection
/// PostgreSQL closes (its session ended: the lock is gone) ends its task, which [`Leadership::hold`]
/// sees at once without a round trip; the ping only catches a connection that stopped
/// answering without closing. Before this, every wake of the projector and of the relay cost
/// a round trip (1.6 per command at one client at a time).
pub const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

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
        if let Some(session) = &mut self.session {
            if !session.task.is_finished() {
                if session.answered.elapsed() < PING_INTERVAL {
                    return true;
                }
                if session.client.simple_query("SELECT 1").await.is_ok() {
                    session.answered = std::time::Instant::now();
                    return true;
                }
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
            self.session = Some(Session {
                client,
                task,
                answered: std::time::Instant::now(),
            });
            self.set(true);
            true
        } else {
            task.abort();
            false
        }
    }

    /// Gives the lock up (closing its session).
    pub fn release(&mut self) {
        if let Some(session) = self.session.take() {
            session.task.abort();
        }
        self.set(false);
    }
}
