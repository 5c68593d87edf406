//! The shipped cohort and the rule probes against their right answers, on both backends
//! (each test is `<name>::postgres` and `<name>::sqlite`: one body, two journals).

use crate::helpers::{TestEnv, COHORT, COHORT_EXPECTED, RULES, RULES_EXPECTED};
use serde_json::{json, Value};

fn doc_list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v[k].as_array().map(Vec::as_slice).unwrap_or(&[])
}

crate::both_backends!(
    cohort_2025_read_models_equal_the_expected_answers,
    cohort_2025_read_models_equal_the_expected_answers_on
);

async fn cohort_2025_read_models_equal_the_expected_answers_on(env: TestEnv) {
    let report = env.import(COHORT).await;
    let expected: Value = serde_json::from_str(COHORT_EXPECTED).unwrap();
    assert_eq!(
        report.applied as u64,
        expected["commands"].as_u64().unwrap()
    );
    assert_eq!((report.duplicate, report.rejected), (0, 0));
    let cohort = expected["cohort_id"].as_str().unwrap();

    // Timetable: module totals, then every session in order.
    let timetable = env.document("timetable", cohort).await.expect("timetable");
    assert_eq!(timetable["modules"], expected["timetable"]["modules"]);
    let sessions: Vec<Value> = doc_list(&timetable, "sessions")
        .iter()
        .map(|s| {
            json!({
                "session_id": s["session_id"], "module_id": s["module_id"], "status": s["status"],
                "starts_at_local": s["starts_at_local"], "half_days": s["half_days"],
                "previous_slots": doc_list(s, "previous_slots").len(),
            })
        })
        .collect();
    assert_eq!(Value::Array(sessions), expected["timetable"]["sessions"]);

    // Every learner's transcript.
    let transcripts = expected["transcripts"].as_object().unwrap();
    assert_eq!(transcripts.len(), 11);
    for (learner, want) in transcripts {
        let got = env
            .document("transcript", &format!("{cohort}/{learner}"))
            .await
            .expect("transcript");
        for field in [
            "status",
            "modules",
            "field_study_id",
            "defences",
            "certificate_awarded_on",
            "deis_credit",
        ] {
            assert_eq!(got[field], want[field], "{learner}: {field}");
        }
    }

    // Every field study's evaluation history.
    for (study, want) in expected["histories"].as_object().unwrap() {
        let got = env.document("history", study).await.expect("history");
        assert_eq!(got["members"], want["members"], "{study}: members");
        assert_eq!(
            got["commission"]["latest_version"], want["commission"]["latest_version"],
            "{study}"
        );
        assert_eq!(
            got["commission"]["agreed_version"], want["commission"]["agreed_version"],
            "{study}"
        );
        let reasons: Vec<Value> = doc_list(&got["commission"], "versions")
            .iter()
            .map(|v| v["reason"].clone())
            .collect();
        assert_eq!(
            Value::Array(reasons),
            want["commission"]["reasons"],
            "{study}: reasons"
        );
        let hypotheses: serde_json::Map<String, Value> = doc_list(&got, "hypotheses")
            .iter()
            .map(|h| {
                (
                    h["hypothesis_id"].as_str().unwrap().to_owned(),
                    json!({"status": h["status"], "texts": doc_list(h, "texts").len()}),
                )
            })
            .collect();
        assert_eq!(
            Value::Object(hypotheses),
            want["hypotheses"],
            "{study}: hypotheses"
        );
        assert_eq!(
            doc_list(&got, "productions").len() as u64,
            want["productions"].as_u64().unwrap(),
            "{study}: productions"
        );
        assert_eq!(
            doc_list(&got, "entries").len() as u64,
            want["entries"].as_u64().unwrap(),
            "{study}: entries"
        );
    }
    env.cleanup().await;
}

crate::both_backends!(
    rule_probes_get_the_expected_codes_and_rejections_append_nothing,
    rule_probes_get_the_expected_codes_and_rejections_append_nothing_on
);

async fn rule_probes_get_the_expected_codes_and_rejections_append_nothing_on(env: TestEnv) {
    let expected: Vec<Value> = serde_json::from_str(RULES_EXPECTED).unwrap();
    let handler = env.handler();
    let lines: Vec<&str> = RULES.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), expected.len());
    for (line, want) in lines.iter().zip(&expected) {
        let before = env.event_count().await;
        let outcome =
            serde_json::to_value(handler.handle_json(line, chrono::Utc::now()).await.unwrap())
                .unwrap();
        let after = env.event_count().await;
        let got = match outcome["outcome"].as_str().unwrap() {
            "applied" => "ok".to_owned(),
            "duplicate" => "duplicate".to_owned(),
            _ => outcome["code"].as_str().unwrap().to_owned(),
        };
        assert_eq!(
            got,
            want["expect"].as_str().unwrap(),
            "line {} ({}): {outcome}",
            want["line"],
            want["command_id"]
        );
        if got == "ok" {
            assert!(
                after > before,
                "line {}: applied but appended nothing",
                want["line"]
            );
        } else {
            assert_eq!(
                after, before,
                "line {}: {got} but appended events",
                want["line"]
            );
            if got != "duplicate" {
                assert!(!outcome["message"].as_str().unwrap().is_empty());
            }
        }
    }
    env.cleanup().await;
}

