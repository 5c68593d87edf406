//! The reference consumer for dashboards (`fieldtrail consume`): a durable JetStream pull
//! consumer with explicit acks that keeps a small live view, the attendance rate per cohort
//! and module, and applies every event once.
//!
//! - **Once:** JetStream deduplicates re-publications only within its window (2 minutes). The
//!   consumer deduplicates beyond it by (stream, stream version): the relay publishes each
//!   stream in order, so an event whose stream version is not above the last one applied for
//!   its stream was applied already. That needs one integer per stream, not a set of ids.
//! - **Resumes:** the view and the per-stream versions are saved to a state file (written to a
//!   temporary file and renamed) after each batch, and only then are the batch's messages
//!   acknowledged. A crash in between re-delivers the batch, which the versions skip.
//! - **Personal fields** travel sealed (`"ft1:…"`, README "Personal data"): the view needs
//!   none. With `--show-personal`, the consumer prints each event that carries some, one JSON
//!   line (`{"position", "event_id", "event_type", "stream", "personal": [{"field",
//!   "value"}]}`), the values read in clear through the API (`--api URL` and a staff or
//!   auditor token in `FIELDTRAIL_TOKEN`: `GET /events/{type}/{id}/{version}`), or
//!   [`SEALED`] without a token or when the API refuses. An erased subject's values read
//!   `"[effacé]"`. They are printed and forgotten: neither the view nor the state file keeps
//!   them.

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attended and held learner-half-days of one module in one cohort.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Half-days of held sessions times the learners counted in them.
    pub held: i64,
    /// Of those, the half-days learners were present.
    pub attended: i64,
}

impl Rate {
    /// `attended / held` (0 when nothing was held).
    pub fn ratio(&self) -> f64 {
        if self.held == 0 {
            0.0
        } else {
            self.attended as f64 / self.held as f64
        }
    }
}

/// The consumer's state: the view, and what it needs to apply each event once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerState {
    /// Cohort → module → rate.
    pub attendance: BTreeMap<String, BTreeMap<String, Rate>>,
    /// `stream_type/stream_id` → last stream version applied.
    pub versions: BTreeMap<String, i64>,
    /// Held sessions: `cohort/session` → (module, half-days).
    sessions: BTreeMap<String, (String, i64)>,
    /// Events applied.
    pub applied: u64,
    /// Deliveries skipped as already applied.
    pub duplicates: u64,
}

impl ConsumerState {
    /// Applies one message body (the event envelope, see `events/schema/envelope.json`);
    /// returns whether it was new.
    pub fn apply(&mut self, body: &Value) -> bool {
        let stream = format!(
            "{}/{}",
            body["stream_type"].as_str().unwrap_or(""),
            body["stream_id"].as_str().unwrap_or("")
        );
        let version = body["stream_version"].as_i64().unwrap_or(0);
        if self
            .versions
            .get(&stream)
            .is_some_and(|last| version <= *last)
        {
            self.duplicates += 1;
            return false;
        }
        self.versions.insert(stream, version);
        self.applied += 1;
        let p = &body["payload"];
        let text = |k: &str| p[k].as_str().unwrap_or("").to_owned();
        let count = |k: &str| p[k].as_array().map_or(0, |a| a.len() as i64);
        match body["event_type"].as_str() {
            Some("session_held") => {
                let half_days = p["half_days"].as_i64().unwrap_or(0);
                let (cohort, module) = (text("cohort_id"), text("module_id"));
                self.sessions.insert(
                    format!("{cohort}/{}", text("session_id")),
                    (module.clone(), half_days),
                );
                let rate = self
                    .attendance
                    .entry(cohort)
                    .or_default()
                    .entry(module)
                    .or_default();
                rate.held += half_days * (count("present") + count("excused") + count("absent"));
                rate.attended += half_days * count("present");
            }
            Some("attendance_corrected") => {
                let cohort = text("cohort_id");
                if let Some((module, half_days)) = self
                    .sessions
                    .get(&format!("{cohort}/{}", text("session_id")))
                    .cloned()
                {
                    let rate = self
                        .attendance
                        .entry(cohort)
                        .or_default()
                        .entry(module)
                        .or_default();
                    let (was, is) = (p["previous_status"] == "present", p["status"] == "present");
                    rate.attended += half_days * (i64::from(is) - i64::from(was));
                }
            }
            _ => {}
        }
        true
    }

