//! Event contracts: upcasting old rows on every read path, schemas of NATS bodies, CloudEvents
//! headers, microsecond instants, and the reference consumer.

use crate::faults::stream_contents;
use crate::helpers::{TestEnv, COHORT};
use fieldtrail::cli::consumer::{ConsumerConfig, ConsumerState};
use fieldtrail_journal::{CommandMetadata, PgJournal};
use serde_json::{json, Value};
use std::time::Duration;

fn meta(command_id: &str) -> CommandMetadata {
    CommandMetadata {
        command_id: command_id.to_owned(),
        command: "schedule_session".to_owned(),
        actor: "staff:old-writer".to_owned(),
        reported_actor: None,
        occurred_at: "2025-01-02T10:00:00+01:00".parse().unwrap(),
        correlation_id: command_id.to_owned(),
        causation_id: command_id.to_owned(),
        event_ids: Vec::new(),
    }
}

#[tokio::test]
async fn version_1_rows_read_as_version_2_on_every_path() {
    let env = TestEnv::new("upcast").await;
    env.import(&COHORT.lines().take(14).collect::<Vec<_>>().join("\n"))
        .await;
    // An older writer's row: session_scheduled version 1, without `room`.
    let journal = PgJournal::new(env.pool().clone());
    let version = journal
        .stream("cohort", "cohort-2025", 0)
        .await
        .unwrap()
        .len() as i64;
    let old = json!({"cohort_id": "cohort-2025", "session_id": "old-1", "module_id": "m1", "unit_id": null, "kind": "course",
        "starts_at": "2025-12-01T09:00:00+01:00", "ends_at": "2025-12-01T17:00:00+01:00", "half_days": 2, "facilitator": "f"});
    journal
        .append(
            "cohort",
            "cohort-2025",
            version,
            &[("session_scheduled".into(), "1".into(), old)],
            &meta("old-1"),
        )
        .await
        .unwrap();
    let db = env.pool().get().await.unwrap();
    let stored: (String, Value) = db
        .query_one(
            "SELECT event_version, payload FROM events WHERE command_id = 'old-1'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(stored.0, "1");
    assert!(
        stored.1.get("room").is_none(),
        "the stored row stays as written"
    );

    // 1. Aggregate load: the old session is known to the cohort (rescheduling it works).
    let reschedule = json!({"command_id": "re-old", "command": "reschedule_session", "at": "2025-11-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"cohort_id": "cohort-2025", "session_id": "old-1", "starts_at": "2025-12-02T09:00:00+01:00",
                 "ends_at": "2025-12-02T17:00:00+01:00", "reason": "Salle"}});
    let outcome = env
        .handler()
        .handle_json(&reschedule.to_string(), chrono::Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, fieldtrail::Outcome::Applied { .. }),
        "{outcome:?}"
    );
    // 2. Projection rebuild.
    env.project().await;
    fieldtrail_projections::runner::rebuild(&env.journal)
        .await
        .unwrap();
    let timetable = env.document("timetable", "cohort-2025").await.unwrap();
    assert!(timetable["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["session_id"] == "old-1"));
    // 3. Audit history (the auditor's read of the stream), and the journal's stream read.
    let audit = fieldtrail_journal::audit::stream_events(
        env.pool(),
        "cohort",
        "cohort-2025",
        &Default::default(),
    )
    .await
    .unwrap();
    let old_row = audit.iter().find(|r| r.command_id == "old-1").unwrap();
    assert_eq!(
        (old_row.event_version.as_str(), &old_row.payload["room"]),
        ("2", &Value::Null)
    );
    let history = fieldtrail_journal::PgJournal::new(env.pool().clone())
        .stream("cohort", "cohort-2025", version)
        .await
        .unwrap();
    assert_eq!(
        (
            history[0].event_version.as_str(),
            &history[0].payload["room"]
        ),
        ("2", &Value::Null)
    );
    // 4. Relay (re-)publication.
    env.relay().await;
    let on_nats = stream_contents(&env).await;
    let (_, body) = on_nats
        .iter()
        .find(|(_, b)| b["command_id"] == "old-1")
        .unwrap();
    assert_eq!(body["event_version"], "2");
    assert_eq!(body["payload"]["room"], Value::Null);
    drop(db);
    env.cleanup().await;
}

fn schema_folder() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/schema")
}

