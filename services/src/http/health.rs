//! How far behind the journal its readers are, and whether a server is ready for traffic.
//!
//! - [`snapshot`]: the journal head and, for the projector (which maintains every read model)
//!   and the relay, their checkpoint and lag, in events and in seconds (the database clock
//!   minus the `recorded_at` of the oldest event after the checkpoint; 0 when caught up).
//! - [`readiness`]: PostgreSQL answers, NATS is connected (unless the relay is disabled), each
//!   read model's lag is within the configured bounds, and the server is not shutting down.
//!   `GET /readyz` ([`readyz`]) answers 200 or 503 with a JSON body naming what is wrong;
//!   `fieldtrail status` prints the same ([`crate::cli::status`]).

use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use fieldtrail_journal::{checkpoint, Journal};
use fieldtrail_projections::DocKind;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The read models, all maintained by the one projector (they share its checkpoint).
pub const READ_MODELS: [DocKind; 3] = [DocKind::Timetable, DocKind::Transcript, DocKind::History];

/// How long a readiness or metrics probe waits for PostgreSQL.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A reader's place in the journal and how far behind the head it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Lag {
    /// The checkpoint's name (`projector`, `relay:<stream>`).
    pub checkpoint: String,
    /// Global position of the last event it has handled (0: none).
    pub position: i64,
    /// Committed events after its checkpoint.
    pub lag_events: i64,
    /// Seconds since the oldest of those was recorded (0 when there is none).
    pub lag_seconds: f64,
}

/// The journal and its readers at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// The highest global position committed.
    pub head: i64,
    /// The projector (every read model).
    pub projector: Lag,
    /// The relay of the configured JetStream stream.
    pub relay: Lag,
}

/// The lag of the reader whose checkpoint is `name`.
///
/// # Errors
/// When PostgreSQL cannot be read.
pub async fn lag<C: GenericClient>(client: &C, name: &str) -> anyhow::Result<Lag> {
    let cursor = checkpoint::load(client, name).await?;
    let row = client
        .query_one(
            "SELECT count(*),
                    coalesce(greatest(extract(epoch FROM clock_timestamp() - min(recorded_at))::float8, 0), 0)
               FROM events
              WHERE (tx_id, position) > ($1::text::xid8, $2)",
            &[&cursor.tx_id.to_string(), &cursor.position],
        )
        .await?;
    Ok(Lag {
        checkpoint: name.to_owned(),
        position: cursor.position,
        lag_events: row.get(0),
        lag_seconds: row.get(1),
    })
}

/// The lag of the reader whose checkpoint is `name`, on any backend: the events after the
/// checkpoint are counted by position (exact on the embedded backend, whose positions have no
/// gaps) and the age is that of the first of them.
///
/// # Errors
/// When the journal cannot be read.
pub async fn lag_of(journal: &Journal, head: i64, name: &str) -> anyhow::Result<Lag> {
    let cursor = journal.checkpoint(name).await?;
    let next = journal.read(cursor, 1).await?;
    let lag_seconds = next.first().map_or(0.0, |e| {
        ((chrono::Utc::now() - e.recorded_at)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6)
            .max(0.0)
    });
    Ok(Lag {
        checkpoint: name.to_owned(),
        position: cursor.position,
        lag_events: if next.is_empty() {
            0
        } else {
            (head - cursor.position).max(1)
        },
        lag_seconds,
    })
}

/// The journal head and the projector's and relay's (`stream`) lags (on PostgreSQL, on one
/// connection).
///
/// # Errors
/// When the journal cannot be reached or read (within [`PROBE_TIMEOUT`]).
pub async fn snapshot(journal: &Journal, stream: &str) -> anyhow::Result<Snapshot> {
    let Some(pool) = journal.postgres() else {
        let read = async {
            let head = journal.head().await?;
            anyhow::Ok(Snapshot {
                head,
                projector: lag_of(journal, head, checkpoint::PROJECTOR).await?,
                relay: Lag {
                    checkpoint: checkpoint::relay(stream),
                    ..Lag::default()
                },
            })
        };
        return tokio::time::timeout(PROBE_TIMEOUT, read)
            .await
            .map_err(|_| anyhow::anyhow!("the journal did not answer within {PROBE_TIMEOUT:?}"))?;
    };
    let read = async {
        let client = pool.get().await?;
        let head: i64 = client
            .query_one("SELECT coalesce(max(position), 0) FROM events", &[])
            .await?
            .get(0);
        let projector = lag(&client, checkpoint::PROJECTOR).await?;
        let relay = lag(&client, &checkpoint::relay(stream)).await?;
        anyhow::Ok(Snapshot {
            head,
            projector,
            relay,
        })
    };
    tokio::time::timeout(PROBE_TIMEOUT, read)
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL did not answer within {PROBE_TIMEOUT:?}"))?
}

/// What readiness is judged against.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Largest acceptable lag of a read model, in events.
    pub max_lag_events: u64,
    /// Largest acceptable lag of a read model, in seconds.
    pub max_lag_secs: u64,
}

/// What `/readyz` and `/metrics` need beyond the API's state.
#[derive(Clone)]
pub struct Ops {
    /// The JetStream stream the relay publishes to (its checkpoint is `relay:<stream>`).
    pub stream: String,
    /// The NATS URL, without password (for messages).
    pub nats_shown: String,
    /// Whether this server runs the relay (when not, NATS is not asked for).
    pub relay_enabled: bool,
    /// The readiness bounds.
    pub bounds: Bounds,
    /// Set when a shutdown has begun: `/readyz` then fails.
    pub draining: Arc<AtomicBool>,
    /// The Prometheus handle, when this process's metrics recorder is ours.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Ops {
    /// The operations state for a server run with `settings`.
    pub fn new(settings: &crate::Settings) -> Self {
        Self {
            stream: settings.nats_stream.clone(),
            nats_shown: crate::config::file::hide_secrets(&settings.nats_url),
            relay_enabled: settings.bus().is_some(),
            bounds: Bounds {
                max_lag_events: settings.ready_max_lag_events,
                max_lag_secs: settings.ready_max_lag_secs,
            },
            draining: Arc::new(AtomicBool::new(false)),
            metrics: crate::http::metrics::install(),
        }
    }
}

