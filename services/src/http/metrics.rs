//! Prometheus metrics (the `metrics` facade, rendered by `metrics-exporter-prometheus`) on
//! `GET /metrics`.
//!
//! Counters and histograms are recorded where things happen (the command handler, the
//! journal's append, the projector and relay loops of `serve`); the gauges of positions, lags
//! and the connection pool are read from the database when `/metrics` is scraped, so they are
//! exact at that moment. Every label value comes from a fixed list: command names from
//! [`COMMAND_NAMES`] (else `unknown`), outcomes `applied`, `duplicate`, `rejected:<code>`,
//! `error`, read models `timetable|transcript|history`, the relay's JetStream stream name
//! (configuration), roles `projector|relay`. No id ever appears in a label.
//!
//! Without an installed recorder (the CLI's jobs, tests that embed the library) every
//! recording is a no-op.

use crate::handler::{HandleError, Outcome};
use crate::http::health;
use crate::http::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use fieldtrail_domain::command::COMMAND_NAMES;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

/// Commands judged, by `command` and `outcome`.
pub const COMMANDS_TOTAL: &str = "fieldtrail_commands_total";
/// Time to judge a command (ledger look-up, decision, append, retries), by `command`.
pub const COMMAND_SECONDS: &str = "fieldtrail_command_duration_seconds";
/// Events appended per command (one append, one transaction). Recorded by the journal.
pub const APPEND_BATCH: &str = "fieldtrail_append_batch_events";
/// Events folded and stored per projector batch.
pub const PROJECTOR_BATCH: &str = "fieldtrail_projector_batch_events";
/// Projector batches that failed (PostgreSQL away, an unreadable event).
pub const PROJECTOR_ERRORS: &str = "fieldtrail_projector_errors_total";
/// The highest global position committed to the journal.
pub const JOURNAL_HEAD: &str = "fieldtrail_journal_head_position";
/// A read model's position (the projector's checkpoint), by `read_model`.
pub const READ_MODEL_POSITION: &str = "fieldtrail_read_model_position";
/// Events committed after a read model's position, by `read_model`.
pub const READ_MODEL_LAG_EVENTS: &str = "fieldtrail_read_model_lag_events";
/// Age of the oldest event a read model has not applied (0 when caught up), by `read_model`.
pub const READ_MODEL_LAG_SECONDS: &str = "fieldtrail_read_model_lag_seconds";
/// The relay's position (last event acknowledged by JetStream), by `stream`.
pub const RELAY_POSITION: &str = "fieldtrail_relay_position";
/// Events committed after the relay's position, by `stream`.
pub const RELAY_LAG_EVENTS: &str = "fieldtrail_relay_lag_events";
/// Age of the oldest event the relay has not published (0 when caught up), by `stream`.
pub const RELAY_LAG_SECONDS: &str = "fieldtrail_relay_lag_seconds";
/// Events published and acknowledged by JetStream, by `stream`.
pub const RELAY_PUBLISHED: &str = "fieldtrail_relay_published_total";
/// Publishes JetStream acknowledged as duplicates (already stored under that event id).
pub const RELAY_DUPLICATES: &str = "fieldtrail_relay_duplicate_acks_total";
/// Relay batches that failed (NATS or PostgreSQL away); the batch is retried.
pub const RELAY_ERRORS: &str = "fieldtrail_relay_publish_errors_total";
/// Commands refused by the reservation table (a rule across aggregates that their aggregate's
/// own check passed: a race between servers), by claim kind.
pub const RESERVATION_REFUSALS: &str = "fieldtrail_reservation_refusals_total";
/// Events per relay batch.
pub const RELAY_BATCH: &str = "fieldtrail_relay_batch_events";
/// Connections the pool may open.
pub const POOL_MAX: &str = "fieldtrail_db_pool_max_connections";
/// Connections the pool holds (idle and in use).
pub const POOL_SIZE: &str = "fieldtrail_db_pool_connections";
/// Idle connections in the pool.
pub const POOL_AVAILABLE: &str = "fieldtrail_db_pool_available_connections";
/// Requests waiting for a connection.
pub const POOL_WAITING: &str = "fieldtrail_db_pool_waiting";
/// 1 when this process runs the `role` (`projector`, `relay`), 0 on standby.
pub const LEADER: &str = "fieldtrail_leader";
/// 1 when the last scrape could read PostgreSQL, else 0 (the lag gauges are then stale).
pub const POSTGRES_UP: &str = "fieldtrail_postgres_up";
/// 1 when the NATS connection is up, 0 when not (absent when the relay is disabled).
pub const NATS_UP: &str = "fieldtrail_nats_up";
/// Always 1, labelled with the `version`.
pub const BUILD_INFO: &str = "fieldtrail_build_info";

