//! The relay: publishes every committed event to NATS JetStream, in global-log order.
//!
//! Subject: `<prefix>.<stream type>.<stream id>.<event type>`; `Nats-Msg-Id` = event id, so a
//! re-publish after a crash is acknowledged as a duplicate by the server (within its
//! duplicate window; consumers deduplicate by event id beyond it). The checkpoint advances
//! only after JetStream acknowledged every message of the batch (DESIGN.md decision 5).

use crate::config::Settings;
use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use fieldtrail_journal::checkpoint;
use fieldtrail_journal::{CommitOutcome, Cursor, DocumentCommit, Journal, StoredEvent};
use std::time::Duration;

/// Acknowledgements between two checkpoint writes.
pub const BATCH: i64 = 256;

/// Events read from the journal per page (the next page is read while one is published).
pub const PAGE: i64 = 4 * BATCH;

/// Publishes in flight at most (sent, acknowledgement not yet collected).
pub const WINDOW: usize = 1024;

/// Least time between two checkpoint writes when the relay runs dry (caught up) with fewer
/// than [`BATCH`] acknowledgements since the last write: at one command at a time the relay
/// would otherwise write its checkpoint once per event. A caught-up relay writes what is left
/// at its next run after that (the loop runs at least every
/// [`super::POLL_INTERVAL`]), at [`Relay::flush`] and at the end of [`Relay::catch_up`].
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// Splits `nats://user:password@host:port` into the address without credentials and the
/// credentials (async-nats does not read them from the URL).
pub fn split_credentials(nats_url: &str) -> (String, Option<(String, String)>) {
    let (scheme, rest) = nats_url.split_once("://").unwrap_or(("nats", nats_url));
    match rest.rsplit_once('@') {
        Some((creds, host)) => {
            let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
            (
                format!("{scheme}://{host}"),
                Some((user.to_owned(), password.to_owned())),
            )
        }
        None => (nats_url.to_owned(), None),
    }
}

/// Connects to NATS (with the user and password of the URL, if any), naming the URL (without
/// its password) when it cannot.
///
/// # Errors
/// A one-line error naming the URL.
pub async fn connect(nats_url: &str) -> anyhow::Result<async_nats::Client> {
    let (address, credentials) = split_credentials(nats_url);
    let shown = match &credentials {
        Some((user, _)) => address.replacen("://", &format!("://{user}:***@"), 1),
        None => address.clone(),
    };
    let options = match credentials {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        None => async_nats::ConnectOptions::new(),
    }
    .connection_timeout(Duration::from_secs(5));
    let client = tokio::time::timeout(Duration::from_secs(5), options.connect(address.as_str()))
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach NATS at {shown}: timed out"))?
        .with_context(|| format!("cannot reach NATS at {shown}"))?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::split_credentials;

    #[test]
    fn credentials_come_out_of_the_url() {
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_owned(), None)
        );
        assert_eq!(
            split_credentials("nats://relay:s3cr@t@host:4222"),
            (
                "nats://host:4222".to_owned(),
                Some(("relay".to_owned(), "s3cr@t".to_owned()))
            )
        );
    }
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
        duplicate_window: Duration::from_secs(settings.dedup_window_secs),
        num_replicas: settings.nats_replicas,
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

/// The CloudEvents 1.0 binary-mode attributes (NATS protocol binding: headers named `ce-…`)
/// and fieldtrail's own headers, on a message carrying `event`.
///
/// | header | value |
/// |---|---|
/// | `Nats-Msg-Id`, `ce-id` | the event id |
/// | `ce-specversion` | `1.0` |
/// | `ce-source` | `/fieldtrail/<prefix>` (the publishing deployment) |
/// | `ce-type` | `org.fieldtrail.<event type>.v<version>` |
/// | `ce-time` | `occurred_at`, RFC 3339 UTC, microseconds |
/// | `ce-subject` | `<stream type>/<stream id>` |
/// | `ce-datacontenttype` | `application/json` |
/// | `Fieldtrail-Recorded-At` | `recorded_at`, RFC 3339 UTC, microseconds |
/// | `Fieldtrail-Position` | the global position |
/// | `Fieldtrail-Stream-Version` | the stream version |
/// | `Fieldtrail-Event-Type`, `Fieldtrail-Event-Version` | as in the body |
pub fn headers(message: PublishMessage, event: &StoredEvent, prefix: &str) -> PublishMessage {
    with_headers(message, event, &Stamps::of(event), &source(prefix))
}

/// `ce-source` of the deployment publishing under `prefix`: `/fieldtrail/<prefix>`.
fn source(prefix: &str) -> String {
    format!("/fieldtrail/{prefix}")
}

