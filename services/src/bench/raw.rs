//! The raw baselines: what PostgreSQL and JetStream do without the product around them, on
//! the same servers, in the same run.

use crate::Settings;
use async_nats::jetstream::{self, context::PublishAckFuture};
use deadpool_postgres::Pool;
use futures::{pin_mut, TryStreamExt as _};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// An events-shaped table (the journal's columns and keys, no triggers).
const TABLE: &str = "
CREATE TABLE IF NOT EXISTS bench_raw_events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_type     text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           text        NOT NULL,
    command_id      text        NOT NULL,
    correlation_id  text        NOT NULL,
    causation_id    text        NOT NULL,
    prev_hash       bytea,
    hash            bytea,
    UNIQUE (stream_type, stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS bench_raw_events_global ON bench_raw_events (tx_id, position);";

/// One event, the expected version checked inside the statement.
const INSERT_ONE: &str = "
INSERT INTO bench_raw_events (event_id, stream_type, stream_id, stream_version, event_type,
    event_version, payload, occurred_at, actor, command_id, correlation_id, causation_id, prev_hash, hash)
SELECT $1, 'cohort', $2, $3::bigint + 1, 'session_held', '1', $4, now(), 'staff:bench', $5, $5, $5, $6, $6
WHERE (SELECT coalesce(max(stream_version), 0) FROM bench_raw_events
       WHERE stream_type = 'cohort' AND stream_id = $2) = $3::bigint";

/// Many events of one stream in one statement.
const INSERT_MANY: &str = "
INSERT INTO bench_raw_events (event_id, stream_type, stream_id, stream_version, event_type,
    event_version, payload, occurred_at, actor, command_id, correlation_id, causation_id, prev_hash, hash)
SELECT e.id, 'cohort', $2, $3::bigint + e.n, 'session_held', '1', e.payload, now(), 'staff:bench', $5, $5, $5, $6, $6
FROM unnest($1::uuid[], $4::jsonb[]) WITH ORDINALITY AS e(id, payload, n)";

/// Events per stream in the raw inserts (as the generated journal).
const STREAM_LEN: i64 = 400;

/// Creates the raw table.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn prepare(pool: &Pool) -> anyhow::Result<()> {
    pool.get().await?.batch_execute(TABLE).await?;
    Ok(())
}