/// The NATS connection's state, as a word.
pub fn nats_state(client: &async_nats::Client) -> &'static str {
    match client.connection_state() {
        async_nats::connection::State::Connected => "connected",
        async_nats::connection::State::Disconnected => "disconnected",
        async_nats::connection::State::Pending => "connecting",
    }
}

/// Judges readiness: `(ready, body)`. `nats` is `None` when the relay is disabled;
/// `Some(Err(message))` when NATS could not be asked (`fieldtrail status`).
pub fn judge(
    postgres: &Result<Snapshot, String>,
    nats: Option<Result<&'static str, String>>,
    nats_shown: &str,
    bounds: &Bounds,
    draining: bool,
) -> (bool, Value) {
    let mut problems = Vec::<String>::new();
    if draining {
        problems.push("shutting down: this server no longer takes traffic".to_owned());
    }
    let postgres_check = match postgres {
        Ok(_) => json!({"ok": true}),
        Err(e) => {
            problems.push(format!("postgres: unreachable: {e}"));
            json!({"ok": false, "error": e})
        }
    };
    let nats_check = match &nats {
        None => {
            json!({"ok": true, "state": "disabled", "note": "the relay is disabled in this server"})
        }
        Some(Ok("connected")) => json!({"ok": true, "state": "connected", "url": nats_shown}),
        Some(Ok(state)) => {
            problems.push(format!(
                "nats: not connected to {nats_shown} (state: {state}); events are not being published"
            ));
            json!({"ok": false, "state": state, "url": nats_shown})
        }
        Some(Err(e)) => {
            problems.push(format!("nats: unreachable at {nats_shown}: {e}"));
            json!({"ok": false, "state": "unreachable", "url": nats_shown, "error": e})
        }
    };
    let mut read_models = serde_json::Map::new();
    let mut relay = Value::Null;
    let mut head = Value::Null;
    if let Ok(snapshot) = postgres {
        head = json!(snapshot.head);
        let p = &snapshot.projector;
        let events_ok = u64::try_from(p.lag_events).unwrap_or(0) <= bounds.max_lag_events;
        // Compare whole seconds so that the bound reads as configured.
        let secs_ok = p.lag_seconds <= bounds.max_lag_secs as f64;
        for kind in READ_MODELS {
            read_models.insert(
                kind.as_str().to_owned(),
                json!({
                    "ok": events_ok && secs_ok,
                    "position": p.position,
                    "lag_events": p.lag_events,
                    "lag_seconds": p.lag_seconds,
                }),
            );
        }
        if !(events_ok && secs_ok) {
            problems.push(format!(
                "read models (timetable, transcript, history): {} events and {:.1} s behind the journal \
                 (bounds: {} events, {} s)",
                p.lag_events, p.lag_seconds, bounds.max_lag_events, bounds.max_lag_secs
            ));
        }
        let r = &snapshot.relay;
        relay = json!({"position": r.position, "lag_events": r.lag_events, "lag_seconds": r.lag_seconds});
    }
    let ready = problems.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "problems": problems,
        "journal_head": head,
        "checks": {
            "postgres": postgres_check,
            "nats": nats_check,
            "read_models": read_models,
        },
        "relay": relay,
    });
    (ready, body)
}

/// `GET /readyz`: 200 when ready, else 503; the body says what is wrong.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ops = &state.ops;
    let postgres = snapshot(&state.journal, &ops.stream)
        .await
        .map_err(|e| format!("{e:#}"));
    let nats = if ops.relay_enabled {
        Some(match &state.nats {
            Some(client) => Ok(nats_state(client)),
            None => Err("no connection".to_owned()),
        })
    } else {
        None
    };
    let draining = ops.draining.load(Ordering::SeqCst);
    let (ready, body) = judge(&postgres, nats, &ops.nats_shown, &ops.bounds, draining);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            max_lag_events: 10,
            max_lag_secs: 5,
        }
    }

    #[test]
    fn readiness_names_what_is_wrong() {
        let caught_up = Ok(Snapshot {
            head: 7,
            ..Snapshot::default()
        });
        let (ready, body) = judge(
            &caught_up,
            Some(Ok("connected")),
            "nats://h:4222",
            &bounds(),
            false,
        );
        assert!(ready, "{body}");
        assert_eq!(body["checks"]["read_models"]["timetable"]["lag_events"], 0);

        let (ready, body) = judge(
            &caught_up,
            Some(Ok("disconnected")),
            "nats://h:4222",
            &bounds(),
            false,
        );
        assert!(!ready);
        assert!(body["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("nats: not connected to nats://h:4222"));

        let (ready, _) = judge(&caught_up, None, "", &bounds(), false);
        assert!(ready, "the relay disabled: NATS is not asked for");

        let behind = Ok(Snapshot {
            projector: Lag {
                lag_events: 11,
                ..Lag::default()
            },
            ..Snapshot::default()
        });
        let (ready, body) = judge(&behind, None, "", &bounds(), false);
        assert!(!ready);
        assert_eq!(body["checks"]["read_models"]["history"]["ok"], false);

        let (ready, body) = judge(&Err("refused".to_owned()), None, "", &bounds(), true);
        assert!(!ready);
        assert_eq!(body["problems"].as_array().unwrap().len(), 2);
    }
}
