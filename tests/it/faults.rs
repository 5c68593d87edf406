//! The journal and the global log under concurrency and faults, in one process
//! (issue cases 1, 2, 4, 8 and 9; the cases that kill processes are in `faults_process`).

use crate::helpers::TestEnv;
use async_nats::jetstream::{self, consumer::pull};
use fieldtrail_journal::{append_in, checkpoint, CommandMetadata, Cursor, PgJournal};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn meta(command_id: &str) -> CommandMetadata {
    CommandMetadata {
        reported_actor: None,
        command_id: command_id.to_owned(),
        command: "test".to_owned(),
        actor: "staff:test".to_owned(),
        occurred_at: "2025-01-01T10:00:00+01:00".parse().unwrap(),
        correlation_id: command_id.to_owned(),
        causation_id: command_id.to_owned(),
        event_ids: Vec::new(),
    }
}

fn opened(cohort: &str) -> Vec<(String, String, Value)> {
    vec![(
        "cohort_opened".to_owned(),
        "1".to_owned(),
        json!({"cohort_id": cohort, "programme_id": "p", "title": cohort, "starts_on": "2025-01-01", "ends_on": "2025-06-30"}),
    )]
}

async fn define_programme(env: &TestEnv) {
    let line = json!({"command_id": "p1", "command": "define_programme", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"programme_id": "p", "title": "P", "modules": [{"module_id": "m1", "title": "M1", "half_days": 40, "units": []}]}});
    let outcome = env
        .handler()
        .handle_json(&line.to_string(), chrono::Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, fieldtrail::Outcome::Applied { .. }),
        "{outcome:?}"
    );
    // The global log stops below the server's oldest running transaction, any database's: a
    // test running beside this one may hold it back. The cases below assume the programme is
    // readable before they open their own transactions.
    assert!(
        env.journal
            .wait_readable(std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        "the programme did not become readable within 60 s"
    );
}

/// Every message on the test's stream: (Nats-Msg-Id, body), read by an ephemeral consumer.
pub async fn stream_contents(env: &TestEnv) -> Vec<(String, Value)> {
    read_stream(env, None).await
}

/// Every message on the test's stream, read by a new consumer: ephemeral without
/// acknowledgements, or the durable `durable` acknowledging each message explicitly (as a
/// dashboard would).
pub async fn read_stream(env: &TestEnv, durable: Option<&str>) -> Vec<(String, Value)> {
    let client = fieldtrail::workers::relay::connect(&env.settings.nats_url)
        .await
        .unwrap();
    let mut stream = jetstream::new(client)
        .get_stream(&env.settings.nats_stream)
        .await
        .unwrap();
    // As many as the stream holds now (a fetch that expires empty under load is not the end).
    let stored = stream.info().await.unwrap().state.messages as usize;
    let ack_policy = if durable.is_some() {
        jetstream::consumer::AckPolicy::Explicit
    } else {
        jetstream::consumer::AckPolicy::None
    };
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: durable.map(str::to_owned),
            ack_policy,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut empty_fetches = 0;
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .unwrap();
        let before = seen.len();
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .expect("Nats-Msg-Id");
            seen.push((id, serde_json::from_slice(&message.payload).unwrap()));
            if durable.is_some() {
                message.ack().await.unwrap();
            }
        }
        if seen.len() == before {
            // Nothing more came: done once every stored message was seen (or after 10 s).
            if seen.len() >= stored || empty_fetches >= 30 {
                return seen;
            }
            empty_fetches += 1;
        }
    }
}

async fn projector_checkpoint(env: &TestEnv) -> Cursor {
    let client = env.pool().get().await.unwrap();
    checkpoint::load(&client, checkpoint::PROJECTOR)
        .await
        .unwrap()
}

