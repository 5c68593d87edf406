//! Load for the benchmark: a journal filled with generated cohort events (through the real
//! append path: hash chain and command ledger), cohort copies in the scenario vocabulary, and
//! the server process.

use fieldtrail_journal::{CommandMetadata, Journal};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Events per generated cohort stream (as `examples/journal_load.rs`).
const STREAM_LEN: i64 = 400;

/// The payload of event `version` of generated cohort `cohort` (the domain's shapes:
/// `cohort_opened`, then `session_scheduled` / `session_held` pairs, 12 learners).
pub fn event(cohort: &str, version: i64) -> (String, String, Value) {
    let session = format!("{cohort}-s{:04}", (version - 2) / 2);
    let kind = if version == 1 {
        "cohort_opened"
    } else if version % 2 == 0 {
        "session_scheduled"
    } else {
        "session_held"
    };
    let payload = match kind {
        "cohort_opened" => {
            json!({"cohort_id": cohort, "programme_id": "cisdcp", "title": format!("Promotion {cohort}"),
                                  "starts_on": "2025-09-14", "ends_on": "2026-06-30"})
        }
        "session_scheduled" => {
            json!({"cohort_id": cohort, "session_id": session, "module_id": "m1", "unit_id": "m1-1",
                   "kind": "course", "starts_at": "2025-09-15T09:00:00+02:00", "ends_at": "2025-09-15T17:00:00+02:00",
                   "half_days": 2, "facilitator": "facilitator:intervenant-a"})
        }
        _ => payload(cohort, version),
    };
    (kind.to_owned(), "1".to_owned(), payload)
}

/// A `session_held` payload (the commonest and largest generated event).
pub fn payload(cohort: &str, version: i64) -> Value {
    let learners: Vec<String> = (1..=12).map(|l| format!("{cohort}-l{l:02}")).collect();
    let session = format!("{cohort}-s{:04}", (version - 2) / 2);
    json!({"cohort_id": cohort, "session_id": session, "module_id": "m1", "half_days": 2,
           "present": learners[..10], "excused": learners[10..11], "absent": learners[11..]})
}

/// Appends `events` generated events with `writers` concurrent writers, `per_command` events
/// per append (one transaction each). Returns events per second.
///
/// # Errors
/// When the journal refuses an append.
pub async fn fill(
    journal: &Journal,
    events: u64,
    writers: u64,
    per_command: i64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let journal = journal.clone();
            let share = (events / writers + u64::from(w < events % writers)) as i64;
            tokio::spawn(async move {
                let mut written = 0;
                let mut stream = 0;
                while written < share {
                    let cohort = format!("gen-w{w}-c{stream}");
                    let mut version = 0;
                    while version < STREAM_LEN && written < share {
                        let n = per_command.min(STREAM_LEN - version).min(share - written);
                        let batch: Vec<_> = (version + 1..=version + n)
                            .map(|v| event(&cohort, v))
                            .collect();
                        let command_id = format!("{cohort}-v{}", version + 1);
                        let metadata = CommandMetadata {
                            reported_actor: None,
                            command_id: command_id.clone(),
                            command: "generated".to_owned(),
                            actor: "staff:bench".to_owned(),
                            occurred_at: chrono::DateTime::parse_from_rfc3339(
                                "2025-09-15T17:30:00+02:00",
                            )?,
                            correlation_id: command_id.clone(),
                            causation_id: command_id,
                            event_ids: Vec::new(),
                        };
                        journal
                            .append("cohort", &cohort, version, &batch, &metadata)
                            .await?;
                        version += n;
                        written += n;
                    }
                    stream += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// Hands out cohort copies never used before in the run.
#[derive(Debug)]
pub struct Copies {
    next: usize,
}

impl Default for Copies {
    fn default() -> Self {
        Self::new()
    }
}

impl Copies {
    /// Copies from number 1.
    pub fn new() -> Self {
        Self { next: 1 }
    }

    /// `count` fresh copies concatenated, in order (one client's work).
    pub fn take(&mut self, count: usize) -> Vec<String> {
        let mut lines = Vec::with_capacity(count * 203);
        for _ in 0..count {
            lines.extend(
                crate::cli::generate::cohort(self.next)
                    .lines()
                    .map(str::to_owned),
            );
            self.next += 1;
        }
        lines
    }
}

/// The `q`-quantile (0..=1) of `samples` (sorted in place), in the samples' unit.
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i.min(samples.len() - 1)]
}

/// The resident memory of process `pid` in MiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The real `fieldtrail serve` process on a free local port.
pub struct Server {
    /// The child process (killed on drop).
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Server {
    /// Starts `binary serve` on the scratch database and stream of `settings`, and waits until
    /// `/readyz` answers 200 (the projector and relay have caught up).
    ///
    /// # Errors
    /// When the process cannot start or is not ready within `limit`.
    pub async fn start(
        binary: &Path,
        settings: &crate::Settings,
        token: &str,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(binary)
            .arg("serve")
            .args(["--database-url", &settings.database_url])
            .args(["--nats-url", &settings.nats_url])
            .args(["--nats-stream", &settings.nats_stream])
            .args(["--subject-prefix", &settings.subject_prefix])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            // The same master key as this process, which wrote the scratch journal.
            .env(
                fieldtrail_journal::sealing::MASTER_KEY_ENV,
                fieldtrail_journal::sealing::MasterKey::configured()?
                    .to_hex()
                    .as_str(),
            )
            .env_remove("FIELDTRAIL_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http
                .get(format!("{}/readyz", server.base))
                .bearer_auth(token)
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "the server was not ready within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
