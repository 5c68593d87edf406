//! The bulk path of the import (`CommandHandler::handle_batch`, `Backend::append_batch`) on
//! both backends: one batch answers exactly what line-by-line judging answers, the batch
//! append is all or nothing, and concurrent batches on one aggregate lose nothing.

use crate::helpers::{TestEnv, COHORT, RULES};
use fieldtrail_journal::{AppendRequest, CommandMetadata, JournalError};
use serde_json::{json, Value};

/// The outcomes without what differs between two journals by construction: nothing (the
/// positions are compared too, both journals starting empty).
fn outcomes(values: Vec<fieldtrail::handler::Outcome>) -> Vec<Value> {
    values
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect()
}

/// Read models with the clock of the recording removed (two runs record at other instants).
fn without_recording_times(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "recorded_at" && k != "recorded_at_local")
                .map(|(k, v)| (k, without_recording_times(v)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(without_recording_times).collect())
        }
        other => other,
    }
}

crate::both_backends!(
    one_batch_answers_what_line_by_line_judging_answers,
    one_batch_answers_what_line_by_line_judging_answers_on
);

/// The shipped cohort then every rule probe (rejections, duplicates, look-ups across
/// aggregates decided against the batch's own earlier lines) in ONE batch, against the same
/// lines judged one by one on a second journal: the same outcome for every line (positions
/// included), the same events, the same read models.
async fn one_batch_answers_what_line_by_line_judging_answers_on(env: TestEnv) {
    let twin = twin(&env, "bulk_twin").await;
    let lines: Vec<&str> = COHORT
        .lines()
        .chain(RULES.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let now = chrono::Utc::now();
    let batched = outcomes(env.handler().handle_batch(&lines, now, None).await.unwrap());
    let handler = twin.handler();
    let mut one_by_one = Vec::new();
    for line in &lines {
        one_by_one.push(handler.handle_json(line, now).await.unwrap());
    }
    let one_by_one = outcomes(one_by_one);
    assert_eq!(batched.len(), lines.len());
    for (n, (b, o)) in batched.iter().zip(&one_by_one).enumerate() {
        assert_eq!(b, o, "line {}", n + 1);
    }
    let rejected = batched
        .iter()
        .filter(|o| o["outcome"] == "rejected")
        .count();
    let duplicates = batched
        .iter()
        .filter(|o| o["outcome"] == "duplicate")
        .count();
    assert!(
        rejected > 50 && duplicates > 0,
        "{rejected} rejected, {duplicates} duplicates"
    );
    assert_eq!(env.event_count().await, twin.event_count().await);
    env.project().await;
    twin.project().await;
    assert_eq!(
        comparable(env.documents().await),
        comparable(twin.documents().await)
    );
    let report = env.journal.verify(None).await.unwrap();
    assert!(report.intact(), "{report:?}");
    twin.cleanup().await;
    env.cleanup().await;
}

/// A second journal on the same backend as `env`, for judging the same lines another way.
async fn twin(env: &TestEnv, name: &str) -> TestEnv {
    match env.journal.kind() {
        fieldtrail_journal::BackendKind::Postgres => TestEnv::new(name).await,
        fieldtrail_journal::BackendKind::Sqlite => TestEnv::sqlite(name).await,
    }
}

/// Documents as two journals' can be compared: without their recording times.
fn comparable(documents: Vec<(String, String, Value)>) -> Vec<(String, String, Value)> {
    documents
        .into_iter()
        .map(|(k, key, v)| (k, key, without_recording_times(v)))
        .collect()
}

fn request(stream_id: &str, expected: i64, command_id: &str) -> AppendRequest {
    AppendRequest {
        stream_type: "cohort".to_owned(),
        stream_id: stream_id.to_owned(),
        expected,
        events: vec![(
            "cohort_closed".to_owned(),
            "1".to_owned(),
            json!({ "cohort_id": stream_id }),
        )],
        metadata: CommandMetadata {
            reported_actor: None,
            command_id: command_id.to_owned(),
            command: "close_cohort".to_owned(),
            actor: "staff:test".to_owned(),
            occurred_at: "2025-01-01T10:00:00+01:00".parse().unwrap(),
            correlation_id: command_id.to_owned(),
            causation_id: command_id.to_owned(),
            event_ids: Vec::new(),
        },
    }
}

crate::both_backends!(
    a_batch_append_is_all_or_nothing,
    a_batch_append_is_all_or_nothing_on
);

/// Requests chained on one stream and spread on two: positions in the batch's order, the
/// hash chain verifies; a wrong expected version or a known command id anywhere in a batch
/// appends nothing of it.
async fn a_batch_append_is_all_or_nothing_on(env: TestEnv) {
    let journal = &env.journal;
    let positions = journal
        .append_batch(&[
            request("a", 0, "b1"),
            request("b", 0, "b2"),
            request("a", 1, "b3"),
        ])
        .await
        .unwrap();
    let flat: Vec<i64> = positions.iter().flatten().copied().collect();
    assert_eq!(flat.len(), 3);
    assert!(flat.windows(2).all(|w| w[0] < w[1]), "{flat:?}");
    let a = journal.stream("cohort", "a", 0).await.unwrap();
    assert_eq!(
        a.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(a[1].position, positions[2][0]);
    assert_eq!(
        journal.applied("b3").await.unwrap().unwrap().first_position,
        positions[2][0]
    );
    assert!(journal.verify(None).await.unwrap().intact());

    // b is at 1, not 0; a second request on a at 2 expects 2 but says 3.
    for (bad, what) in [
        (vec![request("a", 2, "c1"), request("b", 0, "c2")], "stale"),
        (vec![request("a", 2, "c1"), request("a", 4, "c2")], "gap"),
    ] {
        let err = journal.append_batch(&bad).await.unwrap_err();
        assert!(
            matches!(err, JournalError::VersionConflict { .. }),
            "{what}: {err}"
        );
        assert_eq!(env.event_count().await, 3, "{what}");
        assert!(journal.applied("c1").await.unwrap().is_none(), "{what}");
    }
    let err = journal
        .append_batch(&[request("a", 2, "d1"), request("b", 1, "b1")])
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::DuplicateCommand(_)), "{err}");
    assert_eq!(env.event_count().await, 3);
    assert!(journal.applied("d1").await.unwrap().is_none());
    assert!(journal.append_batch(&[]).await.unwrap().is_empty());
    env.cleanup().await;
}