#[tokio::test]
async fn case_1_out_of_order_commits_are_read_once_and_rollbacks_never_stall() {
    let env = TestEnv::new("out_of_order").await;
    define_programme(&env).await;
    let journal = PgJournal::new(env.pool().clone());

    // A appends for cohort x and stays open.
    let mut conn_a = env.pool().get().await.unwrap();
    let tx_a = conn_a.transaction().await.unwrap();
    append_in(&tx_a, "cohort", "x", 0, &opened("x"), &meta("a"))
        .await
        .unwrap();
    let a_xid: u64 = tx_a
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap()
        .get::<_, String>(0)
        .parse()
        .unwrap();
    // B appends for cohort y and commits (its position is after A's).
    journal
        .append("cohort", "y", 0, &opened("y"), &meta("b"))
        .await
        .unwrap();
    env.project_now().await;
    env.relay().await;
    let cursor = projector_checkpoint(&env).await;
    assert!(
        cursor.tx_id < a_xid,
        "the projector's cursor {cursor:?} passed the open transaction {a_xid}"
    );
    assert!(
        env.document("timetable", "y").await.is_none(),
        "B was projected while A was open"
    );
    assert_eq!(
        stream_contents(&env).await.len(),
        1,
        "only the programme may be on NATS while A is open"
    );

    tx_a.commit().await.unwrap();
    drop(conn_a);
    // C appends and rolls back; D appends and commits.
    let mut conn_c = env.pool().get().await.unwrap();
    let tx_c = conn_c.transaction().await.unwrap();
    append_in(&tx_c, "cohort", "c", 0, &opened("c"), &meta("c"))
        .await
        .unwrap();
    tx_c.rollback().await.unwrap();
    drop(conn_c);
    journal
        .append("cohort", "d", 0, &opened("d"), &meta("d"))
        .await
        .unwrap();
    env.project().await;
    env.relay().await;

    for cohort in ["x", "y", "d"] {
        assert!(
            env.document("timetable", cohort).await.is_some(),
            "{cohort} missing from the read models"
        );
    }
    assert!(env.document("timetable", "c").await.is_none());
    let on_nats = stream_contents(&env).await;
    let streams: Vec<&str> = on_nats
        .iter()
        .map(|(_, b)| b["stream_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        streams,
        ["p", "x", "y", "d"],
        "journal order (tx id, position) on NATS, each once"
    );
    let ids: HashSet<&str> = on_nats.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(env.event_count().await, 4);
    env.cleanup().await;
}

fn schedule(i: usize) -> String {
    let day = 1 + i;
    json!({"command_id": format!("s-{i}"), "command": "schedule_session", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"cohort_id": "k", "session_id": format!("s{i}"), "module_id": "m1", "kind": "course",
                 "starts_at": format!("2025-03-{day:02}T09:00:00+01:00"), "ends_at": format!("2025-03-{day:02}T12:00:00+01:00"),
                 "half_days": 1, "facilitator": "f"}})
    .to_string()
}

async fn open_cohort_k(env: &TestEnv) {
    define_programme(env).await;
    let line = json!({"command_id": "k1", "command": "open_cohort", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"cohort_id": "k", "programme_id": "p", "title": "K", "starts_on": "2025-01-01", "ends_on": "2025-06-30"}});
    env.handler()
        .handle_json(&line.to_string(), chrono::Utc::now())
        .await
        .unwrap();
}

