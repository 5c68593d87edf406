//! The audit trail (issue 5): any past state (`as_of`), tamper evidence (`audit verify`),
//! stream and actor histories, the attendance evidence register, the history entries'
//! previous values.

use crate::helpers::{TestEnv, COHORT};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

fn fieldtrail(env: &TestEnv) -> Command {
    let mut command = crate::helpers::fieldtrail_binary();
    command
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
        .env("FIELDTRAIL_SUBJECT_PREFIX", &env.settings.subject_prefix)
        .env("RUST_LOG", "warn");
    command
}

fn run(env: &TestEnv, args: &[&str]) -> Output {
    fieldtrail(env).args(args).output().expect("run fieldtrail")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// The database server's clock (the clock `recorded_at` is taken from).
async fn db_now(env: &TestEnv) -> DateTime<Utc> {
    let client = env.pool().get().await.unwrap();
    client
        .query_one("SELECT clock_timestamp()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Runs `sql` as a superuser who bypasses the append-only trigger.
async fn as_superuser(env: &TestEnv, sql: &str) {
    let client = env.pool().get().await.unwrap();
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;"
        ))
        .await
        .unwrap();
}

/// Starts the server and waits until it answers.
async fn serve(
    env: &TestEnv,
) -> (
    String,
    reqwest::Client,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (address, stop, task): (SocketAddr, _, _) = env.serve().await;
    let base = format!("http://{address}");
    let client = env.client();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (base, client, stop, task)
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// A read answer without the `position` it carries (an integer, the journal position it
/// reflects), for comparison with a stored document.
fn without_position(body: &Value) -> Value {
    assert!(body["position"].is_i64(), "no position in {body}");
    let mut doc = body.clone();
    doc.as_object_mut().unwrap().remove("position");
    doc
}

/// Every document key of the full journal: (kind, key, HTTP path).
fn routes(documents: &[(String, String, Value)]) -> Vec<(String, String, String)> {
    documents
        .iter()
        .map(|(kind, key, _)| {
            let path = match kind.as_str() {
                "timetable" => format!("/cohorts/{key}/timetable"),
                "transcript" => {
                    let (cohort, learner) = key.split_once('/').unwrap();
                    format!("/cohorts/{cohort}/learners/{learner}/transcript")
                }
                _ => format!("/field-studies/{key}/history"),
            };
            (kind.clone(), key.clone(), path)
        })
        .collect()
}

/// CLI arguments of `report` for one document.
fn report_args(kind: &str, key: &str) -> Vec<String> {
    let mut args = vec!["report".to_owned(), kind.to_owned()];
    match kind {
        "timetable" => args.extend(["--cohort".to_owned(), key.to_owned()]),
        "transcript" => {
            let (cohort, learner) = key.split_once('/').unwrap();
            args.extend([
                "--cohort".to_owned(),
                cohort.to_owned(),
                "--learner".to_owned(),
                learner.to_owned(),
            ]);
        }
        _ => args.extend(["--field-study".to_owned(), key.to_owned()]),
    }
    args
}

/// A journal row with every column, to copy into another database.
struct Row {
    position: i64,
    tx_id: String,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    row: tokio_postgres::Row,
}

const COPY_COLUMNS: &str = "position, event_id, stream_type, stream_id, stream_version, \
    tx_id::text, event_type, event_version, payload, occurred_at, recorded_at, actor, command_id, \
    correlation_id, causation_id, prev_hash, hash, chain_version";

async fn journal_rows(env: &TestEnv) -> Vec<Row> {
    let client = env.pool().get().await.unwrap();
    client
        .query(
            &format!("SELECT {COPY_COLUMNS} FROM events ORDER BY tx_id, position"),
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|row| Row {
            position: row.get(0),
            tx_id: row.get(5),
            occurred_at: row.get(9),
            recorded_at: row.get(10),
            row,
        })
        .collect()
}

/// Copies the journal's rows (same positions, transaction ids and hashes) into the scratch
/// database's table `events_source`, from which [`rebuild_from`] takes each cut.
async fn stage(scratch: &TestEnv, rows: &[Row]) {
    let client = scratch.pool().get().await.unwrap();
    client
        .batch_execute("CREATE TABLE events_source (LIKE events)")
        .await
        .unwrap();
    let insert = client
        .prepare(&format!(
            "INSERT INTO events_source ({})
             VALUES ($1, $2, $3, $4, $5, $6::text::xid8, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            COPY_COLUMNS.replace("::text", "")
        ))
        .await
        .unwrap();
    for r in rows {
        let v = &r.row;
        let payload: Value = v.get(8);
        let (p, h): (Vec<u8>, Vec<u8>) = (v.get(15), v.get(16));
        client
            .execute(
                &insert,
                &[
                    &r.position,
                    &v.get::<_, uuid::Uuid>(1),
                    &v.get::<_, String>(2),
                    &v.get::<_, String>(3),
                    &v.get::<_, i64>(4),
                    &r.tx_id,
                    &v.get::<_, String>(6),
                    &v.get::<_, String>(7),
                    &payload,
                    &r.occurred_at,
                    &r.recorded_at,
                    &v.get::<_, String>(11),
                    &v.get::<_, String>(12),
                    &v.get::<_, String>(13),
                    &v.get::<_, String>(14),
                    &p,
                    &h,
                    &v.get::<_, i16>(17),
                ],
            )
            .await
            .unwrap();
    }
}

/// Replaces the scratch database's journal by the staged rows that satisfy `condition` (SQL),
/// rebuilds its read models with the projector's own rebuild, and returns them.
async fn rebuild_from(scratch: &TestEnv, condition: &str) -> BTreeMap<(String, String), Value> {
    let columns = COPY_COLUMNS.replace("::text", "");
    as_superuser(
        scratch,
        &format!(
            "DELETE FROM events; DELETE FROM read_models; DELETE FROM checkpoints;
             INSERT INTO events ({columns}) OVERRIDING SYSTEM VALUE
             SELECT {columns} FROM events_source WHERE {condition}"
        ),
    )
    .await;
    fieldtrail_projections::runner::rebuild(&scratch.journal)
        .await
        .unwrap();
    scratch
        .documents()
        .await
        .into_iter()
        .map(|(kind, key, doc)| ((kind, key), doc))
        .collect()
}

/// Checks every document at `query` (HTTP) and three of them (one per read model) with the
/// CLI flag `flag value` against `expected` (a projection rebuilt from the cut alone).
#[allow(clippy::too_many_arguments)]
async fn check_cut(
    env: &TestEnv,
    client: &reqwest::Client,
    base: &str,
    all: &[(String, String, String)],
    expected: &BTreeMap<(String, String), Value>,
    query: &str,
    flag: &str,
    value: &str,
    nth: usize,
) {
    for (kind, key, path) in all {
        let (status, body) = get(client, &format!("{base}{path}?{query}")).await;
        match expected.get(&(kind.clone(), key.clone())) {
            Some(doc) => {
                assert_eq!(status, 200, "{path}?{query}: {body}");
                assert_eq!(&without_position(&body), doc, "{path}?{query}");
            }
            None => assert_eq!(
                status, 404,
                "{path}?{query}: existed before the cut: {body}"
            ),
        }
    }
    // The CLI, on one document of each read model (rotating over the documents).
    for wanted in ["timetable", "transcript", "history"] {
        let of_kind: Vec<&(String, String, String)> =
            all.iter().filter(|(k, _, _)| k == wanted).collect();
        let (kind, key, _) = of_kind[nth % of_kind.len()];
        let mut args = report_args(kind, key);
        args.extend([flag.to_owned(), value.to_owned()]);
        let output = fieldtrail(env).args(&args).output().unwrap();
        match expected.get(&(kind.clone(), key.clone())) {
            Some(doc) => assert_eq!(&json_of(&output), doc, "{args:?}"),
            None => {
                assert_eq!(output.status.code(), Some(1), "{args:?}");
                assert!(String::from_utf8_lossy(&output.stderr).contains("no "));
            }
        }
    }
}

/// cohort-2025 and a copy of it under other ids (`cohort-k2`, learners `k2-l25-…`, …) on the
/// same programme, their lines interleaved: an `as_of` document must not depend on the other
/// cohort's events.
fn two_cohorts() -> String {
    let copy = COHORT
        .replace("\"cohort-2025-c", "\"k2-c")
        .replace("cohort-2025", "cohort-k2")
        .replace("\"l25-", "\"k2-l25-")
        .replace("\"s25-", "\"k2-s25-")
        .replace("\"fs25-", "\"k2-fs25-");
    let mut copy = copy.lines().filter(|l| !l.contains("\"define_programme\""));
    let mut lines = Vec::new();
    for line in COHORT.lines() {
        lines.push(line);
        lines.extend(copy.next());
    }
    lines.extend(copy);
    lines.join("\n")
}

#[tokio::test]
async fn as_of_occurred_time_and_position_equal_a_projection_rebuilt_from_the_cut() {
    let env = TestEnv::new("asof_cuts").await;
    let scratch = TestEnv::new("asof_scratch").await;
    let report = env.import(&two_cohorts()).await;
    assert_eq!((report.applied, report.rejected), (405, 0));
    let (base, client, stop, task) = serve(&env).await;
    let rows = journal_rows(&env).await;
    stage(&scratch, &rows).await;
    scratch.copy_keys_from(&env.journal).await;
    let all = routes(&env.documents().await);
    assert_eq!(all.len(), 2 * (1 + 11 + 3));

    // 20 instants spread over the cohort's year (first and last event included).
    let first = rows.iter().map(|r| r.occurred_at).min().unwrap();
    let last = rows.iter().map(|r| r.occurred_at).max().unwrap();
    for i in 0..20 {
        let t = first + (last - first) * i / 19;
        let value = t.to_rfc3339();
        let expected = rebuild_from(&scratch, &format!("occurred_at <= '{value}'")).await;
        let query = format!("as_of_occurred={}", value.replace('+', "%2B"));
        check_cut(
            &env,
            &client,
            &base,
            &all,
            &expected,
            &query,
            "--as-of-occurred",
            &value,
            i as usize,
        )
        .await;
    }

    // 20 global positions spread over the journal (some fall inside multi-event commands).
    let head = rows.iter().map(|r| r.position).max().unwrap();
    for i in 0..20 {
        let n = 1 + (head - 1) * i / 19;
        let expected = rebuild_from(&scratch, &format!("position <= {n}")).await;
        check_cut(
            &env,
            &client,
            &base,
            &all,
            &expected,
            &format!("as_of_position={n}"),
            "--as-of-position",
            &n.to_string(),
            i as usize,
        )
        .await;
    }
    // Past the head: the documents as they stand.
    let (status, body) = get(
        &client,
        &format!(
            "{base}/cohorts/cohort-2025/timetable?as_of_position={}",
            head + 1000
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["position"], head,
        "past the head: the head is what it reflects"
    );
    assert_eq!(
        without_position(&body),
        env.document("timetable", "cohort-2025").await.unwrap()
    );

    stop.cancel();
    task.await.unwrap().unwrap();
    scratch.cleanup().await;
    env.cleanup().await;
}

#[tokio::test]
async fn as_of_recorded_time_answers_batches_appended_at_different_moments() {
    let env = TestEnv::new("asof_recorded").await;
    let lines: Vec<&str> = COHORT.lines().collect();
    let mut moments = vec![(db_now(&env).await, Vec::new())];
    for batch in lines.chunks(55) {
        tokio::time::sleep(Duration::from_millis(30)).await;
        env.import(&batch.join("\n")).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        moments.push((db_now(&env).await, env.documents().await));
    }
    assert_eq!(moments.len(), 5);
    let (base, client, stop, task) = serve(&env).await;
    let all = routes(&moments.last().unwrap().1);
    for (i, (t, live)) in moments.iter().enumerate() {
        // What the live projector had stored at that moment.
        let expected: BTreeMap<(String, String), Value> = live
            .iter()
            .map(|(kind, key, doc)| ((kind.clone(), key.clone()), doc.clone()))
            .collect();
        let value = t.to_rfc3339();
        let query = format!("as_of={}", value.replace('+', "%2B"));
        check_cut(
            &env, &client, &base, &all, &expected, &query, "--as-of", &value, i,
        )
        .await;
    }
    // The two clocks differ: everything was recorded today, but on 2025-10-20 little had happened.
    let (_, recorded) = get(
        &client,
        &format!(
            "{base}/cohorts/cohort-2025/timetable?as_of={}",
            moments[4].0.to_rfc3339().replace('+', "%2B")
        ),
    )
    .await;
    let (_, occurred) = get(
        &client,
        &format!("{base}/cohorts/cohort-2025/timetable?as_of_occurred=2025-10-20T00:00:00%2B02:00"),
    )
    .await;
    let held = |doc: &Value| {
        doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "held")
            .count()
    };
    assert!(
        held(&occurred) < held(&recorded),
        "{} vs {}",
        held(&occurred),
        held(&recorded)
    );

    // Bad values: 422 naming the parameter, never 500.
    for (query, names) in [
        ("as_of=yesterday", "as_of"),
        ("as_of=2025-10-20", "as_of"),
        ("as_of_position=-1", "as_of_position"),
        ("as_of_position=abc", "as_of_position"),
        ("as_of_occurred=2025-13-01T00:00:00Z", "as_of_occurred"),
        ("as_of=2025-10-20T00:00:00Z&as_of_position=3", "at most one"),
        ("as_of_position=3&as_of_position=4", "more than once"),
    ] {
        for path in [
            "/cohorts/cohort-2025/timetable",
            "/cohorts/cohort-2025/learners/l25-01/transcript",
            "/field-studies/fs25-a/history",
        ] {
            let (status, body) = get(&client, &format!("{base}{path}?{query}")).await;
            assert_eq!(status, 422, "{path}?{query}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains(names),
                "{query}: {body}"
            );
        }
    }
    let (status, body) = get(
        &client,
        &format!("{base}/cohorts/nope/timetable?as_of_position=10"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // The CLI refuses bad values naming the flag.
    let output = run(
        &env,
        &[
            "report",
            "timetable",
            "--cohort",
            "cohort-2025",
            "--as-of",
            "yesterday",
        ],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--as-of"));
    let output = run(
        &env,
        &[
            "report",
            "timetable",
            "--cohort",
            "cohort-2025",
            "--as-of-position",
            "5",
            "--as-of-occurred",
            "2025-10-20T00:00:00Z",
        ],
    );
    assert!(!output.status.success());
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

/// `audit verify --format json`.
fn verify(env: &TestEnv, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["audit", "verify", "--format", "json"];
    args.extend(extra);
    let json = run(env, &args);
    let text = run(env, &["audit", "verify"]);
    assert_eq!(json.status.code(), text.status.code());
    (
        json.status.code(),
        serde_json::from_slice(&json.stdout).expect("verify JSON"),
        stdout(&text),
    )
}

#[tokio::test]
async fn verify_passes_on_an_intact_journal_and_again_after_a_legitimate_append() {
    let env = TestEnv::new("verify_intact").await;
    env.import(COHORT).await;
    let (code, report, text) = verify(&env, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(report["events"], 210);
    assert_eq!(report["streams"], 5);
    assert!(
        text.contains("journal verified: 210 events in 5 streams"),
        "{text}"
    );
    let digest = report["digest"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    assert!(text.contains(&digest));
    let head = report["head_position"].as_i64().unwrap();

    let outcome = env
        .handler()
        .handle_json(
            r#"{"command_id": "audit-extra-1", "command": "record_reflexive_note", "at": "2026-07-03T10:00:00+02:00",
                "actor": "learner:l25-01", "data": {"field_study_id": "fs25-a", "note_id": "fs25-a-extra", "text": "Après coup"}}"#,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap()["outcome"],
        "applied"
    );
    let at = head.to_string();
    let (code, after, text) = verify(&env, &["--at-position", &at]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(after["events"], 211);
    assert_ne!(after["digest"], digest, "the digest covers the new head");
    // An auditor who noted (position, digest) earlier can check it later.
    assert_eq!(after["digest_at"]["digest"], digest);
    assert_eq!(after["digest_at"]["events"], 210);
    env.cleanup().await;
}

/// Changes the journal behind the product's back: on PostgreSQL as a superuser who bypasses
/// the append-only trigger, on the embedded file by dropping its triggers (anyone who can
/// write the file can), then running `sql` (SQLite's dialect when `sqlite_sql` is given).
async fn behind_the_back(env: &TestEnv, sql: &str, sqlite_sql: Option<&str>) {
    match fieldtrail_journal::sqlite_path(&env.settings.database_url) {
        None => as_superuser(env, sql).await,
        Some(path) => {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection
                .execute_batch(&format!(
                    "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; {};",
                    sqlite_sql.unwrap_or(sql)
                ))
                .unwrap();
        }
    }
}

async fn tampered(
    env: TestEnv,
    sql: &str,
    sqlite_sql: Option<&str>,
) -> (TestEnv, Option<i32>, Value, String) {
    env.import(COHORT).await;
    let (code, _, _) = verify(&env, &[]);
    assert_eq!(code, Some(0));
    behind_the_back(&env, sql, sqlite_sql).await;
    let (code, report, text) = verify(&env, &[]);
    (env, code, report, text)
}

fn only_break(report: &Value) -> (String, i64, String) {
    let breaks = report["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "{report}");
    (
        breaks[0]["stream"].as_str().unwrap().to_owned(),
        breaks[0]["version"].as_i64().unwrap(),
        breaks[0]["reason"].as_str().unwrap().to_owned(),
    )
}

crate::both_backends!(
    verify_names_the_stream_and_version_of_an_updated_payload,
    updated_payload
);

async fn updated_payload(env: TestEnv) {
    let (env, code, report, text) = tampered(
        env,
        "UPDATE events SET payload = jsonb_set(payload, '{status}', '\"present\"')
         WHERE stream_type = 'cohort' AND stream_id = 'cohort-2025' AND stream_version =
           (SELECT min(stream_version) FROM events WHERE event_type = 'attendance_corrected')",
        Some(
            "UPDATE events SET payload = json_set(payload, '$.status', 'present')
             WHERE stream_type = 'cohort' AND stream_id = 'cohort-2025' AND stream_version =
               (SELECT min(stream_version) FROM events WHERE event_type = 'attendance_corrected')",
        ),
    )
    .await;
    let version = env
        .journal
        .stream("cohort", "cohort-2025", 0)
        .await
        .unwrap()
        .iter()
        .find(|e| e.event_type == "attendance_corrected")
        .unwrap()
        .stream_version;
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(only_break(&report).0, "cohort/cohort-2025");
    assert_eq!(only_break(&report).1, version);
    assert!(only_break(&report).2.contains("content"));
    assert!(
        text.contains(&format!("BROKEN cohort/cohort-2025 version {version}")),
        "{text}"
    );
    assert!(text.contains("journal NOT verified"), "{text}");
    env.cleanup().await;
}

crate::both_backends!(
    verify_names_the_stream_and_version_of_a_deleted_row,
    deleted_row
);

async fn deleted_row(env: TestEnv) {
    let (env, code, report, text) = tampered(
        env,
        "DELETE FROM events WHERE stream_type = 'field_study' AND stream_id = 'fs25-b' AND stream_version = 5",
        None,
    )
    .await;
    assert_eq!(code, Some(2), "{text}");
    let (stream, version, reason) = only_break(&report);
    assert_eq!((stream.as_str(), version), ("field_study/fs25-b", 5));
    assert!(reason.contains("missing"), "{reason}");
    assert!(
        text.contains("BROKEN field_study/fs25-b version 5"),
        "{text}"
    );
    env.cleanup().await;
}

crate::both_backends!(
    verify_names_the_stream_and_version_of_swapped_versions,
    swapped_versions
);

async fn swapped_versions(env: TestEnv) {
    let (env, code, report, text) = tampered(
        env,
        "UPDATE events SET stream_version = 1000000 WHERE stream_type = 'cohort' AND stream_version = 40;
         UPDATE events SET stream_version = 40 WHERE stream_type = 'cohort' AND stream_version = 41;
         UPDATE events SET stream_version = 41 WHERE stream_type = 'cohort' AND stream_version = 1000000",
        None,
    )
    .await;
    assert_eq!(code, Some(2), "{text}");
    let (stream, version, _) = only_break(&report);
    assert_eq!((stream.as_str(), version), ("cohort/cohort-2025", 40));
    assert!(
        text.contains("BROKEN cohort/cohort-2025 version 40"),
        "{text}"
    );
    env.cleanup().await;
}

crate::both_backends!(
    verify_finds_a_deleted_last_event_through_the_command_ledger,
    deleted_last_event
);

async fn deleted_last_event(env: TestEnv) {
    let (env, code, report, text) = tampered(
        env,
        "DELETE FROM events WHERE stream_type = 'field_study' AND stream_id = 'fs25-c'
           AND stream_version = (SELECT max(stream_version) FROM events WHERE stream_id = 'fs25-c')",
        None,
    )
    .await;
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(only_break(&report).0, "field_study/fs25-c");
    assert!(only_break(&report).2.contains("ledger"));
    env.cleanup().await;
}

#[tokio::test]
async fn rows_written_before_the_chain_are_sealed_with_the_same_hashes() {
    let env = TestEnv::new("verify_seal").await;
    env.import(COHORT).await;
    let hashes = |env: &TestEnv| {
        let pool = env.pool().clone();
        async move {
            pool.get()
                .await
                .unwrap()
                .query("SELECT position, hash FROM events ORDER BY position", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, Option<Vec<u8>>>(1)))
                .collect::<Vec<_>>()
        }
    };
    let before = hashes(&env).await;
    // As a journal written before migration V2 would be: no chain columns set.
    env.pool()
        .get()
        .await
        .unwrap()
        .batch_execute("ALTER TABLE events DROP CONSTRAINT events_chained")
        .await
        .unwrap();
    as_superuser(&env, "UPDATE events SET hash = NULL, prev_hash = NULL").await;
    env.pool()
        .get()
        .await
        .unwrap()
        .batch_execute(
            "ALTER TABLE events ADD CONSTRAINT events_chained
             CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32) NOT VALID",
        )
        .await
        .unwrap();
    assert!(hashes(&env).await.iter().all(|(_, h)| h.is_none()));
    // Any command opens the database, which seals them.
    let (code, _, text) = verify(&env, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(hashes(&env).await, before);
    // Sealing is the only update allowed: a sealed row cannot be changed.
    let refused = env
        .pool()
        .get()
        .await
        .unwrap()
        .execute("UPDATE events SET hash = NULL WHERE position = 1", &[])
        .await;
    assert!(refused.is_err());
    env.cleanup().await;
}

#[tokio::test]
async fn stream_and_actor_histories_show_every_envelope_field_with_filters() {
    let env = TestEnv::new("audit_history").await;
    env.import(COHORT).await;
    let doc = json_of(&run(
        &env,
        &["audit", "history", "--stream", "field_study/fs25-a"],
    ));
    let events = doc["events"].as_array().unwrap();
    let count: i64 = env
        .pool()
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = 'fs25-a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events.len() as i64, count);
    assert_eq!(doc["stream"], "field_study/fs25-a");
    let mut previous_hash = "0".repeat(64);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["stream_version"], i as i64 + 1);
        for field in [
            "position",
            "event_type",
            "event_version",
            "occurred_at",
            "recorded_at",
            "actor",
            "command_id",
            "correlation_id",
            "causation_id",
            "event_id",
            "payload",
            "hash",
        ] {
            assert!(!e[field].is_null(), "{field} in {e}");
        }
        assert_eq!(e["prev_hash"], previous_hash.as_str());
        previous_hash = e["hash"].as_str().unwrap().to_owned();
    }
    // By actor, and by a range on the world's clock.
    let by_actor = json_of(&run(
        &env,
        &[
            "audit",
            "history",
            "--stream",
            "field_study/fs25-a",
            "--actor",
            "facilitator:coordinator",
        ],
    ));
    let mine = by_actor["events"].as_array().unwrap();
    assert!(!mine.is_empty() && mine.len() < events.len());
    assert!(mine.iter().all(|e| e["actor"] == "facilitator:coordinator"
        || e["reported_actor"] == "facilitator:coordinator"));
    let ranged = json_of(&run(
        &env,
        &[
            "audit",
            "history",
            "--stream",
            "field_study/fs25-a",
            "--clock",
            "occurred",
            "--from",
            "2025-12-01T00:00:00+01:00",
            "--to",
            "2026-01-01T00:00:00+01:00",
        ],
    ));
    let ranged = ranged["events"].as_array().unwrap();
    let inside = events
        .iter()
        .filter(|e| {
            let t = e["occurred_at"].as_str().unwrap();
            ("2025-11-30T23:00:00Z".."2025-12-31T23:00:00Z").contains(&t)
        })
        .count();
    assert!(inside > 0);
    assert_eq!(ranged.len(), inside);
    // What one actor did, everywhere, in log order.
    let actor = json_of(&run(&env, &["audit", "actor", "jury:president"]));
    let acts = actor["events"].as_array().unwrap();
    assert!(!acts.is_empty());
    assert!(acts
        .iter()
        .all(|e| e["actor"] == "jury:president" || e["reported_actor"] == "jury:president"));
    let positions: Vec<i64> = acts
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    // Unknown stream or bad arguments: a message and a non-zero exit.
    let missing = run(&env, &["audit", "history", "--stream", "field_study/nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no events in stream field_study/nope")
    );
    let bad = run(&env, &["audit", "history", "--stream", "invoice/1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--stream"));
    let bad = run(
        &env,
        &[
            "audit",
            "history",
            "--stream",
            "cohort/cohort-2025",
            "--from",
            "last week",
        ],
    );
    assert!(!bad.status.success());

    // The same over HTTP.
    let (base, client, stop, task) = serve(&env).await;
    let (status, body) = get(
        &client,
        &format!("{base}/audit/streams/field_study/fs25-a?actor=facilitator:coordinator"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, by_actor);
    let (status, body) = get(&client, &format!("{base}/audit/actors/jury:president")).await;
    assert_eq!((status, &body), (200, &actor));
    let (status, body) = get(
        &client,
        &format!("{base}/audit/streams/field_study/fs25-a?from=yesterday"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["message"].as_str().unwrap().starts_with("from:"),
        "{body}"
    );
    let (status, _) = get(
        &client,
        &format!("{base}/audit/streams/field_study/fs25-a?clock=wall"),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = get(&client, &format!("{base}/audit/streams/field_study/nope")).await;
    assert_eq!(status, 404);
    let (status, _) = get(&client, &format!("{base}/audit/streams/invoice/1")).await;
    assert_eq!(status, 404);

    // The history entries carry, for each revision, the previous value and the reason.
    let history = env.document("history", "fs25-a").await.unwrap();
    let renegotiated: Vec<&Value> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "commission_renegotiated")
        .collect();
    assert!(!renegotiated.is_empty());
    for e in renegotiated {
        assert_eq!(
            e["previous"]["version"].as_i64().unwrap() + 1,
            e["new"]["version"].as_i64().unwrap()
        );
        assert!(e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn an_imported_lines_actor_is_found_beside_the_operator_and_covered_by_the_hash() {
    let env = TestEnv::new("audit_reported").await;
    let cohort = format!("{}/../data/cohort-2025.jsonl", env!("CARGO_MANIFEST_DIR"));
    let import = run(&env, &["import", &cohort, "--operator", "alice"]);
    assert_eq!(import.status.code(), Some(0), "{}", stdout(&import));
    // The operator is the events' actor; each line's actor is kept as reported_actor.
    let by_operator = json_of(&run(&env, &["audit", "actor", "staff:alice"]));
    assert_eq!(by_operator["count"], 210);
    let jury = json_of(&run(&env, &["audit", "actor", "jury:president"]));
    let acts = jury["events"].as_array().unwrap();
    assert!(!acts.is_empty());
    assert!(acts
        .iter()
        .all(|e| e["actor"] == "staff:alice" && e["reported_actor"] == "jury:president"));
    let (code, _, text) = verify(&env, &[]);
    assert_eq!(code, Some(0), "{text}");
    // reported_actor is covered by the hash.
    let position = acts[0]["position"].as_i64().unwrap();
    as_superuser(
        &env,
        &format!(
            "UPDATE events SET reported_actor = 'jury:someone-else' WHERE position = {position}"
        ),
    )
    .await;
    let (code, report, text) = verify(&env, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(
        only_break(&report).1,
        acts[0]["stream_version"].as_i64().unwrap()
    );
    env.cleanup().await;
}

/// (learner, session) pairs and half-days counted by each `session_held` of a cohort, read
/// straight from the journal.
async fn held_pairs(env: &TestEnv, cohort: &str) -> BTreeMap<(String, String), u64> {
    let client = env.pool().get().await.unwrap();
    let rows = client
        .query(
            "SELECT payload FROM events WHERE stream_type = 'cohort' AND stream_id = $1 AND event_type = 'session_held'",
            &[&cohort],
        )
        .await
        .unwrap();
    let mut pairs = BTreeMap::new();
    for row in rows {
        let p: Value = row.get(0);
        for list in ["present", "excused", "absent"] {
            for l in p[list].as_array().unwrap() {
                pairs.insert(
                    (
                        l.as_str().unwrap().to_owned(),
                        p["session_id"].as_str().unwrap().to_owned(),
                    ),
                    p["half_days"].as_u64().unwrap(),
                );
            }
        }
    }
    pairs
}

#[tokio::test]
async fn the_attendance_register_of_cohort_2025_has_one_row_per_learner_and_held_session() {
    let env = TestEnv::new("attendance").await;
    env.import(COHORT).await;
    // Granularity chosen: one row per (learner, held session), with its half-days and slot;
    // --by half-day gives one row per (learner, half-day).
    let register = json_of(&run(
        &env,
        &["audit", "attendance", "--cohort", "cohort-2025"],
    ));
    assert_eq!(register["granularity"], "session");
    let rows = register["rows"].as_array().unwrap();
    let pairs = held_pairs(&env, "cohort-2025").await;
    let got: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["learner_id"].as_str().unwrap().to_owned(),
                r["session_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rows.len(), pairs.len(), "one row per pair");
    assert_eq!(got, pairs.keys().cloned().collect::<BTreeSet<_>>());
    // The withdrawn learner has rows only for sessions recorded before the withdrawal.
    let withdrawn = rows.iter().filter(|r| r["learner_id"] == "l25-08").count();
    assert!(
        withdrawn > 0 && withdrawn < rows.iter().filter(|r| r["learner_id"] == "l25-01").count()
    );
    for r in rows {
        for field in [
            "module_id",
            "date",
            "slot",
            "facilitator",
            "status",
            "recorded_status",
            "half_days",
        ] {
            assert!(!r[field].is_null(), "{field} in {r}");
        }
        assert!(["AM", "PM", "AM+PM"].contains(&r["slot"].as_str().unwrap()));
        assert_eq!(
            r["recorded"]["actor"].as_str().map(|a| a.contains(':')),
            Some(true)
        );
    }
    // Corrections keep the reason, the actor and both clocks.
    let corrected: Vec<&Value> = rows
        .iter()
        .filter(|r| !r["corrections"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(corrected.len(), 5);
    for r in &corrected {
        let c = &r["corrections"][0];
        assert_eq!(c["reason"], "Justificatif médical reçu");
        assert_eq!(c["status"], "excused");
        assert_eq!(r["status"], "excused");
        assert!(
            c["occurred_at"].is_string() && c["recorded_at"].is_string() && c["actor"].is_string()
        );
    }
    // Totals match the transcripts.
    let totals: BTreeMap<(String, String), &Value> = register["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                (
                    t["learner_id"].as_str().unwrap().to_owned(),
                    t["module_id"].as_str().unwrap().to_owned(),
                ),
                t,
            )
        })
        .collect();
    for (kind, key, transcript) in env.documents().await {
        if kind != "transcript" {
            continue;
        }
        let learner = key.split_once('/').unwrap().1;
        for m in transcript["modules"].as_array().unwrap() {
            let module = m["module_id"].as_str().unwrap();
            let zero = json!({"held_half_days": 0, "attended_half_days": 0, "excused_half_days": 0, "absent_half_days": 0});
            let t = totals
                .get(&(learner.to_owned(), module.to_owned()))
                .copied()
                .unwrap_or(&zero);
            for field in [
                "held_half_days",
                "attended_half_days",
                "excused_half_days",
                "absent_half_days",
            ] {
                assert_eq!(t[field], m[field], "{learner} {module} {field}");
            }
        }
    }
    // Nothing to flag on the clean cohort.
    assert_eq!(register["anomalies"], json!([]));
    assert!(rows.iter().all(|r| r["flags"] == json!([])));
    // One row per half-day on request.
    let by_half_day = json_of(&run(
        &env,
        &[
            "audit",
            "attendance",
            "--cohort",
            "cohort-2025",
            "--by",
            "half-day",
        ],
    ));
    assert_eq!(
        by_half_day["rows"].as_array().unwrap().len() as u64,
        pairs.values().sum::<u64>()
    );
    // CSV over the CLI and over HTTP: a header and one line per row.
    let csv = stdout(&run(
        &env,
        &[
            "audit",
            "attendance",
            "--cohort",
            "cohort-2025",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(csv.starts_with("cohort_id,learner_id,learner_name,session_id,module_id"));
    let missing = run(&env, &["audit", "attendance", "--cohort", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    let (base, client, stop, task) = serve(&env).await;
    let response = client
        .get(format!(
            "{base}/audit/cohorts/cohort-2025/attendance?format=csv"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(response.text().await.unwrap(), csv);
    let (status, body) = get(
        &client,
        &format!("{base}/audit/cohorts/cohort-2025/attendance"),
    )
    .await;
    assert_eq!((status, &body), (200, &register));
    let (status, _) = get(
        &client,
        &format!("{base}/audit/cohorts/cohort-2025/attendance?format=pdf"),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = get(&client, &format!("{base}/audit/cohorts/nope/attendance")).await;
    assert_eq!(status, 404);
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn each_attendance_anomaly_is_raised_by_a_purpose_built_input() {
    let env = TestEnv::new("anomalies").await;
    let mut lines = vec![
        json!({"command": "define_programme", "at": "2025-06-01T10:00:00+02:00", "data": {"programme_id": "pa", "title": "P",
               "modules": [{"module_id": "m1", "title": "M1", "half_days": 40, "units": []}]}}),
        json!({"command": "open_cohort", "at": "2025-06-02T10:00:00+02:00", "data": {"cohort_id": "ca", "programme_id": "pa", "title": "A", "starts_on": "2025-09-01", "ends_on": "2026-06-30"}}),
        json!({"command": "open_cohort", "at": "2025-06-02T10:00:00+02:00", "data": {"cohort_id": "cb", "programme_id": "pa", "title": "B", "starts_on": "2025-09-01", "ends_on": "2026-06-30"}}),
    ];
    for (cohort, learner) in [("ca", "la"), ("ca", "lb"), ("cb", "la")] {
        lines.push(json!({"command": "enrol_learner", "at": "2025-06-03T10:00:00+02:00", "data": {"cohort_id": cohort, "learner_id": learner, "name": format!("Name {learner}"), "deis_pathway": false}}));
    }
    // (cohort, session, start, end, half-days, facilitator, recorded at)
    let sessions = [
        (
            "ca",
            "s-holiday",
            "2025-11-11T09:00:00+01:00",
            "2025-11-11T12:30:00+01:00",
            1,
            "facilitator:x",
            "2025-11-11T12:30:00+01:00",
        ),
        (
            "ca",
            "s-sunday",
            "2025-11-16T09:00:00+01:00",
            "2025-11-16T12:30:00+01:00",
            1,
            "facilitator:x",
            "2025-11-16T12:30:00+01:00",
        ),
        (
            "ca",
            "s-late",
            "2025-11-18T09:00:00+01:00",
            "2025-11-18T12:30:00+01:00",
            1,
            "facilitator:x",
            "2025-12-05T09:00:00+01:00",
        ),
        (
            "ca",
            "s-corrected",
            "2025-11-19T09:00:00+01:00",
            "2025-11-19T12:30:00+01:00",
            1,
            "facilitator:x",
            "2025-11-19T12:30:00+01:00",
        ),
        (
            "ca",
            "s-overlap",
            "2025-11-20T09:00:00+01:00",
            "2025-11-20T17:00:00+01:00",
            2,
            "facilitator:x",
            "2025-11-20T17:30:00+01:00",
        ),
        (
            "cb",
            "x-overlap",
            "2025-11-20T13:30:00+01:00",
            "2025-11-20T17:00:00+01:00",
            1,
            "facilitator:y",
            "2025-11-20T17:30:00+01:00",
        ),
        (
            "ca",
            "s-facilitator",
            "2025-11-21T09:00:00+01:00",
            "2025-11-21T12:30:00+01:00",
            1,
            "learner:lb",
            "2025-11-21T12:30:00+01:00",
        ),
        (
            "ca",
            "s-clean",
            "2025-11-25T09:00:00+01:00",
            "2025-11-25T12:30:00+01:00",
            1,
            "facilitator:x",
            "2025-11-25T12:30:00+01:00",
        ),
        (
            "ca",
            "s-after",
            "2025-12-22T09:00:00+01:00",
            "2025-12-22T12:30:00+01:00",
            1,
            "facilitator:x",
            "2025-12-22T12:30:00+01:00",
        ),
    ];
    for (cohort, id, from, to, half_days, facilitator, _) in sessions {
        lines.push(json!({"command": "schedule_session", "at": "2025-09-01T10:00:00+02:00", "data": {"cohort_id": cohort, "session_id": id, "module_id": "m1",
            "kind": "course", "starts_at": from, "ends_at": to, "half_days": half_days, "facilitator": facilitator}}));
    }
    for (cohort, id, _, _, _, _, at) in sessions {
        let present = if cohort == "cb" {
            json!(["la"])
        } else {
            json!(["la", "lb"])
        };
        lines.push(json!({"command": "record_session", "at": at, "data": {"cohort_id": cohort, "session_id": id, "present": present, "excused": []}}));
    }
    // 41 days after the session, before the cohort closes: late.
    lines.push(json!({"command": "correct_attendance", "at": "2025-12-30T10:00:00+01:00", "data": {"cohort_id": "ca", "session_id": "s-corrected", "learner_id": "la", "status": "excused", "reason": "Justificatif tardif"}}));
    lines.push(json!({"command": "close_cohort", "at": "2026-01-10T10:00:00+01:00", "data": {"cohort_id": "ca"}}));
    // 21 days after the session (not late), but after the close.
    lines.push(json!({"command": "correct_attendance", "at": "2026-01-12T10:00:00+01:00", "data": {"cohort_id": "ca", "session_id": "s-after", "learner_id": "la", "status": "excused", "reason": "Oubli"}}));
    let text: Vec<String> = lines
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            l["command_id"] = json!(format!("an-{i}"));
            l["actor"] = json!("staff:coordinator");
            l.to_string()
        })
        .collect();
    let report = env.import(&text.join("\n")).await;
    assert_eq!(report.rejected, 0, "{:?}", report.lines);

    let register = json_of(&run(&env, &["audit", "attendance", "--cohort", "ca"]));
    let found: BTreeSet<(String, String, Option<String>)> = register["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["flag"].as_str().unwrap().to_owned(),
                a["session_id"].as_str().unwrap().to_owned(),
                a["learner_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, Option<String>)> = [
        ("public_holiday", "s-holiday", None),
        ("sunday", "s-sunday", None),
        ("late_attendance_record", "s-late", None),
        ("late_correction", "s-corrected", Some("la")),
        ("overlapping_presence", "s-overlap", Some("la")),
        ("facilitator_is_learner", "s-facilitator", Some("lb")),
        ("correction_after_close", "s-after", Some("la")),
    ]
    .into_iter()
    .map(|(f, s, l)| (f.to_owned(), s.to_owned(), l.map(str::to_owned)))
    .collect();
    assert_eq!(found, want, "{}", register["anomalies"]);
    // Flags sit on the rows concerned, none on the clean session.
    let flags = |session: &str, learner: &str| -> Value {
        register["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["session_id"] == session && r["learner_id"] == learner)
            .map(|r| r["flags"].clone())
            .unwrap()
    };
    assert_eq!(flags("s-holiday", "lb"), json!(["public_holiday"]));
    assert_eq!(flags("s-overlap", "la"), json!(["overlapping_presence"]));
    assert_eq!(flags("s-overlap", "lb"), json!([]));
    assert_eq!(flags("s-after", "la"), json!(["correction_after_close"]));
    assert_eq!(flags("s-clean", "la"), json!([]));
    assert_eq!(flags("s-clean", "lb"), json!([]));
    assert!(register["closed_at"].is_string());
    // The CSV carries the flags too.
    let csv = stdout(&run(
        &env,
        &["audit", "attendance", "--cohort", "ca", "--format", "csv"],
    ));
    assert!(csv.contains(",late_attendance_record\r\n"), "{csv}");
    env.cleanup().await;
}