crate::both_backends!(
    concurrent_batches_on_one_cohort_lose_nothing,
    concurrent_batches_on_one_cohort_lose_nothing_on
);

/// Weekday `n` from 2025-11-03 on.
fn day(n: usize) -> String {
    let monday = chrono::NaiveDate::from_ymd_opt(2025, 11, 3).unwrap();
    (monday + chrono::Days::new((n / 5 * 7 + n % 5) as u64)).to_string()
}

/// A `schedule_session` of importer `importer` (0: mornings, 1: afternoons), its `n`th.
fn schedule(importer: usize, n: usize) -> String {
    json!({
        "command_id": format!("bulk-{importer}-{n}"), "command": "schedule_session",
        "at": "2025-07-06T11:00:00+02:00", "actor": "staff:coordinator",
        "data": {
            "cohort_id": "cohort-2025", "session_id": format!("sb-{importer}-{n:03}"),
            "module_id": "m1", "kind": "course",
            "starts_at": format!("{}T{}:00:00+01:00", day(n), ["09", "14"][importer]),
            "ends_at": format!("{}T{}:00:00+01:00", day(n), ["12", "17"][importer]),
            "half_days": 1, "facilitator": "facilitator:intervenant-a", "unit_id": "m1-1"
        }
    })
    .to_string()
}

