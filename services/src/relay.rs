//! The relay: publishes every committed event to NATS JetStream, in global-log order.
//!
//! Subject: `<prefix>.<stream type>.<stream id>.<event type>`; `Nats-Msg-Id` = event id, so a
//! re-publish after a crash is acknowledged as a duplicate by the server (within its
//! duplicate window; consumers deduplicate by event id beyond it). The checkpoint advances
//! only after JetStream acknowledged every message of the batch (DESIGN.md decision 5).

use crate::config::Settings;
use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use deadpool_postgres::Pool;
use fieldtrail_journal::checkpoint;
use fieldtrail_journal::{Cursor, GlobalLog, StoredEvent};
use std::time::Duration;

/// Events published per batch (acks are awaited together).
pub const BATCH: i64 = 256;

/// Connects to NATS, naming the URL when it cannot.
///
/// # Errors
/// A one-line error naming the URL.
pub async fn connect(nats_url: &str) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
    let client = tokio::time::timeout(Duration::from_secs(5), options.connect(nats_url))
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach NATS at {nats_url}: timed out"))?
        .with_context(|| format!("cannot reach NATS at {nats_url}"))?;
    Ok(client)
}

/// Creates the JetStream stream `settings.nats_stream` on `<prefix>.>` if it does not exist.
///
/// # Errors
/// When JetStream refuses (e.g. it is not enabled).
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &Settings,
) -> anyhow::Result<jetstream::stream::Stream> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: settings.nats_stream.clone(),
        subjects: vec![format!("{}.>", settings.subject_prefix)],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot create JetStream stream {} (is JetStream enabled?)",
            settings.nats_stream
        )
    })
}

/// The subject of `event` under `prefix`.
pub fn subject(prefix: &str, event: &StoredEvent) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        event.stream_type, event.stream_id, event.event_type
    )
}

/// The message body: the event envelope as JSON.
pub fn body(event: &StoredEvent) -> serde_json::Value {
    serde_json::json!({
        "event_id": event.event_id,
        "stream_type": event.stream_type,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "position": event.position,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "actor": event.actor,
        "command_id": event.command_id,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": event.payload,
    })
}

/// Publishes the journal to one JetStream stream.
pub struct Relay {
    pool: Pool,
    log: GlobalLog,
    js: jetstream::Context,
    prefix: String,
    checkpoint: String,
}

impl Relay {
    /// A relay for `settings`, over `pool`, publishing through `client`.
    pub fn new(pool: Pool, client: async_nats::Client, settings: &Settings) -> Self {
        Self {
            log: GlobalLog::new(pool.clone()),
            pool,
            js: jetstream::new(client),
            prefix: settings.subject_prefix.clone(),
            checkpoint: checkpoint::relay(&settings.nats_stream),
        }
    }

    /// The cursor of the last event JetStream acknowledged.
    ///
    /// # Errors
    /// When PostgreSQL cannot be read.
    pub async fn position(&self) -> anyhow::Result<Cursor> {
        let client = self.pool.get().await?;
        Ok(checkpoint::load(&client, &self.checkpoint).await?)
    }

    /// Publishes one batch after the checkpoint and advances it. Returns how many events were
    /// published (0: caught up).
    ///
    /// # Errors
    /// When PostgreSQL or NATS fails; the checkpoint then stays where it was.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let cursor = self.position().await?;
        let events = self.log.read(cursor, BATCH).await?;
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let message = PublishMessage::build()
                .payload(serde_json::to_vec(&body(event))?.into())
                .message_id(event.event_id.to_string())
                .header("Fieldtrail-Event-Type", event.event_type.as_str())
                .header("Fieldtrail-Event-Version", event.event_version.as_str())
                .header("Fieldtrail-Position", event.position.to_string().as_str())
                .header(
                    "Fieldtrail-Stream-Version",
                    event.stream_version.to_string().as_str(),
                );
            acks.push(
                self.js
                    .send_publish(subject(&self.prefix, event), message)
                    .await?,
            );
        }
        for ack in acks {
            let ack = ack.await?;
            if ack.duplicate {
                tracing::debug!(
                    sequence = ack.sequence,
                    "JetStream acknowledged a duplicate"
                );
            }
        }
        let client = self.pool.get().await?;
        checkpoint::save(&client, &self.checkpoint, Cursor::after(last)).await?;
        Ok(events.len())
    }

    /// Publishes until nothing is left.
    ///
    /// # Errors
    /// As [`Relay::run_once`].
    pub async fn catch_up(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }
}