crate::both_backends!(
    importing_twice_appends_nothing_and_reports_duplicates,
    importing_twice_appends_nothing_and_reports_duplicates_on
);

async fn importing_twice_appends_nothing_and_reports_duplicates_on(env: TestEnv) {
    env.import(COHORT).await;
    let events = env.event_count().await;
    let documents = env.documents().await;
    let again = env.import(COHORT).await;
    assert_eq!(
        (again.applied, again.duplicate, again.rejected),
        (0, 203, 0)
    );
    assert!(again.lines.iter().all(|l| l.outcome == "duplicate"));
    assert_eq!(env.event_count().await, events);
    assert_eq!(env.documents().await, documents);
    env.cleanup().await;
}

crate::both_backends!(
    replay_rebuilds_documents_identical_to_live_ones,
    replay_rebuilds_documents_identical_to_live_ones_on
);

async fn replay_rebuilds_documents_identical_to_live_ones_on(env: TestEnv) {
    // Live: the projector runs after every few commands, as a server would.
    let handler = env.handler();
    for (i, line) in COHORT.lines().enumerate() {
        handler.handle_json(line, chrono::Utc::now()).await.unwrap();
        if i % 17 == 0 {
            env.project().await;
        }
    }
    env.project().await;
    let live = env.documents().await;
    assert_eq!(live.len(), 1 + 11 + 3);
    a_rebuild_writes(&env, &live).await;
    env.cleanup().await;
}

crate::both_backends!(
    a_projector_that_forgets_its_partitions_writes_what_a_rebuild_writes,
    a_projector_that_forgets_its_partitions_writes_what_a_rebuild_writes_on
);

/// The projector keeps only some cohort partitions in memory and folds the others again from
/// the journal when their events come: with batches of 7 events and nothing kept between
/// batches, over the three scenario files interleaved line by line (three cohorts, their field
/// studies, splits, defences, complaints), and a new projector (nothing in memory, not even
/// the programmes) every other round, the stored documents are a rebuild's.
async fn a_projector_that_forgets_its_partitions_writes_what_a_rebuild_writes_on(env: TestEnv) {
    use fieldtrail_projections::runner::{Limits, Projector};
    let files = [COHORT, RULES, include_str!("../data/harder.jsonl")];
    let mut lines: Vec<std::str::Lines> = files.iter().map(|f| f.lines()).collect();
    let handler = env.handler();
    let limits = Limits {
        batch: 7,
        cached_events: 0,
    };
    let mut projector = Projector::start_with(env.journal.clone(), limits)
        .await
        .unwrap();
    let mut handled = 0;
    let mut loaded = 0;
    let mut round = 0;
    loop {
        let mut any = false;
        for file in &mut lines {
            if let Some(line) = file.next() {
                handler.handle_json(line, chrono::Utc::now()).await.unwrap();
                handled += 1;
                any = true;
            }
        }
        // After the first round (the three programme definitions) and every fifth line.
        if handled == 3 || handled % 5 == 0 || !any {
            assert!(env
                .journal
                .wait_readable(std::time::Duration::from_secs(60))
                .await
                .unwrap());
            projector.catch_up().await.unwrap();
            // Only the last batch's partitions stay: at most one per event of the batch.
            assert!(projector.models().cohort_count() <= 7);
            round += 1;
            if round % 2 == 1 {
                loaded += projector.partitions_loaded();
                projector = Projector::start_with(env.journal.clone(), limits)
                    .await
                    .unwrap();
            }
        }
        if !any {
            break;
        }
    }
    assert_eq!(handled, 203 + 97 + 141);
    loaded += projector.partitions_loaded();
    assert!(
        loaded > 10,
        "partitions folded again from the journal: {loaded}"
    );
    let live = env.documents().await;
    let kinds: std::collections::BTreeSet<&str> = live.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["complaints", "history", "timetable", "transcript"].into()
    );
    a_rebuild_writes(&env, &live).await;
    env.cleanup().await;
}

/// A rebuild from position zero folds every event and writes `live`, the documents as the
/// projector left them.
async fn a_rebuild_writes(env: &TestEnv, live: &[(String, String, Value)]) {
    let n = fieldtrail_projections::runner::rebuild(&env.journal)
        .await
        .unwrap();
    assert_eq!(n as i64, env.event_count().await);
    assert_eq!(env.documents().await, live);
}