/// Two handlers (two importers) send batches of sessions for the same cohort at the same
/// time: where their appends collide, the loser judges its lines again one by one; every
/// session is scheduled once.
async fn concurrent_batches_on_one_cohort_lose_nothing_on(env: TestEnv) {
    let opening: Vec<&str> = COHORT
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(13)
        .collect();
    let now = chrono::Utc::now();
    let setup = env
        .handler()
        .handle_batch(&opening, now, None)
        .await
        .unwrap();
    assert!(setup
        .iter()
        .all(|o| matches!(o, fieldtrail::handler::Outcome::Applied { .. })));
    let mut tasks = Vec::new();
    for importer in 0..2 {
        let handler = env.handler();
        tasks.push(tokio::spawn(async move {
            let mut applied = 0;
            for round in 0..4 {
                let lines: Vec<String> = (0..20)
                    .map(|n| schedule(importer, round * 20 + n))
                    .collect();
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                let outcomes = handler.handle_batch(&refs, now, None).await.unwrap();
                for o in outcomes {
                    match o {
                        fieldtrail::handler::Outcome::Applied { .. } => applied += 1,
                        other => panic!("{other:?}"),
                    }
                }
            }
            applied
        }));
    }
    let mut applied = 0;
    for t in tasks {
        applied += t.await.unwrap();
    }
    assert_eq!(applied, 2 * 4 * 20);
    let cohort = env
        .journal
        .stream("cohort", "cohort-2025", 0)
        .await
        .unwrap();
    let scheduled = cohort
        .iter()
        .filter(|e| e.event_type == "session_scheduled" && e.command_id.starts_with("bulk-"))
        .count();
    assert_eq!(scheduled, 2 * 4 * 20);
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}

crate::both_backends!(
    re_importing_a_file_gives_the_first_answers_and_adds_nothing,
    re_importing_a_file_gives_the_first_answers_and_adds_nothing_on
);

/// FORMAT.md: "Re-importing a whole file adds nothing", even where a refused line would
/// apply now. The harder probes up to the jury made whole again: line 31 (`record_defence`)
/// is refused while the jury lacks a training-centre member; lines 35–39 complete the jury, so
/// the same line decided afresh would now apply. Imported again, every line answers its first
/// answer (applied: `duplicate` at the same positions; refused: the same code and message,
/// the personal values it quoted withheld as kept: `personal::redact`), nothing is appended; sent alone over the handler's path too; and the same outcomes under a
/// new command id do apply.
async fn re_importing_a_file_gives_the_first_answers_and_adds_nothing_on(env: TestEnv) {
    let lines: Vec<&str> = include_str!("../data/harder.jsonl")
        .lines()
        .take(39)
        .collect();
    let now = chrono::Utc::now();
    let handler = env.handler();
    let first = outcomes(handler.handle_batch(&lines, now, None).await.unwrap());
    assert_eq!(first[30]["outcome"], "rejected", "{}", first[30]);
    assert_eq!(first[30]["code"], "conflict");
    let events = env.event_count().await;
    let expected: Vec<Value> = first
        .iter()
        .zip(&lines)
        .map(|(o, line)| {
            let mut o = o.clone();
            if o["outcome"] == "applied" {
                o["outcome"] = json!("duplicate");
            }
            if let Some(message) = o["message"].as_str() {
                // The kept refusal holds no personal value (a jury member's name).
                let command: Value = serde_json::from_str(line).unwrap();
                let kept = fieldtrail_domain::personal::redact(
                    command["command"].as_str().unwrap(),
                    &command["data"],
                    message,
                );
                o["message"] = json!(kept);
            }
            o
        })
        .collect();
    assert!(
        expected.iter().any(|o| o["message"]
            == "data.name: \"[donnée personnelle]\" is not on the jury of defence d1"),
        "a refusal quoting a name is among the lines"
    );
    // Through a fresh handler (a restarted server: nothing kept in memory).
    let again = outcomes(env.handler().handle_batch(&lines, now, None).await.unwrap());
    assert_eq!(again, expected);
    assert_eq!(
        env.event_count().await,
        events,
        "a re-import appends nothing"
    );
    let alone = outcomes(vec![env
        .handler()
        .handle_json(lines[30], now)
        .await
        .unwrap()]);
    assert_eq!(alone[0], first[30]);
    assert_eq!(env.event_count().await, events);
    // The same fact under a new id is judged on today's state: it applies.
    let renamed = lines[30].replace("\"h-x031\"", "\"h-x031-again\"");
    let applied = outcomes(vec![handler.handle_json(&renamed, now).await.unwrap()]);
    assert_eq!(applied[0]["outcome"], "applied", "{}", applied[0]);
    assert_eq!(env.event_count().await, events + 4, "one event per outcome");
    env.cleanup().await;
}