async fn race(handler: Arc<fieldtrail::CommandHandler>) -> Vec<Value> {
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (handler, barrier) = (handler.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                serde_json::to_value(
                    handler
                        .handle_json(&schedule(i), chrono::Utc::now())
                        .await
                        .unwrap(),
                )
                .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn cohort_versions(env: &TestEnv) -> Vec<i64> {
    let client = env.pool().get().await.unwrap();
    client
        .query("SELECT stream_version FROM events WHERE stream_type = 'cohort' AND stream_id = 'k' ORDER BY stream_version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_2_twenty_writers_on_one_cohort_with_retry_all_succeed() {
    let env = TestEnv::new("race_retry").await;
    open_cohort_k(&env).await;
    let outcomes = race(Arc::new(env.handler())).await;
    let applied = outcomes
        .iter()
        .filter(|o| o["outcome"] == "applied")
        .count();
    assert_eq!(applied, 20, "{outcomes:?}");
    assert_eq!(cohort_versions(&env).await, (1..=21).collect::<Vec<i64>>());
    env.project().await;
    let timetable = env.document("timetable", "k").await.unwrap();
    assert_eq!(timetable["sessions"].as_array().unwrap().len(), 20);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_2_twenty_writers_without_retry_losers_get_a_concurrent_conflict() {
    let env = TestEnv::new("race_no_retry").await;
    open_cohort_k(&env).await;
    let before = env.event_count().await;
    let outcomes = race(Arc::new(env.handler().with_retries(0))).await;
    let applied = outcomes
        .iter()
        .filter(|o| o["outcome"] == "applied")
        .count();
    let losers: Vec<&Value> = outcomes
        .iter()
        .filter(|o| o["outcome"] != "applied")
        .collect();
    assert_eq!(
        applied as i64,
        env.event_count().await - before,
        "success answers = new events"
    );
    assert!(applied >= 1);
    for loser in &losers {
        assert_eq!(loser["code"], "conflict", "{loser}");
        assert!(
            loser["message"].as_str().unwrap().contains("concurrent"),
            "{loser}"
        );
    }
    let versions = cohort_versions(&env).await;
    assert_eq!(
        versions,
        (1..=versions.len() as i64).collect::<Vec<i64>>(),
        "contiguous, no duplicate"
    );
    eprintln!(
        "case 2 without retry: {applied} applied, {} conflicts",
        losers.len()
    );
    env.cleanup().await;
}

#[tokio::test]
async fn case_4_a_lost_relay_checkpoint_republishes_as_duplicates_and_a_consumer_applies_once() {
    let mut env = TestEnv::new("relay_crash").await;
    env.settings.dedup_window_secs = 1;
    env.import(crate::helpers::COHORT).await;
    let rows = env.event_count().await;
    assert_eq!(env.relay().await.events as i64, rows);
    let wipe = || async {
        let client = env.pool().get().await.unwrap();
        client
            .execute("DELETE FROM checkpoints WHERE name LIKE 'relay:%'", &[])
            .await
            .unwrap();
    };
    // Within the window: the server acknowledges every re-publish as a duplicate.
    wipe().await;
    let again = env.relay().await;
    assert_eq!((again.events as i64, again.duplicates as i64), (rows, rows));
    assert_eq!(stream_contents(&env).await.len() as i64, rows);
    // Beyond the window the server stores them again; a consumer deduplicating by event id
    // applies each event once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wipe().await;
    let late = env.relay().await;
    assert_eq!(late.duplicates, 0);
    let messages = stream_contents(&env).await;
    assert_eq!(messages.len() as i64, 2 * rows);
    let mut applied = HashSet::new();
    let mut applications = 0;
    for (id, _) in &messages {
        if applied.insert(id.clone()) {
            applications += 1;
        }
    }
    assert_eq!(applications, rows);
    env.cleanup().await;
}

#[tokio::test]
async fn case_8_an_unknown_event_type_stops_the_projector_at_it() {
    let env = TestEnv::new("unknown_type").await;
    define_programme(&env).await;
    let journal = PgJournal::new(env.pool().clone());
    journal
        .append("cohort", "u", 0, &opened("u"), &meta("u1"))
        .await
        .unwrap();
    env.project().await;
    let before = projector_checkpoint(&env).await;
    let newer = vec![(
        "cohort_merged".to_owned(),
        "1".to_owned(),
        json!({"cohort_id": "u", "into": "v"}),
    )];
    let positions = journal
        .append("cohort", "u", 1, &newer, &meta("u2"))
        .await
        .unwrap();
    journal
        .append("cohort", "w", 0, &opened("w"), &meta("u3"))
        .await
        .unwrap();
    // Another test's open transaction on the server may still hide the rows just appended
    // from the global log: wait until they are readable, so the projector meets them.
    assert!(env
        .journal
        .wait_readable(std::time::Duration::from_secs(60))
        .await
        .unwrap());
    for _ in 0..2 {
        let mut projector = fieldtrail_projections::runner::Projector::start(env.journal.clone())
            .await
            .unwrap();
        let err = projector.catch_up().await.unwrap_err().to_string();
        assert!(
            err.contains("cohort_merged") && err.contains(&format!("position {}", positions[0])),
            "{err}"
        );
        assert_eq!(
            projector_checkpoint(&env).await,
            before,
            "the cursor moved past the unknown event"
        );
        assert!(
            env.document("timetable", "w").await.is_none(),
            "an event after it was applied"
        );
    }
    env.cleanup().await;
}

#[tokio::test]
async fn case_9_an_oversized_command_is_invalid_and_an_oversized_row_is_published_as_a_reference() {
    let env = TestEnv::new("oversized").await;
    env.import(crate::helpers::COHORT).await;
    let note = "x".repeat(2 * 1024 * 1024);
    let line = json!({"command_id": "big-1", "command": "record_reflexive_note", "at": "2026-01-01T10:00:00+01:00", "actor": "facilitator:a",
        "data": {"field_study_id": "fs25-a", "note_id": "big-note", "text": note}});
    let outcome = serde_json::to_value(
        env.handler()
            .handle_json(&line.to_string(), chrono::Utc::now())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(outcome["code"], "invalid", "{outcome}");
    assert!(
        outcome["message"].as_str().unwrap().contains("limit"),
        "{outcome}"
    );

    // A row that is too large anyway (written before the limit existed): the relay publishes
    // a reference and the next event still goes out at once.
    let journal = PgJournal::new(env.pool().clone());
    let version = journal
        .stream("field_study", "fs25-c", 0)
        .await
        .unwrap()
        .len() as i64;
    let huge = vec![(
        "reflexive_note_recorded".to_owned(),
        "1".to_owned(),
        json!({"field_study_id": "fs25-c", "note_id": "huge", "session_id": null, "text": note}),
    )];
    journal
        .append("field_study", "fs25-c", version, &huge, &meta("huge"))
        .await
        .unwrap();
    let small = json!({"command_id": "after-1", "command": "record_reflexive_note", "at": "2026-01-01T10:00:00+01:00", "actor": "facilitator:a",
        "data": {"field_study_id": "fs25-c", "note_id": "after", "text": "short"}});
    let outcome = env
        .handler()
        .handle_json(&small.to_string(), chrono::Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, fieldtrail::Outcome::Applied { .. }),
        "{outcome:?}"
    );
    let rows = env.event_count().await;
    // Every committed event readable first (another test's open transaction on the server
    // holds the global log back for a moment).
    assert!(env
        .journal
        .wait_readable(std::time::Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(env.relay().await.events as i64, rows);
    let messages = stream_contents(&env).await;
    assert_eq!(messages.len() as i64, rows);
    let reference = messages
        .iter()
        .find(|(_, b)| b["command_id"] == "huge")
        .unwrap();
    assert!(reference.1.get("payload").is_none());
    assert!(reference.1["payload_omitted"]["bytes"].as_u64().unwrap() > 2 * 1024 * 1024);
    assert_eq!(messages.last().unwrap().1["command_id"], "after-1");
    env.cleanup().await;
}