/// The strings of one event that its headers and its body both carry, formatted once (the
/// relay formatted each instant twice per event, and the event id twice in the headers).
struct Stamps {
    id: String,
    occurred_at: String,
    recorded_at: String,
}

impl Stamps {
    fn of(event: &StoredEvent) -> Self {
        let micros = |t: &chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        Self {
            id: event.event_id.to_string(),
            occurred_at: micros(&event.occurred_at),
            recorded_at: micros(&event.recorded_at),
        }
    }
}

/// The header names, built once (a name given as text is validated and looked up on every
/// message).
mod names {
    use async_nats::HeaderName;
    pub const SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
    pub const ID: HeaderName = HeaderName::from_static("ce-id");
    pub const SOURCE: HeaderName = HeaderName::from_static("ce-source");
    pub const TYPE: HeaderName = HeaderName::from_static("ce-type");
    pub const TIME: HeaderName = HeaderName::from_static("ce-time");
    pub const SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
    pub const CONTENT_TYPE: HeaderName = HeaderName::from_static("ce-datacontenttype");
    pub const RECORDED_AT: HeaderName = HeaderName::from_static("Fieldtrail-Recorded-At");
    pub const EVENT_TYPE: HeaderName = HeaderName::from_static("Fieldtrail-Event-Type");
    pub const EVENT_VERSION: HeaderName = HeaderName::from_static("Fieldtrail-Event-Version");
    pub const POSITION: HeaderName = HeaderName::from_static("Fieldtrail-Position");
    pub const STREAM_VERSION: HeaderName = HeaderName::from_static("Fieldtrail-Stream-Version");
}

fn with_headers(
    message: PublishMessage,
    event: &StoredEvent,
    stamps: &Stamps,
    source: &str,
) -> PublishMessage {
    message
        .message_id(stamps.id.as_str())
        .header(names::SPECVERSION, "1.0")
        .header(names::ID, stamps.id.as_str())
        .header(names::SOURCE, source)
        .header(
            names::TYPE,
            format!(
                "org.fieldtrail.{}.v{}",
                event.event_type, event.event_version
            ),
        )
        .header(names::TIME, stamps.occurred_at.as_str())
        .header(
            names::SUBJECT,
            format!("{}/{}", event.stream_type, event.stream_id),
        )
        .header(names::CONTENT_TYPE, "application/json")
        .header(names::RECORDED_AT, stamps.recorded_at.as_str())
        .header(names::EVENT_TYPE, event.event_type.as_str())
        .header(names::EVENT_VERSION, event.event_version.as_str())
        .header(names::POSITION, event.position.to_string())
        .header(names::STREAM_VERSION, event.stream_version.to_string())
}

/// The message body: the event envelope as JSON (keys in alphabetical order; instants RFC 3339
/// UTC with microseconds).
pub fn body(event: &StoredEvent) -> serde_json::Value {
    serde_json::to_value(Envelope::with(event, &Stamps::of(event)))
        .unwrap_or(serde_json::Value::Null)
}

/// The envelope serialized straight from the stored event (no copy of the payload): what
/// [`body`] gives, as bytes.
///
/// # Errors
/// When the payload cannot be serialized (it came out of the journal as JSON: never).
pub fn body_bytes(event: &StoredEvent) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Envelope::with(event, &Stamps::of(event)))
}

/// The envelope's fields, borrowed from the stored event, in the order of the keys.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    actor: &'a str,
    causation_id: &'a str,
    command_id: &'a str,
    correlation_id: &'a str,
    event_id: uuid::Uuid,
    event_type: &'a str,
    event_version: &'a str,
    occurred_at: &'a str,
    payload: &'a serde_json::Value,
    position: i64,
    recorded_at: &'a str,
    reported_actor: Option<&'a str>,
    stream_id: &'a str,
    stream_type: &'a str,
    stream_version: i64,
}

impl<'a> Envelope<'a> {
    fn with(event: &'a StoredEvent, stamps: &'a Stamps) -> Self {
        Self {
            actor: &event.actor,
            causation_id: &event.causation_id,
            command_id: &event.command_id,
            correlation_id: &event.correlation_id,
            event_id: event.event_id,
            event_type: &event.event_type,
            event_version: &event.event_version,
            occurred_at: &stamps.occurred_at,
            payload: &event.payload,
            position: event.position,
            recorded_at: &stamps.recorded_at,
            reported_actor: event.reported_actor.as_deref(),
            stream_id: &event.stream_id,
            stream_type: &event.stream_type,
            stream_version: event.stream_version,
        }
    }
}