crate::both_backends!(
    one_command_id_gets_one_answer_when_two_servers_race,
    one_command_id_gets_one_answer_when_two_servers_race_on
);

/// One id sent at the same instant to two handlers (two servers, each with its own cache) with
/// two bodies: one the rules apply (enrol a new learner), one they refuse (enrol a learner
/// already enrolled, `already_exists`). Whichever commits first, both answers are that one
/// answer (`applied`/`duplicate`, or the refusal twice), and the journal holds the id in the
/// ledger or among the refusals, never both.
async fn one_command_id_gets_one_answer_when_two_servers_race_on(env: TestEnv) {
    let lines: Vec<&str> = include_str!("../data/harder.jsonl")
        .lines()
        .take(9)
        .collect();
    let now = chrono::Utc::now();
    env.handler().handle_batch(&lines, now, None).await.unwrap();
    let (one, two) = (env.handler(), env.handler());
    let enrol = |id: &str, learner: &str| {
        json!({"command_id": id, "command": "enrol_learner", "at": "2025-09-02T09:00:00+02:00",
               "actor": "staff:coordinator", "data": {"cohort_id": "h-cohort",
               "learner_id": learner, "name": "Personne", "deis_pathway": false}})
        .to_string()
    };
    for round in 0..16 {
        let id = format!("race-{round}");
        let (fresh, known) = (enrol(&id, &format!("h-new-{round}")), enrol(&id, "h-l1"));
        let (a, b) = tokio::join!(one.handle_json(&fresh, now), two.handle_json(&known, now));
        let kind = |o: &fieldtrail::Outcome| -> Value {
            let v = serde_json::to_value(o).unwrap();
            match v["outcome"].as_str() {
                Some("applied") | Some("duplicate") => json!(["applied", v["positions"]]),
                _ => json!(["rejected", v["code"], v["message"]]),
            }
        };
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(kind(&a), kind(&b), "{id}: {a:?} / {b:?}");
        let applied = env.journal.applied(&id).await.unwrap();
        let refused = env
            .journal
            .rejected_many(std::slice::from_ref(&id))
            .await
            .unwrap();
        assert!(
            applied.is_some() == refused.is_empty(),
            "{id}: ledger {applied:?}, refusals {refused:?}"
        );
    }
    env.cleanup().await;
}