const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const SMALL_BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 50.0, 100.0];
const LARGE_BATCH_BUCKETS: [f64; 8] = [1.0, 10.0, 50.0, 100.0, 256.0, 500.0, 1000.0, 5000.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as this process's global recorder (once; later calls
/// return the same handle). `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(COMMAND_SECONDS.to_owned()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(APPEND_BATCH.to_owned()),
                        &SMALL_BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(PROJECTOR_BATCH.to_owned()),
                        &LARGE_BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(RELAY_BATCH.to_owned()),
                        &LARGE_BATCH_BUCKETS,
                    )
                });
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: bad histogram buckets; metrics disabled");
                    return None;
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("metrics: another recorder is installed; /metrics is disabled");
                return None;
            }
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(
        COMMANDS_TOTAL,
        Unit::Count,
        "Commands judged, by command and outcome (applied, duplicate, rejected:<code>, error)."
    );
    describe_histogram!(
        COMMAND_SECONDS,
        Unit::Seconds,
        "Time to judge a command, by command."
    );
    describe_histogram!(
        APPEND_BATCH,
        Unit::Count,
        "Events appended per command (one transaction)."
    );
    describe_histogram!(
        PROJECTOR_BATCH,
        Unit::Count,
        "Events folded and stored per projector batch."
    );
    describe_counter!(
        PROJECTOR_ERRORS,
        Unit::Count,
        "Projector batches that failed and will be retried."
    );
    describe_gauge!(
        JOURNAL_HEAD,
        Unit::Count,
        "Highest global position committed to the journal."
    );
    describe_gauge!(
        READ_MODEL_POSITION,
        Unit::Count,
        "Global position of the last event applied to the read model."
    );
    describe_gauge!(
        READ_MODEL_LAG_EVENTS,
        Unit::Count,
        "Committed events not yet applied to the read model."
    );
    describe_gauge!(
        READ_MODEL_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest event not yet applied to the read model (0: caught up)."
    );
    describe_gauge!(
        RELAY_POSITION,
        Unit::Count,
        "Global position of the last event JetStream acknowledged."
    );
    describe_gauge!(
        RELAY_LAG_EVENTS,
        Unit::Count,
        "Committed events not yet published to JetStream."
    );
    describe_gauge!(
        RELAY_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest event not yet published (0: caught up)."
    );
    describe_counter!(
        RELAY_PUBLISHED,
        Unit::Count,
        "Events published and acknowledged by JetStream."
    );
    describe_counter!(
        RELAY_DUPLICATES,
        Unit::Count,
        "Publishes JetStream acknowledged as duplicates."
    );
    describe_counter!(
        RELAY_ERRORS,
        Unit::Count,
        "Relay batches that failed (NATS or PostgreSQL) and will be retried."
    );
    describe_histogram!(RELAY_BATCH, Unit::Count, "Events per relay batch.");
    describe_counter!(
        RESERVATION_REFUSALS,
        Unit::Count,
        "Commands refused by the reservation table after their aggregate's own check passed (a race between servers)."
    );
    describe_gauge!(
        POOL_MAX,
        Unit::Count,
        "Connections the PostgreSQL pool may open."
    );
    describe_gauge!(
        POOL_SIZE,
        Unit::Count,
        "Connections the PostgreSQL pool holds."
    );
    describe_gauge!(
        POOL_AVAILABLE,
        Unit::Count,
        "Idle connections in the PostgreSQL pool."
    );
    describe_gauge!(
        POOL_WAITING,
        Unit::Count,
        "Requests waiting for a PostgreSQL connection."
    );
    describe_gauge!(
        LEADER,
        Unit::Count,
        "1 when this process runs the role (projector, relay), 0 on standby."
    );
    describe_gauge!(
        POSTGRES_UP,
        Unit::Count,
        "1 when the last scrape could read PostgreSQL."
    );
    describe_gauge!(NATS_UP, Unit::Count, "1 when the NATS connection is up.");
    describe_gauge!(BUILD_INFO, Unit::Count, "Always 1; the version is a label.");
}

/// The `command` label: the name when it is one of [`COMMAND_NAMES`], else `unknown`.
pub fn command_label(name: &str) -> &'static str {
    COMMAND_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("unknown")
}

/// The `outcome` label of a command's result.
pub fn outcome_label(result: &Result<Outcome, HandleError>) -> String {
    match result {
        Ok(Outcome::Applied { .. }) => "applied".to_owned(),
        Ok(Outcome::Duplicate { .. }) => "duplicate".to_owned(),
        Ok(Outcome::Rejected { code, .. }) => format!("rejected:{}", code.as_str()),
        Err(_) => "error".to_owned(),
    }
}