/// Baseline (a): one event per transaction, expected version checked in the statement, on
/// `connections` connections for `window`. Returns events per second.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn insert_single(
    pool: &Pool,
    connections: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|w| {
            let pool = pool.clone();
            let tag = tag.clone();
            tokio::spawn(async move {
                let mut client = pool.get().await?;
                let statement = client.prepare(INSERT_ONE).await?;
                let payload = super::load::payload("raw", 3);
                let hash = vec![7u8; 32];
                let mut written = 0u64;
                while started.elapsed() < window {
                    let stream = format!(
                        "raw1-{tag}-{connections}-{w}-{}",
                        written / STREAM_LEN as u64
                    );
                    let expected = (written % STREAM_LEN as u64) as i64;
                    let tx = client.transaction().await?;
                    let id = uuid::Uuid::now_v7();
                    let command = format!("{stream}-{expected}");
                    let n = tx
                        .execute(
                            &statement,
                            &[&id, &stream, &expected, &payload, &command, &hash],
                        )
                        .await?;
                    anyhow::ensure!(n == 1, "raw insert refused by its version check");
                    tx.commit().await?;
                    written += 1;
                }
                anyhow::Ok(written)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Baseline (b): multi-row inserts of `rows` events per transaction on one connection for
/// `window`. Returns events per second.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn insert_batch(pool: &Pool, rows: usize, window: Duration) -> anyhow::Result<f64> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut client = pool.get().await?;
    let statement = client.prepare(INSERT_MANY).await?;
    let hash = vec![7u8; 32];
    let payloads: Vec<Value> = (0..rows)
        .map(|i| super::load::payload("raw", i as i64 + 3))
        .collect();
    let started = Instant::now();
    let mut written = 0u64;
    let mut batch = 0u64;
    while started.elapsed() < window {
        let stream = format!("rawb-{tag}-{batch}");
        let ids: Vec<uuid::Uuid> = (0..rows).map(|_| uuid::Uuid::now_v7()).collect();
        let tx = client.transaction().await?;
        tx.execute(
            &statement,
            &[&ids, &stream, &0i64, &payloads, &stream, &hash],
        )
        .await?;
        tx.commit().await?;
        written += rows as u64;
        batch += 1;
    }
    Ok(written as f64 / started.elapsed().as_secs_f64())
}

/// Baseline (c): one `SELECT` of every journal event in global order on one connection,
/// every column decoded (the payload as JSON). Returns (events, events per second).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn scan(pool: &Pool) -> anyhow::Result<(u64, f64)> {
    let client = pool.get().await?;
    let started = Instant::now();
    let rows = client
        .query_raw(
            "SELECT position, event_id, stream_type, stream_id, stream_version, event_type, event_version,
                    payload, occurred_at, recorded_at, actor, command_id, correlation_id, causation_id
             FROM events ORDER BY tx_id, position",
            std::iter::empty::<i64>(),
        )
        .await?;
    pin_mut!(rows);
    let mut count = 0u64;
    let mut bytes = 0usize;
    while let Some(row) = rows.try_next().await? {
        let _: i64 = row.get(0);
        let _: uuid::Uuid = row.get(1);
        let a: &str = row.get(2);
        let b: &str = row.get(3);
        let _: i64 = row.get(4);
        let c: &str = row.get(5);
        let payload: Value = row.get(7);
        let _: chrono::DateTime<chrono::Utc> = row.get(8);
        let _: chrono::DateTime<chrono::Utc> = row.get(9);
        let d: &str = row.get(10);
        bytes += a.len() + b.len() + c.len() + d.len() + usize::from(payload.is_object());
        count += 1;
    }
    std::hint::black_box(bytes);
    Ok((count, count as f64 / started.elapsed().as_secs_f64()))
}

/// The name of the raw JetStream stream of a run.
pub fn raw_stream_name(settings: &Settings) -> String {
    format!("{}_RAW", settings.nats_stream)
}

/// The subject prefix of the raw JetStream stream of a run (`<prefix>_raw`).
pub fn raw_prefix(settings: &Settings) -> String {
    format!("{}_raw", settings.subject_prefix)
}

/// Baseline (d): asynchronous JetStream publishes of `size`-byte messages (with a
/// `Nats-Msg-Id`, as the relay's, and no other header) into a scratch stream like the
/// relay's, at most `in_flight` acks in flight, for `duration` ([`publish_messages`] of one
/// message). Returns messages per second.
///
/// # Errors
/// When JetStream refuses.
pub async fn publish(
    client: &async_nats::Client,
    settings: &Settings,
    size: usize,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let body = bytes::Bytes::from(vec![b'x'; size]);
    let message = async_nats::jetstream::message::PublishMessage::build().payload(body);
    let subject = format!("{}.cohort.raw.session_held", raw_prefix(settings));
    publish_messages(client, settings, &[(subject, message)], in_flight, duration).await
}

/// Baseline (e): asynchronous JetStream publishes of `messages` (subject and message), cycled,
/// each with a fresh `Nats-Msg-Id`, into the scratch stream of the run (subjects under
/// [`raw_prefix`], created if missing), at most `in_flight` acks in flight, for `duration`.
/// Given the relay's own messages ([`crate::workers::relay::message`]: headers and bodies,
/// under the raw prefix), what the server does per message is what it does for the relay's.
/// Returns messages per second.
///
/// # Errors
/// When JetStream refuses, or `messages` is empty.
pub async fn publish_messages(
    client: &async_nats::Client,
    settings: &Settings,
    messages: &[(String, async_nats::jetstream::message::PublishMessage)],
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    anyhow::ensure!(!messages.is_empty(), "no message to publish");
    let js = jetstream::new(client.clone());
    js.get_or_create_stream(jetstream::stream::Config {
        name: raw_stream_name(settings),
        subjects: vec![format!("{}.>", raw_prefix(settings))],
        duplicate_window: Duration::from_secs(settings.dedup_window_secs),
        num_replicas: settings.nats_replicas,
        ..Default::default()
    })
    .await?;
    let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(in_flight);
    let started = Instant::now();
    let mut sent = 0u64;
    for (subject, message) in messages.iter().cycle() {
        if started.elapsed() >= duration {
            break;
        }
        if pending.len() >= in_flight {
            if let Some(ack) = pending.pop_front() {
                ack.await?;
            }
        }
        let message = message.clone().message_id(uuid::Uuid::now_v7().to_string());
        pending.push_back(js.send_publish(subject.clone(), message).await?);
        sent += 1;
    }
    for ack in pending {
        ack.await?;
    }
    Ok(sent as f64 / started.elapsed().as_secs_f64())
}