/// `n` generated cohort copies from copy `from` (203 lines each), as import lines.
fn copies(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .flat_map(|c| {
            fieldtrail::cli::generate::cohort(c)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

crate::both_backends!(
    pipelined_batches_answer_what_batches_one_after_the_other_answer,
    pipelined_batches_answer_what_batches_one_after_the_other_answer_on
);

/// Three batches, each decided while the one before is appended
/// (`handle_lines_with_progress`): nine cohort copies (the second batch decides the fifth
/// copy's later lines on the states the first batch's lines left, not yet appended), then the
/// rule probes, the shipped cohort, the probes again, the first copy again (applied before)
/// and the sixth copy again (command ids of the batch still being appended: that batch is
/// decided again once the append is done). Against the same lines in the same batches judged
/// one batch after the other on a second journal: the same outcome for every line
/// (positions included), the same events, the same read models.
async fn pipelined_batches_answer_what_batches_one_after_the_other_answer_on(env: TestEnv) {
    let twin = twin(&env, "pipeline_twin").await;
    let mut owned = copies(1, 9);
    owned.extend(RULES.lines().map(str::to_owned));
    owned.extend(COHORT.lines().map(str::to_owned));
    owned.extend(RULES.lines().map(str::to_owned));
    owned.extend(copies(1, 1));
    owned.extend(copies(6, 1));
    let lines: Vec<&str> = owned
        .iter()
        .map(String::as_str)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(lines.len() > 2 * fieldtrail::bulk::BATCH_LINES);
    let now = chrono::Utc::now();
    let progress = fieldtrail::cli::progress::Progress::hidden();
    let piped = outcomes(
        env.handler()
            .handle_lines_with_progress(&lines, &|| now, None, &progress)
            .await
            .unwrap(),
    );
    let handler = twin.handler();
    let mut one_by_one = Vec::new();
    for batch in lines.chunks(fieldtrail::bulk::BATCH_LINES) {
        one_by_one.extend(handler.handle_batch(batch, now, None).await.unwrap());
    }
    let one_by_one = outcomes(one_by_one);
    assert_eq!(piped.len(), lines.len());
    for (n, (p, o)) in piped.iter().zip(&one_by_one).enumerate() {
        assert_eq!(p, o, "line {}", n + 1);
    }
    let count = |what: &str| piped.iter().filter(|o| o["outcome"] == what).count();
    assert!(
        count("rejected") > 100 && count("duplicate") >= 406 && count("applied") > 2000,
        "{} applied, {} rejected, {} duplicates",
        count("applied"),
        count("rejected"),
        count("duplicate")
    );
    assert_eq!(env.event_count().await, twin.event_count().await);
    env.project().await;
    twin.project().await;
    assert_eq!(
        comparable(env.documents().await),
        comparable(twin.documents().await)
    );
    assert!(env.journal.verify(None).await.unwrap().intact());
    twin.cleanup().await;
    env.cleanup().await;
}

crate::both_backends!(
    two_pipelined_imports_of_one_file_apply_each_line_once,
    two_pipelined_imports_of_one_file_apply_each_line_once_on
);

/// Two importers (two handlers, two caches) send the same file of eleven cohort copies at
/// the same time, each batch decided while its previous one is appended: where their appends
/// collide, the loser judges that batch one by one and decides its next batch again. Every
/// line is applied by exactly one of them, the other answering `duplicate` at the same
/// positions; the journal holds the events of one import and verifies.
async fn two_pipelined_imports_of_one_file_apply_each_line_once_on(env: TestEnv) {
    let owned = std::sync::Arc::new(copies(1, 11));
    let now = chrono::Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let handler = env.handler();
        let owned = owned.clone();
        tasks.push(tokio::spawn(async move {
            let lines: Vec<&str> = owned.iter().map(String::as_str).collect();
            let progress = fieldtrail::cli::progress::Progress::hidden();
            outcomes(
                handler
                    .handle_lines_with_progress(&lines, &|| now, None, &progress)
                    .await
                    .unwrap(),
            )
        }));
    }
    let a = tasks.remove(0).await.unwrap();
    let b = tasks.remove(0).await.unwrap();
    assert_eq!(a.len(), owned.len());
    assert_eq!(b.len(), owned.len());
    for (n, (x, y)) in a.iter().zip(&b).enumerate() {
        let pair = [x["outcome"].as_str(), y["outcome"].as_str()];
        assert!(
            pair == [Some("applied"), Some("duplicate")]
                || pair == [Some("duplicate"), Some("applied")],
            "line {}: {x} / {y}",
            n + 1
        );
        assert_eq!(x["positions"], y["positions"], "line {}", n + 1);
    }
    let single = {
        let twin = twin(&env, "pipeline_single").await;
        let lines: Vec<&str> = owned.iter().map(String::as_str).collect();
        let handler = twin.handler();
        for batch in lines.chunks(fieldtrail::bulk::BATCH_LINES) {
            handler.handle_batch(batch, now, None).await.unwrap();
        }
        let n = twin.event_count().await;
        twin.cleanup().await;
        n
    };
    assert_eq!(env.event_count().await, single);
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}