    /// Loads the state saved at `path` (an empty state if there is none).
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("cannot parse {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Saves the state to `path` atomically (temporary file, then rename).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// What the consumer prints for a personal value it cannot read in clear (no token, or the
/// API refused or could not answer).
pub const SEALED: &str = "[scellé]";

/// How the consumer shows the personal fields of the events it receives.
#[derive(Clone, Debug)]
pub struct ShowPersonal {
    /// The API's base URL (`http://127.0.0.1:8080`); `None`: values shown as [`SEALED`].
    pub api: Option<String>,
    /// A staff or auditor token (`ftk_…`); `None`: values shown as [`SEALED`].
    pub token: Option<String>,
}

/// Where and how the consumer reads.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// NATS URL (credentials in the URL are used).
    pub nats_url: String,
    /// The JetStream stream.
    pub stream: String,
    /// The durable consumer's name (its place in the stream is kept by the server).
    pub durable: String,
    /// The state file.
    pub state: PathBuf,
    /// Stop when a fetch returns nothing (for tests and batch use) instead of waiting.
    pub until_idle: bool,
    /// Print the personal fields of each event that has some (`None`: print nothing).
    pub show_personal: Option<ShowPersonal>,
}

/// Whether a message body's payload holds a sealed value anywhere.
fn has_sealed(value: &Value) -> bool {
    match value {
        Value::String(s) => s.starts_with(fieldtrail_journal::sealing::SEALED_PREFIX),
        Value::Array(items) => items.iter().any(has_sealed),
        Value::Object(map) => map.values().any(has_sealed),
        _ => false,
    }
}

/// The personal values of an envelope's payload, `[{"field", "value"}]` in classification
/// order (a sealed value shown as [`SEALED`]).
fn personal_values(body: &Value) -> Vec<Value> {
    let event_type = body["event_type"].as_str().unwrap_or("");
    let mut payload = body["payload"].clone();
    let mut out = Vec::new();
    for (path, _) in fieldtrail_domain::personal::personal_fields(event_type) {
        fieldtrail_domain::personal::visit_mut(&mut payload, path, &mut |v| {
            let value = if has_sealed(v) {
                Value::from(SEALED)
            } else {
                v.clone()
            };
            out.push(serde_json::json!({"field": path, "value": value}));
        });
    }
    out
}

/// The event of `body` read in clear through the API (`None` when it cannot be: the
/// reason is logged).
async fn in_clear(http: &reqwest::Client, show: &ShowPersonal, body: &Value) -> Option<Value> {
    let (Some(api), Some(token)) = (&show.api, &show.token) else {
        return None;
    };
    let url = format!(
        "{}/events/{}/{}/{}",
        api.trim_end_matches('/'),
        body["stream_type"].as_str().unwrap_or(""),
        body["stream_id"].as_str().unwrap_or(""),
        body["stream_version"].as_i64().unwrap_or(0)
    );
    let answer = match http.get(&url).bearer_auth(token).send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, %url, "the API could not be reached: values shown sealed");
            return None;
        }
    };
    let status = answer.status();
    if !status.is_success() {
        tracing::warn!(%status, %url, "the API refused the event: values shown sealed");
        return None;
    }
    let clear: Value = answer.json().await.ok()?;
    // The API's event must be the bus's (a journal restored elsewhere could differ).
    (clear["event_id"] == body["event_id"]).then_some(clear)
}

/// The line shown for an event with personal fields (`None` for one without).
async fn shown(http: &reqwest::Client, show: &ShowPersonal, body: &Value) -> Option<Value> {
    if !has_sealed(&body["payload"]) {
        return None;
    }
    let clear = in_clear(http, show, body).await;
    let source = clear.as_ref().unwrap_or(body);
    Some(serde_json::json!({
        "position": body["position"],
        "event_id": body["event_id"],
        "event_type": body["event_type"],
        "stream": format!(
            "{}/{}",
            body["stream_type"].as_str().unwrap_or(""),
            body["stream_id"].as_str().unwrap_or("")
        ),
        "personal": personal_values(source),
    }))
}

/// Runs the consumer, printing the personal lines ([`ConsumerConfig::show_personal`]) on
/// stdout; returns its state when it stops.
///
/// # Errors
/// When NATS or the state file cannot be used.
pub async fn run(config: &ConsumerConfig) -> anyhow::Result<ConsumerState> {
    run_with(config, &mut |line| crate::say!("{line}")).await
}

/// As [`run`], handing each personal line to `show` instead of printing it.
///
/// # Errors
/// When NATS or the state file cannot be used.
pub async fn run_with(
    config: &ConsumerConfig,
    show: &mut (dyn FnMut(Value) + Send),
) -> anyhow::Result<ConsumerState> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let client = crate::workers::relay::connect(&config.nats_url).await?;
    let js = jetstream::new(client);
    let stream = js
        .get_stream(&config.stream)
        .await
        .with_context(|| format!("no JetStream stream {}", config.stream))?;
    let consumer = stream
        .get_or_create_consumer(
            &config.durable,
            pull::Config {
                durable_name: Some(config.durable.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("cannot create the durable consumer {}", config.durable))?;
    let mut state = ConsumerState::load(&config.state)?;
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(256)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .context("fetch")?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
            match serde_json::from_slice::<Value>(&message.payload) {
                Ok(body) => {
                    let new = state.apply(&body);
                    if let (true, Some(personal)) = (new, &config.show_personal) {
                        if let Some(line) = shown(&http, personal, &body).await {
                            show(line);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unreadable message skipped"),
            }
            messages.push(message);
        }
        if messages.is_empty() {
            if config.until_idle {
                return Ok(state);
            }
            continue;
        }
        // Save first, then acknowledge: a crash in between re-delivers, and the versions skip.
        state.save(&config.state)?;
        for message in messages {
            message
                .ack_with(AckKind::Ack)
                .await
                .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held(version: i64, present: &[&str], absent: &[&str]) -> Value {
        json!({"stream_type": "cohort", "stream_id": "c", "stream_version": version, "event_type": "session_held",
               "payload": {"cohort_id": "c", "session_id": "s1", "module_id": "m1", "half_days": 2,
                           "present": present, "excused": [], "absent": absent}})
    }

    #[test]
    fn each_event_counts_once_and_corrections_move_attendance() {
        let mut state = ConsumerState::default();
        assert!(state.apply(&held(1, &["a", "b"], &["c"])));
        assert!(
            !state.apply(&held(1, &["a", "b"], &["c"])),
            "a re-delivery is skipped"
        );
        let correction = json!({"stream_type": "cohort", "stream_id": "c", "stream_version": 2, "event_type": "attendance_corrected",
            "payload": {"cohort_id": "c", "session_id": "s1", "learner_id": "c", "previous_status": "absent", "status": "present"}});
        assert!(state.apply(&correction));
        assert_eq!(
            state.attendance["c"]["m1"],
            Rate {
                held: 6,
                attended: 6
            }
        );
        assert_eq!((state.applied, state.duplicates), (2, 1));
    }
}