/// The message the relay publishes for `event` under `prefix`: its envelope ([`body_bytes`]),
/// or a [`reference`] when it is too large for one NATS message (`max_payload` bytes, less
/// [`HEADER_ALLOWANCE`]), with the [`headers`].
///
/// # Errors
/// When the body cannot be serialized (never: it came out of the journal as JSON).
pub fn message(
    event: &StoredEvent,
    prefix: &str,
    max_payload: usize,
) -> anyhow::Result<PublishMessage> {
    message_from(event, &source(prefix), max_payload)
}

/// As [`message`], with the `ce-source` of the prefix already built.
fn message_from(
    event: &StoredEvent,
    source: &str,
    max_payload: usize,
) -> anyhow::Result<PublishMessage> {
    let stamps = Stamps::of(event);
    let mut bytes = serde_json::to_vec(&Envelope::with(event, &stamps))?;
    if bytes.len() + HEADER_ALLOWANCE > max_payload {
        // Too large for one NATS message: publish a reference; the payload stays in the
        // journal.
        tracing::warn!(
            position = event.position,
            bytes = bytes.len(),
            max_payload,
            "event too large for NATS; publishing a reference"
        );
        bytes = serde_json::to_vec(&reference(event, bytes.len(), max_payload))?;
    }
    Ok(with_headers(
        PublishMessage::build().payload(bytes.into()),
        event,
        &stamps,
        source,
    ))
}

/// Room left for headers and subject when checking a body against the server's `max_payload`.
pub const HEADER_ALLOWANCE: usize = 1024;

/// What the relay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Events published and acknowledged.
    pub events: usize,
    /// Of those, how many JetStream acknowledged as duplicates (already stored under that
    /// `Nats-Msg-Id`).
    pub duplicates: usize,
}

/// The body published instead of an event too large for one NATS message: the envelope
/// without `payload`, and `payload_omitted` saying why.
pub fn reference(event: &StoredEvent, bytes: usize, max_payload: usize) -> serde_json::Value {
    let mut body = body(event);
    if let Some(map) = body.as_object_mut() {
        map.remove("payload");
        map.insert(
            "payload_omitted".to_owned(),
            serde_json::json!({"bytes": bytes, "max_payload": max_payload, "reason": "larger than the NATS server's max_payload; read it from the journal"}),
        );
    }
    body
}

/// Publishes the journal to one JetStream stream.
pub struct Relay {
    log: Journal,
    js: jetstream::Context,
    prefix: String,
    /// `ce-source` of `prefix`, built once.
    source: String,
    checkpoint: String,
    progress: std::sync::Mutex<Progress>,
}

/// What the relay knows between runs: the checkpoint it stored last, the last event
/// acknowledged after it (published, checkpoint not yet written) and when it last wrote.
#[derive(Clone, Copy, Default)]
struct Progress {
    committed: Option<Cursor>,
    acked: Option<(Cursor, i64)>,
    written_at: Option<std::time::Instant>,
}

impl Progress {
    fn due(&self) -> bool {
        self.written_at
            .is_none_or(|at| at.elapsed() >= CHECKPOINT_INTERVAL)
    }
}

impl Relay {
    /// A relay for `settings`, over `journal` (either backend), publishing through `client`.
    pub fn new(journal: Journal, client: async_nats::Client, settings: &Settings) -> Self {
        Self {
            log: journal,
            js: jetstream::new(client),
            prefix: settings.subject_prefix.clone(),
            source: source(&settings.subject_prefix),
            checkpoint: checkpoint::relay(&settings.nats_stream),
            progress: std::sync::Mutex::default(),
        }
    }

    fn progress(&self) -> Progress {
        self.progress.lock().map(|p| *p).unwrap_or_default()
    }

    fn set_progress(&self, progress: Progress) {
        if let Ok(mut p) = self.progress.lock() {
            *p = progress;
        }
    }

    /// Forgets what this relay knew (another process may lead now): the next run starts
    /// from the stored checkpoint.
    pub fn forget(&self) {
        self.set_progress(Progress::default());
    }