#[tokio::test]
async fn nats_bodies_validate_against_the_committed_schemas_and_carry_cloudevents_headers() {
    let env = TestEnv::new("schemas").await;
    env.import(COHORT).await;
    env.relay().await;
    let load = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(schema_folder().join(name)).unwrap()).unwrap()
    };
    let envelope = jsonschema::validator_for(&load("envelope.json")).unwrap();
    let messages = stream_contents(&env).await;
    assert_eq!(messages.len(), 210);
    for (_, body) in &messages {
        let errors: Vec<String> = envelope.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "envelope: {errors:?} in {body}");
        let name = format!(
            "{}.v{}.json",
            body["event_type"].as_str().unwrap(),
            body["event_version"].as_str().unwrap()
        );
        let schema = jsonschema::validator_for(&load(&name)).unwrap();
        let errors: Vec<String> = schema
            .iter_errors(&body["payload"])
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{name}: {errors:?} in {}",
            body["payload"]
        );
    }
    // CloudEvents attributes as headers.
    let client = fieldtrail::workers::relay::connect(&env.settings.nats_url)
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let message = js
        .get_stream(&env.settings.nats_stream)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    let header = |k: &str| {
        message
            .headers
            .get(k)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let body: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(header("ce-specversion"), "1.0");
    assert_eq!(header("ce-id"), body["event_id"].as_str().unwrap());
    assert_eq!(header("Nats-Msg-Id"), body["event_id"].as_str().unwrap());
    assert_eq!(header("ce-type"), "org.fieldtrail.programme_defined.v1");
    assert_eq!(header("ce-subject"), "programme/cisdcp");
    assert_eq!(header("ce-time"), body["occurred_at"].as_str().unwrap());
    assert_eq!(
        header("Fieldtrail-Recorded-At"),
        body["recorded_at"].as_str().unwrap()
    );
    assert_eq!(header("Fieldtrail-Position"), body["position"].to_string());
    assert_eq!(header("Fieldtrail-Stream-Version"), "1");
    assert!(header("ce-source").starts_with("/fieldtrail/"));
    env.cleanup().await;
}

#[tokio::test]
async fn a_sub_microsecond_instant_is_the_same_instant_in_the_journal_on_nats_and_in_the_read_models(
) {
    let env = TestEnv::new("micros").await;
    let lines: Vec<String> = COHORT.lines().take(73).map(str::to_owned).collect();
    env.import(&lines.join("\n")).await;
    let line = json!({"command_id": "nano-1", "command": "negotiate_commission", "at": "2025-10-05T10:00:00.123456789+02:00",
        "actor": "staff:a", "data": {"field_study_id": "fs25-a", "brief": "b", "deliverables": [], "negotiated_with": "d"}});
    env.import(&line.to_string()).await;
    env.relay().await;
    let db = env.pool().get().await.unwrap();
    let journal: chrono::DateTime<chrono::Utc> = db
        .query_one(
            "SELECT occurred_at FROM events WHERE command_id = 'nano-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let expected = "2025-10-05T08:00:00.123456Z";
    assert_eq!(
        journal.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        expected
    );
    let on_nats = stream_contents(&env).await;
    let (_, body) = on_nats
        .iter()
        .find(|(_, b)| b["command_id"] == "nano-1")
        .unwrap();
    assert_eq!(body["occurred_at"], expected);
    let history = env.document("history", "fs25-a").await.unwrap();
    let version = &history["commission"]["versions"][0];
    assert_eq!(version["occurred_at"], expected);
    drop(db);
    env.cleanup().await;
}

async fn consume(env: &TestEnv, state: &std::path::Path) -> ConsumerState {
    let config = ConsumerConfig {
        nats_url: env.settings.nats_url.clone(),
        stream: env.settings.nats_stream.clone(),
        durable: "dashboard".to_owned(),
        state: state.to_owned(),
        until_idle: true,
        show_personal: None,
    };
    fieldtrail::cli::consumer::run(&config).await.unwrap()
}

async fn view_from_journal(env: &TestEnv) -> ConsumerState {
    let mut state = ConsumerState::default();
    let log = fieldtrail_journal::GlobalLog::new(env.pool().clone());
    for event in log
        .read(fieldtrail_journal::Cursor::default(), 100_000)
        .await
        .unwrap()
    {
        state.apply(&fieldtrail::workers::relay::body(&event));
    }
    state
}

#[tokio::test]
async fn the_reference_consumer_resumes_after_a_stop_and_applies_each_event_once() {
    let mut env = TestEnv::new("consumer").await;
    env.settings.dedup_window_secs = 1;
    let state_file = std::env::temp_dir().join(format!("{}-state.json", env.db_name));
    let lines: Vec<&str> = COHORT.lines().collect();
    env.import(&lines[..100].join("\n")).await;
    env.relay().await;
    let first = consume(&env, &state_file).await;
    assert!(first.applied > 0);
    // Stopped half-way; the import goes on; the consumer restarts from its state file and the
    // server-side durable consumer.
    env.import(&lines[100..].join("\n")).await;
    env.relay().await;
    let second = consume(&env, &state_file).await;
    let expected = view_from_journal(&env).await;
    assert_eq!(second.attendance, expected.attendance);
    assert_eq!(second.applied as i64, env.event_count().await);
    assert!(second.attendance["cohort-2025"]["m1"].held > 0);
    // The relay re-publishes the whole history after the dedup window: the stream doubles, the
    // view does not move.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    env.pool()
        .get()
        .await
        .unwrap()
        .execute("DELETE FROM checkpoints WHERE name LIKE 'relay:%'", &[])
        .await
        .unwrap();
    let republished = env.relay().await;
    assert_eq!(
        republished.duplicates, 0,
        "beyond the window the server stores them again"
    );
    let third = consume(&env, &state_file).await;
    assert_eq!(third.attendance, expected.attendance);
    assert_eq!(third.applied, second.applied);
    assert_eq!(third.duplicates as i64, env.event_count().await);
    std::fs::remove_file(&state_file).ok();
    env.cleanup().await;
}