/// Counts a judged command and records how long it took.
pub fn command_judged(name: &str, outcome: &str, elapsed: Duration) {
    let command = command_label(name);
    counter!(COMMANDS_TOTAL, "command" => command, "outcome" => outcome.to_owned()).increment(1);
    histogram!(COMMAND_SECONDS, "command" => command).record(elapsed.as_secs_f64());
}

/// Records a projector batch of `events` (0: nothing to do, not recorded).
pub fn projector_batch(events: usize) {
    if events > 0 {
        histogram!(PROJECTOR_BATCH).record(events as f64);
    }
}

/// Counts a failed projector batch.
pub fn projector_error() {
    counter!(PROJECTOR_ERRORS).increment(1);
}

/// Records a relay batch to `stream`.
pub fn relay_batch(stream: &str, published: crate::workers::relay::Published) {
    if published.events == 0 {
        return;
    }
    let stream = stream.to_owned();
    counter!(RELAY_PUBLISHED, "stream" => stream.clone()).increment(published.events as u64);
    counter!(RELAY_DUPLICATES, "stream" => stream.clone()).increment(published.duplicates as u64);
    histogram!(RELAY_BATCH, "stream" => stream).record(published.events as f64);
}

/// Counts a command refused by the reservation table on a claim of `kind`
/// (`field_study_member` or `certificate`).
pub fn reservation_refused(kind: fieldtrail_domain::claims::ClaimKind) {
    counter!(RESERVATION_REFUSALS, "claim" => kind.as_str()).increment(1);
}

/// Counts a failed relay batch to `stream`.
pub fn relay_error(stream: &str) {
    counter!(RELAY_ERRORS, "stream" => stream.to_owned()).increment(1);
}

/// Sets the gauges read at scrape time: pool, leadership, NATS, and (when PostgreSQL
/// answers) the journal head and every reader's position and lag.
pub async fn refresh(state: &AppState) {
    if let Some(pool) = state.journal.postgres() {
        let status = pool.status();
        gauge!(POOL_MAX).set(status.max_size as f64);
        gauge!(POOL_SIZE).set(status.size as f64);
        gauge!(POOL_AVAILABLE).set(status.available as f64);
        gauge!(POOL_WAITING).set(status.waiting as f64);
    }
    let flag = |b: &std::sync::atomic::AtomicBool| if b.load(Ordering::SeqCst) { 1.0 } else { 0.0 };
    gauge!(LEADER, "role" => "projector").set(flag(&state.roles.projector));
    gauge!(LEADER, "role" => "relay").set(flag(&state.roles.relay));
    if let Some(client) = &state.nats {
        let up = health::nats_state(client) == "connected";
        gauge!(NATS_UP).set(if up { 1.0 } else { 0.0 });
    }
    match health::snapshot(&state.journal, &state.ops.stream).await {
        Ok(s) => {
            gauge!(POSTGRES_UP).set(1.0);
            gauge!(JOURNAL_HEAD).set(s.head as f64);
            for kind in health::READ_MODELS {
                let model = kind.as_str();
                gauge!(READ_MODEL_POSITION, "read_model" => model).set(s.projector.position as f64);
                gauge!(READ_MODEL_LAG_EVENTS, "read_model" => model)
                    .set(s.projector.lag_events as f64);
                gauge!(READ_MODEL_LAG_SECONDS, "read_model" => model).set(s.projector.lag_seconds);
            }
            if state.ops.relay_enabled {
                let stream = state.ops.stream.clone();
                gauge!(RELAY_POSITION, "stream" => stream.clone()).set(s.relay.position as f64);
                gauge!(RELAY_LAG_EVENTS, "stream" => stream.clone()).set(s.relay.lag_events as f64);
                gauge!(RELAY_LAG_SECONDS, "stream" => stream).set(s.relay.lag_seconds);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "metrics: PostgreSQL unreadable; lag gauges are stale");
            gauge!(POSTGRES_UP).set(0.0);
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition format.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let Some(handle) = state.ops.metrics.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are disabled in this process (another metrics recorder was installed first)\n",
        )
            .into_response();
    };
    refresh(&state).await;
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(command_label("open_cohort"), "open_cohort");
        assert_eq!(command_label("l25-01"), "unknown");
        let rejected: Result<Outcome, HandleError> = Ok(Outcome::Rejected {
            command_id: Some("c-1".to_owned()),
            code: fieldtrail_domain::Code::NotFound,
            message: "no cohort c25".to_owned(),
        });
        assert_eq!(outcome_label(&rejected), "rejected:not_found");
        assert_eq!(
            outcome_label(&Err(HandleError::Unavailable("x".to_owned()))),
            "error"
        );
    }
}