    /// Writes the checkpoint of the events acknowledged since the last write, if any.
    ///
    /// # Errors
    /// When the journal fails.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let mut progress = self.progress();
        if let (Some(committed), Some((cursor, position))) = (progress.committed, progress.acked) {
            if cursor != committed {
                if self.advance(committed, cursor, position).await? {
                    progress.committed = Some(cursor);
                    progress.written_at = Some(std::time::Instant::now());
                    self.set_progress(progress);
                } else {
                    self.forget();
                }
            }
        }
        Ok(())
    }

    /// The cursor of the last event JetStream acknowledged.
    ///
    /// # Errors
    /// When PostgreSQL cannot be read.
    pub async fn position(&self) -> anyhow::Result<Cursor> {
        Ok(self.log.checkpoint(&self.checkpoint).await?)
    }

    /// Publishes everything after the last acknowledged event that is readable now,
    /// pipelined: pages of [`PAGE`] events are read (the next while one is published) and sent while the
    /// acknowledgements of earlier ones are still on their way (up to [`WINDOW`] in flight);
    /// acknowledgements are collected in publication order and the checkpoint advanced to the
    /// last contiguous acknowledged event every [`BATCH`] acknowledgements, and when the
    /// pipeline runs dry if [`CHECKPOINT_INTERVAL`] has passed since the last write (a run
    /// that finds nothing new writes what is left on the same condition). A failed publish or
    /// acknowledgement stops it with the checkpoint at or before the last event acknowledged
    /// before it; the next run re-publishes from there (JetStream deduplicates by
    /// `Nats-Msg-Id`).
    ///
    /// # Errors
    /// When the journal or NATS fails.
    pub async fn run_once(&self) -> anyhow::Result<Published> {
        let mut progress = self.progress();
        let committed = match progress.committed {
            Some(c) => c,
            None => {
                self.forget();
                self.position().await?
            }
        };
        progress.committed = Some(committed);
        let start = progress.acked.map_or(committed, |(cursor, _)| cursor);
        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<(Cursor, i64, jetstream::context::PublishAckFuture)>(
                WINDOW,
            );
        let publisher = async move {
            let max_payload = self.js.client().server_info().max_payload;
            // As stored: personal fields stay sealed on the bus (JetStream keeps messages
            // beyond an erasure; the key table does not). The next page is read while this
            // one is published.
            let mut pages = self.log.read_ahead(start, PAGE, true);
            while let Some(events) = pages.recv().await.transpose()? {
                for event in &events {
                    let ack = self
                        .js
                        .send_publish(
                            subject(&self.prefix, event),
                            self.message(event, max_payload)?,
                        )
                        .await?;
                    if sender
                        .send((Cursor::after(event), event.position, ack))
                        .await
                        .is_err()
                    {
                        // The collector stopped (an acknowledgement failed): so do we.
                        return Ok(());
                    }
                }
            }
            anyhow::Ok(())
        };
        let collector = async {
            let mut published = Published::default();
            let mut since = 0;
            while let Some((cursor, position, ack)) = receiver.recv().await {
                let ack = match ack.await {
                    Ok(ack) => ack,
                    Err(e) => {
                        // Keep what was acknowledged before it: the next run resumes there.
                        self.set_progress(progress);
                        return Err(e.into());
                    }
                };
                if ack.duplicate {
                    published.duplicates += 1;
                }
                published.events += 1;
                progress.acked = Some((cursor, position));
                since += 1;
                if since >= BATCH || (receiver.is_empty() && progress.due()) {
                    let from = progress.committed.unwrap_or_default();
                    if !self.advance(from, cursor, position).await? {
                        self.forget();
                        return Ok(published);
                    }
                    progress.committed = Some(cursor);
                    progress.written_at = Some(std::time::Instant::now());
                    since = 0;
                }
            }
            self.set_progress(progress);
            if published.events == 0 && progress.due() {
                self.flush().await?;
            }
            anyhow::Ok(published)
        };
        let (published, collected) = tokio::join!(publisher, collector);
        let collected = collected?;
        published?;
        Ok(collected)
    }

    /// The message of `event` ([`message`] under this relay's prefix).
    fn message(&self, event: &StoredEvent, max_payload: usize) -> anyhow::Result<PublishMessage> {
        message_from(event, &self.source, max_payload)
    }

    /// Moves the checkpoint from `from` to `to` (the event at `position`); `false` when
    /// another relay of this stream moved it first (leadership changed hands: its checkpoint
    /// stands, and this run stops).
    async fn advance(&self, from: Cursor, to: Cursor, position: i64) -> anyhow::Result<bool> {
        // Only the checkpoint: no documents.
        let outcome = self
            .log
            .commit_documents(DocumentCommit {
                checkpoint: self.checkpoint.clone(),
                expected: Some(from),
                cursor: to,
                documents: Vec::new(),
                position,
            })
            .await?;
        Ok(matches!(outcome, CommitOutcome::Written))
    }

    /// Publishes until nothing is left.
    ///
    /// # Errors
    /// As [`Relay::run_once`].
    pub async fn catch_up(&self) -> anyhow::Result<Published> {
        let mut total = Published::default();
        loop {
            let batch = self.run_once().await?;
            if batch.events == 0 {
                self.flush().await?;
                return Ok(total);
            }
            total.events += batch.events;
            total.duplicates += batch.duplicates;
        }
    }
}
