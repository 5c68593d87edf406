//! The global log: every committed event, in an order no reader can skip.
//!
//! A position is taken at insert but becomes visible at commit, so `position > cursor` loses
//! events under concurrent writers. Instead each row carries its writing transaction's id
//! (`xid8`), and a reader reads only rows whose transaction id is below the oldest transaction
//! still running (`pg_snapshot_xmin(pg_current_snapshot())`): those transactions have all
//! ended, so nothing can appear behind the cursor later. Rows are ordered by
//! (transaction id, position) and the cursor is that pair. A rolled-back transaction leaves
//! no rows and never holds the horizon once it has ended. The horizon is cluster-wide: one
//! long transaction anywhere on the server holds every reader back (DESIGN.md decision 3).

use crate::stored::{StoredEvent, COLUMNS};
use crate::JournalError;
use deadpool_postgres::Pool;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

/// The channel the events table's trigger notifies on each insert (delivered at commit).
pub const NOTIFY_CHANNEL: &str = "fieldtrail_events";

/// A reader's place in the global log: the (transaction id, position) of the last event read.
/// `Cursor::default()` is before the first event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The last event's writing transaction id (`xid8`).
    pub tx_id: u64,
    /// The last event's global position.
    pub position: i64,
}

impl Cursor {
    /// The cursor just after `event`.
    pub fn after(event: &StoredEvent) -> Self {
        Self {
            tx_id: event.tx_id,
            position: event.position,
        }
    }
}

/// Reads the global log from a pool.
#[derive(Clone)]
pub struct GlobalLog {
    pool: Pool,
}

impl GlobalLog {
    /// A reader on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Up to `limit` events after `cursor`, in (transaction id, position) order, all from
    /// transactions that have ended. An empty answer means "nothing more yet".
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn read(&self, cursor: Cursor, limit: i64) -> Result<Vec<StoredEvent>, JournalError> {
        self.read_until(cursor, limit, i64::MAX).await
    }

    /// As [`GlobalLog::read`], keeping only events at global positions `<= max_position`
    /// (an `as_of` cut).
    ///
    /// # Errors
    /// As [`GlobalLog::read`].
    pub async fn read_until(
        &self,
        cursor: Cursor,
        limit: i64,
        max_position: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events
                 WHERE (tx_id, position) > ($1::text::xid8, $2)
                   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                   AND position <= $4
                 ORDER BY events.tx_id, events.position
                 LIMIT $3"
            ))
            .await?;
        let rows = client
            .query(
                &statement,
                &[
                    &cursor.tx_id.to_string(),
                    &cursor.position,
                    &limit,
                    &max_position,
                ],
            )
            .await?;
        rows.iter()
            .map(|r| StoredEvent::from_row(r).map_err(JournalError::from))
            .collect()
    }

    /// The highest global position committed so far (0 when the journal is empty).
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn head(&self) -> Result<i64, JournalError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT coalesce(max(position), 0) FROM events", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Waits until every event committed so far is readable from the global log, that is
    /// until no transaction older than the newest committed event is still running anywhere on
    /// the server (the horizon is cluster-wide: DESIGN.md decision 3, trap b). Returns `false`
    /// if that did not happen within `limit`.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn wait_readable(&self, limit: Duration) -> Result<bool, JournalError> {
        let started = std::time::Instant::now();
        loop {
            let client = self.pool.get().await?;
            let held: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot()))",
                    &[],
                )
                .await?
                .get(0);
            if !held {
                return Ok(true);
            }
            drop(client);
            if started.elapsed() >= limit {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Number of rows in the journal.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn count(&self) -> Result<i64, JournalError> {
        let client = self.pool.get().await?;
        let row = client.query_one("SELECT count(*) FROM events", &[]).await?;
        Ok(row.get(0))
    }
}

/// Wakes readers when events are committed: a dedicated connection that `LISTEN`s on
/// [`NOTIFY_CHANNEL`] and signals `notify`. If the connection drops it reconnects; readers
/// also poll, so a lost notification only delays them by their poll interval.
pub fn spawn_listener(database_url: String, notify: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    spawn_listener_for(database_url, notify, None)
}

/// As [`spawn_listener`], skipping the notifications of commits made through `own` (a pool
/// of [`crate::database::pool`], whose connections name it in
/// [`crate::database::WRITER_SETTING`]): the journal on that pool signals `notify` itself
/// when its append returns, so the notification would wake its readers a second time.
pub(crate) fn spawn_listener_for(
    database_url: String,
    notify: Arc<Notify>,
    own: Option<deadpool_postgres::Pool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen_once(&database_url, &notify, own.as_ref()).await {
                tracing::debug!(error = %e, "LISTEN connection lost; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The writer id of `pool`'s connections ([`crate::database::WRITER_SETTING`]), if set.
async fn writer_of(pool: &deadpool_postgres::Pool) -> Result<Option<String>, JournalError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT current_setting($1, true)",
            &[&crate::database::WRITER_SETTING],
        )
        .await?;
    Ok(row.get::<_, Option<String>>(0).filter(|w| !w.is_empty()))
}

async fn listen_once(
    database_url: &str,
    notify: &Notify,
    own: Option<&deadpool_postgres::Pool>,
) -> Result<(), JournalError> {
    let own = match own {
        Some(pool) => writer_of(pool).await?,
        None => None,
    };
    let config = crate::database::parse_url(database_url)?;
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = futures::channel::mpsc::unbounded();
    let stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let pump = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while let Some(message) = stream.next().await {
            match message {
                Ok(AsyncMessage::Notification(n))
                    if own.as_deref().is_some_and(|own| own == n.payload()) => {}
                Ok(AsyncMessage::Notification(_)) => {
                    let _ = tx.unbounded_send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await?;
    notify.notify_waiters();
    while rx.next().await.is_some() {
        notify.notify_waiters();
    }
    pump.abort();
    Ok(())
}
