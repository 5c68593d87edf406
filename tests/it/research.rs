//! Research exports of cohort trajectories: the milestones cohort-2025 implies, cohort
//! summaries against values computed here from the input file, no name or raw id in any
//! export, the Parquet file read back by the arrow reader and by Python (pyarrow), keys and
//! date options, refusals, the HTTP route, and the streaming bound over generated cohorts.

use crate::helpers::{TestEnv, COHORT};
use arrow_array::{Array, StringArray};
use chrono::{DateTime, NaiveDate, Utc};
use fieldtrail::research::pseudonym::{PseudonymKey, Pseudonymiser};
use fieldtrail::research::shape::{DateMode, Shape};
use fieldtrail::research::writer::Format;
use fieldtrail::research::{self, ChunkSink, ExportRequest, ResearchError};
use fieldtrail_journal::Cursor;
use fieldtrail_projections::store::recorded;
use fieldtrail_projections::trajectory::{
    CohortTrajectory, LearnerTrajectory, MilestoneKind, TrajectoryFold,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "research-test-key: 4f1c9a7e2b6d8e03";
const OTHER_KEY: &str = "another research key, 9d8c7b6a5f4e";

fn pseudonyms(key: &str) -> Pseudonymiser {
    Pseudonymiser::new(PseudonymKey::new(key.as_bytes()).unwrap())
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// A folder of this test's files (removed at the end of a passing test).
struct Dir(PathBuf);

impl Dir {
    fn new(env: &TestEnv) -> Self {
        let dir = std::env::temp_dir().join(format!("{}-research", env.db_name));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key"), format!("{KEY}\n")).unwrap();
        std::fs::write(dir.join("other-key"), OTHER_KEY).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fieldtrail(env: &TestEnv) -> Command {
    let mut command = crate::helpers::fieldtrail_binary();
    command
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
        .env("FIELDTRAIL_SUBJECT_PREFIX", &env.settings.subject_prefix)
        .env_remove("FIELDTRAIL_PSEUDONYM_KEY")
        .env("RUST_LOG", "warn");
    command
}

/// `fieldtrail export trajectories --format F --shape S --out OUT --key-file KEY ARGS...`.
fn export(
    env: &TestEnv,
    dir: &Dir,
    format: &str,
    shape: &str,
    out: &Path,
    extra: &[&str],
) -> Output {
    fieldtrail(env)
        .args([
            "export",
            "trajectories",
            "--format",
            format,
            "--shape",
            shape,
            "--out",
        ])
        .arg(out)
        .arg("--key-file")
        .arg(dir.path("key"))
        .args(extra)
        .output()
        .unwrap()
}

fn export_ok(env: &TestEnv, dir: &Dir, format: &str, shape: &str, extra: &[&str]) -> PathBuf {
    let dates = extra
        .iter()
        .position(|a| *a == "--dates")
        .and_then(|i| extra.get(i + 1))
        .copied()
        .unwrap_or("exact");
    let out = dir.path(&format!("{shape}-{dates}.{format}"));
    let output = export(env, dir, format, shape, &out, extra);
    assert!(
        output.status.success(),
        "export {format} {shape} {extra:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Imports `text`, then waits until the whole journal is below the global log's horizon
/// (another test's open transaction on the same server can hold it back for a while; see
/// ARCHITECTURE.md, trap b) and the projector has caught up, so that exports and read models
/// see every event.
async fn import(env: &TestEnv, text: &str) {
    let report = env.import(text).await;
    assert_eq!(
        report.rejected,
        0,
        "{:?}",
        report.lines.iter().find(|l| l.outcome == "rejected")
    );
    let total = env.event_count().await;
    let log = env.journal.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (mut seen, mut cursor) = (0i64, Cursor::default());
        loop {
            let batch = log.read(cursor, 1000).await.unwrap();
            let Some(last) = batch.last() else { break };
            cursor = Cursor::after(last);
            seen += batch.len() as i64;
        }
        if seen == total {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen} of {total} events below the horizon after 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    env.project().await;
}

/// Every cohort of the journal, folded by the library.
async fn trajectories(env: &TestEnv) -> Vec<CohortTrajectory> {
    let log = env.journal.clone();
    let mut fold = TrajectoryFold::new(None);
    let mut cursor = Cursor::default();
    loop {
        let batch = log.read(cursor, 500).await.unwrap();
        let Some(last) = batch.last() else { break };
        cursor = Cursor::after(last);
        for e in &batch {
            fold.apply(&recorded(e).unwrap());
        }
    }
    fold.finish()
}

fn learner<'a>(cohort: &'a CohortTrajectory, id: &str) -> &'a LearnerTrajectory {
    cohort
        .learners
        .iter()
        .find(|l| l.learner_id == id)
        .unwrap_or_else(|| panic!("no learner {id}"))
}

fn count(l: &LearnerTrajectory, kind: MilestoneKind) -> usize {
    l.of_kind(kind).count()
}

// ------------------------------------------------------------------ the milestones

crate::both_backends!(
    cohort_2025_trajectories_have_the_milestones_the_scenario_implies,
    cohort_2025_trajectories_have_the_milestones_the_scenario_implies_on
);

async fn cohort_2025_trajectories_have_the_milestones_the_scenario_implies_on(env: TestEnv) {
    import(&env, COHORT).await;
    let cohorts = trajectories(&env).await;
    assert_eq!(cohorts.len(), 1);
    let cohort = &cohorts[0];
    assert_eq!(cohort.cohort_id, "cohort-2025");
    assert_eq!(cohort.learners.len(), 11);
    use MilestoneKind as K;

    for l in &cohort.learners {
        assert_eq!(l.milestones[0].kind, K::Enrolled, "{}", l.learner_id);
        assert!(
            l.milestones
                .windows(2)
                .all(|w| w[0].occurred_at <= w[1].occurred_at),
            "{}: milestones out of order",
            l.learner_id
        );
        assert_eq!(count(l, K::FirstSessionAttended), 1);
        assert_eq!(count(l, K::LastSessionAttended), 1);
        assert_eq!(count(l, K::FieldStudyJoined), 1);
        // Attendance equals the transcript read model, module by module; the last month-end
        // row of each module says the same.
        let key = format!("cohort-2025/{}", l.learner_id);
        let transcript = env.document("transcript", &key).await.unwrap();
        for module in transcript["modules"].as_array().unwrap() {
            let id = module["module_id"].as_str().unwrap();
            let held = module["held_half_days"].as_u64().unwrap() as u32;
            let attended = module["attended_half_days"].as_u64().unwrap() as u32;
            let mine = l.modules.get(id).copied().unwrap_or_default();
            assert_eq!(
                (mine.held, mine.attended, mine.excused, mine.absent),
                (
                    held,
                    attended,
                    module["excused_half_days"].as_u64().unwrap() as u32,
                    module["absent_half_days"].as_u64().unwrap() as u32
                ),
                "{key} {id}"
            );
            if held > 0 {
                let last = l
                    .of_kind(K::AttendanceMonthEnd)
                    .filter(|m| m.module_id.as_deref() == Some(id))
                    .last()
                    .unwrap();
                let h = last.half_days.unwrap();
                assert_eq!(
                    (h.held, h.attended),
                    (held, attended),
                    "{key} {id} last month end"
                );
            }
        }
        let certified = transcript["certificate_awarded_on"].is_string();
        assert_eq!(count(l, K::CertificateAwarded) == 1, certified, "{key}");
        assert_eq!(
            count(l, K::DeisCreditRecorded) == 1,
            transcript["deis_credit"] == true,
            "{key}"
        );
        assert_eq!(
            count(l, K::DefenceAttempt),
            transcript["defences"].as_array().unwrap().len(),
            "{key}"
        );
    }

    // The withdrawn learner: the last attended session precedes the withdrawal; no
    // attendance after the withdrawal's month; left the field study after withdrawing.
    let l08 = learner(cohort, "l25-08");
    let withdrew = l08.of_kind(K::Withdrew).next().unwrap();
    assert_eq!(withdrew.occurred_at, utc("2026-01-20T10:00:00+01:00"));
    assert_eq!(withdrew.reason_category, Some("professional"));
    let last = l08.of_kind(K::LastSessionAttended).next().unwrap();
    assert!(last.occurred_at < withdrew.occurred_at);
    let left = l08.of_kind(K::FieldStudyLeft).next().unwrap();
    assert!(left.occurred_at > withdrew.occurred_at);
    assert_eq!(left.reason_category, Some("withdrawal"));
    assert_eq!(left.field_study_id.as_deref(), Some("fs25-b"));
    assert!(l08
        .of_kind(K::AttendanceMonthEnd)
        .all(|m| m.occurred_at < utc("2026-02-01T00:00:00+01:00")));
    assert!(l08
        .of_kind(K::AttendanceMonthEnd)
        .any(|m| m.occurred_at > utc("2026-01-31T00:00:00+01:00")));
    assert_eq!(count(l08, K::DefenceAttempt), 0);
    assert_eq!(count(l08, K::ProductionSubmitted), 0);
    assert_eq!(count(l08, K::CertificateAwarded), 0);

    // The deferred learner: two defence attempts, deferred then passed; certified, DEIS.
    let l05 = learner(cohort, "l25-05");
    let attempts: Vec<_> = l05
        .of_kind(K::DefenceAttempt)
        .map(|m| (m.attempt, m.result.map(|r| r.as_str()), m.jury.len()))
        .collect();
    assert_eq!(
        attempts,
        [(Some(1), Some("deferred"), 3), (Some(2), Some("passed"), 3)]
    );
    assert_eq!(count(l05, K::CertificateAwarded), 1);
    assert_eq!(count(l05, K::DeisCreditRecorded), 1);
    let commission: Vec<_> = l05
        .milestones
        .iter()
        .filter(|m| m.kind.as_str().starts_with("commission_"))
        .map(|m| (m.kind.as_str(), m.version))
        .collect();
    assert_eq!(
        commission,
        [
            ("commission_negotiated", Some(1)),
            ("commission_agreed", Some(1)),
            ("commission_renegotiated", Some(2)),
            ("commission_agreed", Some(2)),
        ]
    );
    assert_eq!(count(l05, K::ProductionSubmitted), 2);

    // The failed learner.
    let l11 = learner(cohort, "l25-11");
    let results: Vec<_> = l11
        .of_kind(K::DefenceAttempt)
        .map(|m| m.result.map(|r| r.as_str()))
        .collect();
    assert_eq!(results, [Some("failed")]);
    assert_eq!(count(l11, K::CertificateAwarded), 0);

    // fs25-a: two renegotiations with their categories, version 3 agreed, the hypotheses.
    for id in ["l25-01", "l25-02", "l25-03", "l25-04"] {
        let l = learner(cohort, id);
        let reasons: Vec<_> = l
            .of_kind(K::CommissionRenegotiated)
            .map(|m| (m.version, m.reason_category))
            .collect();
        assert_eq!(
            reasons,
            [
                (Some(2), Some("commissioner_priorities")),
                (Some(3), Some("field_findings"))
            ],
            "{id}"
        );
        assert_eq!(
            l.of_kind(K::CommissionAgreed).last().unwrap().version,
            Some(3)
        );
        assert_eq!(
            (
                count(l, K::HypothesisStated),
                count(l, K::HypothesisRevised),
                count(l, K::HypothesisAbandoned)
            ),
            (3, 1, 1),
            "{id}"
        );
        let joined = l.of_kind(K::FieldStudyJoined).next().unwrap();
        assert_eq!(joined.sector.as_deref(), Some("intervention sociale"));
        assert_eq!(
            l.of_kind(K::ProductionSubmitted).next().unwrap().pages,
            Some(65)
        );
    }
    assert_eq!(
        cohort
            .learners
            .iter()
            .filter(|l| count(l, K::CertificateAwarded) == 1)
            .count(),
        9
    );

    // The same facts in the exported long format, through the pseudonyms.
    let dir = Dir::new(&env);
    let out = export_ok(&env, &dir, "jsonl", "long", &[]);
    let rows = jsonl(&out);
    let p = pseudonyms(KEY);
    let of = |id: &str, milestone: &str| -> Vec<&Value> {
        let code = p.learner(id);
        rows.iter()
            .filter(|r| r["learner"] == code.as_str() && r["milestone"] == milestone)
            .collect()
    };
    let exported_withdrawal = of("l25-08", "withdrew");
    assert_eq!(exported_withdrawal.len(), 1);
    assert_eq!(exported_withdrawal[0]["reason_category"], "professional");
    assert_eq!(exported_withdrawal[0]["actor_role"], "staff");
    let last_attended = of("l25-08", "last_session_attended");
    assert!(
        utc(last_attended[0]["occurred_at"].as_str().unwrap())
            < utc(exported_withdrawal[0]["occurred_at"].as_str().unwrap())
    );
    let attempts: Vec<_> = of("l25-05", "defence_attempt")
        .iter()
        .map(|r| {
            (
                r["attempt"].as_i64(),
                r["result"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (Some(1), Some("deferred".into())),
            (Some(2), Some("passed".into()))
        ]
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r["cohort"] == p.cohort("cohort-2025").as_str())
            .count(),
        rows.len()
    );
    let per_learner: BTreeSet<_> = rows
        .iter()
        .map(|r| r["learner"].as_str().unwrap())
        .collect();
    assert_eq!(per_learner.len(), 11);
    let expected_rows: usize = cohort.learners.iter().map(|l| l.milestones.len()).sum();
    assert_eq!(rows.len(), expected_rows);
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ the summaries

/// Type 7 quantile (numpy's default), written here independently of the library.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The summary of cohort-2025 computed from the command file alone.
fn expected_summary() -> BTreeMap<&'static str, Value> {
    let lines: Vec<Value> = COHORT
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &'static str| lines.iter().filter(move |l| l["command"] == name);
    let date = |l: &Value| {
        NaiveDate::parse_from_str(&l["at"].as_str().unwrap()[..10], "%Y-%m-%d").unwrap()
    };
    let mut summary = BTreeMap::new();
    summary.insert("learners", Value::from(of("enrol_learner").count()));
    summary.insert("withdrawals", Value::from(of("withdraw_learner").count()));
    let studies: Vec<&str> = of("form_field_study")
        .map(|l| l["data"]["field_study_id"].as_str().unwrap())
        .collect();
    summary.insert("field_studies", Value::from(studies.len()));
    let mut renegotiations: Vec<usize> = studies
        .iter()
        .map(|s| {
            of("renegotiate_commission")
                .filter(|l| l["data"]["field_study_id"] == *s)
                .count()
        })
        .collect();
    renegotiations.sort_unstable();
    summary.insert(
        "renegotiations_total",
        Value::from(renegotiations.iter().sum::<usize>()),
    );
    summary.insert(
        "renegotiations_per_field_study",
        Value::from(
            renegotiations
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(";"),
        ),
    );
    let mut days: Vec<f64> = studies
        .iter()
        .filter_map(|s| {
            let first = of("negotiate_commission").find(|l| l["data"]["field_study_id"] == *s)?;
            let agreed = of("agree_commission").rfind(|l| l["data"]["field_study_id"] == *s)?;
            Some((date(agreed) - date(first)).num_days() as f64)
        })
        .collect();
    days.sort_by(f64::total_cmp);
    summary.insert(
        "median_days_commission_to_agreement",
        Value::from(quantile(&days, 0.5)),
    );
    let outcomes: Vec<&str> = of("record_defence")
        .flat_map(|l| l["data"]["outcomes"].as_array().unwrap().iter())
        .map(|o| o["result"].as_str().unwrap())
        .collect();
    summary.insert("defence_attempts", Value::from(outcomes.len()));
    for (key, result) in [
        ("defences_passed", "passed"),
        ("defences_deferred", "deferred"),
        ("defences_failed", "failed"),
    ] {
        summary.insert(
            key,
            Value::from(outcomes.iter().filter(|r| **r == result).count()),
        );
    }
    summary.insert("certificates", Value::from(of("award_certificate").count()));
    summary.insert(
        "deis_credits",
        Value::from(of("record_deis_credit").count()),
    );

    // Attendance by FORMAT.md's rules: learners active when the session is recorded count it.
    let half_days: BTreeMap<&str, u64> = of("schedule_session")
        .map(|l| {
            (
                l["data"]["session_id"].as_str().unwrap(),
                l["data"]["half_days"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut active: Vec<&str> = Vec::new();
    // learner -> (held, attended); session -> learner -> status
    let mut status: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut held: BTreeMap<&str, u64> = BTreeMap::new();
    for l in &lines {
        let data = &l["data"];
        match l["command"].as_str().unwrap() {
            "enrol_learner" => active.push(data["learner_id"].as_str().unwrap()),
            "withdraw_learner" => active.retain(|a| *a != data["learner_id"].as_str().unwrap()),
            "record_session" => {
                let session = data["session_id"].as_str().unwrap();
                let listed = |k: &str| -> Vec<&str> {
                    data[k]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect()
                };
                let (present, excused) = (listed("present"), listed("excused"));
                for learner in &active {
                    *held.entry(learner).or_default() += half_days[session];
                    let s = if present.contains(learner) {
                        "present"
                    } else if excused.contains(learner) {
                        "excused"
                    } else {
                        "absent"
                    };
                    status.insert((session, learner), s);
                }
            }
            "correct_attendance" => {
                let key = (
                    data["session_id"].as_str().unwrap(),
                    data["learner_id"].as_str().unwrap(),
                );
                if status.contains_key(&key) {
                    status.insert(key, data["status"].as_str().unwrap());
                }
            }
            _ => {}
        }
    }
    let mut rates: Vec<f64> = held
        .iter()
        .filter(|(_, h)| **h > 0)
        .map(|(learner, h)| {
            let attended: u64 = status
                .iter()
                .filter(|((_, l), s)| l == learner && **s == "present")
                .map(|((session, _), _)| half_days[session])
                .sum();
            attended as f64 / *h as f64
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    summary.insert("attendance_learners", Value::from(rates.len()));
    summary.insert("attendance_rate_min", Value::from(rates[0]));
    summary.insert("attendance_rate_q1", Value::from(quantile(&rates, 0.25)));
    summary.insert("attendance_rate_median", Value::from(quantile(&rates, 0.5)));
    summary.insert("attendance_rate_q3", Value::from(quantile(&rates, 0.75)));
    summary.insert("attendance_rate_max", Value::from(*rates.last().unwrap()));
    summary.insert(
        "attendance_rate_mean",
        Value::from(rates.iter().sum::<f64>() / rates.len() as f64),
    );
    summary
}

fn assert_same(key: &str, got: &Value, want: &Value) {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "{key}: exported {g}, computed {w}"),
        _ => assert_eq!(got, want, "{key}"),
    }
}

crate::both_backends!(
    cohort_summaries_equal_values_computed_from_the_input_file,
    cohort_summaries_equal_values_computed_from_the_input_file_on
);

async fn cohort_summaries_equal_values_computed_from_the_input_file_on(env: TestEnv) {
    import(&env, COHORT).await;
    let dir = Dir::new(&env);
    let expected = expected_summary();
    // Sanity of the computation itself against the scenario.
    assert_eq!(expected["learners"], 11);
    assert_eq!(expected["withdrawals"], 1);
    assert_eq!(expected["renegotiations_per_field_study"], "0;1;2");
    assert_eq!(expected["median_days_commission_to_agreement"], 43.0);
    assert_eq!(
        (
            &expected["defences_passed"],
            &expected["defences_deferred"],
            &expected["defences_failed"]
        ),
        (&Value::from(9), &Value::from(1), &Value::from(1))
    );

    let rows = jsonl(&export_ok(&env, &dir, "jsonl", "summary", &[]));
    assert_eq!(rows.len(), 1);
    let row = rows[0].as_object().unwrap();
    assert_eq!(
        row["cohort"],
        pseudonyms(KEY).cohort("cohort-2025").as_str()
    );
    for (key, want) in &expected {
        assert_same(key, &row[*key], want);
    }
    assert_eq!(row.len(), expected.len() + 1, "columns: {:?}", row.keys());

    // The CSV says the same.
    let (header, csv) = csv_rows(&export_ok(&env, &dir, "csv", "summary", &[]));
    assert_eq!(csv.len(), 1);
    for (name, value) in header.iter().zip(&csv[0]) {
        if let Some(want) = expected.get(name.as_str()) {
            let got: Value = match want {
                Value::String(_) => Value::from(value.as_str()),
                _ => Value::from(value.parse::<f64>().unwrap()),
            };
            assert_same(name, &got, want);
        }
    }
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ nothing identifying

const ENUMERATIONS: [&str; 13] = [
    "course",
    "reflexive_accompaniment",
    "critical_debate",
    "field_work",
    "defence",
    "present",
    "excused",
    "absent",
    "passed",
    "deferred",
    "failed",
    "professional",
    "training_centre",
];
/// Values exported on purpose: dates, enumerations, programme structure, sectors.
const KEPT_KEYS: [&str; 11] = [
    "at",
    "starts_at",
    "ends_at",
    "starts_on",
    "ends_on",
    "role",
    "result",
    "status",
    "module_id",
    "unit_id",
    "sector",
];

fn collect(value: &Value, key: Option<&str>, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            if key.is_some_and(|k| KEPT_KEYS.contains(&k)) || ENUMERATIONS.contains(&s.as_str()) {
                return;
            }
            out.insert(s.clone());
            if let Some((_, name)) = s.split_once(':') {
                out.insert(name.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| collect(v, Some(k), out)),
        _ => {}
    }
}

/// Every name, raw id and free text of cohort-2025: ids of the cohort, learners, sessions,
/// field studies, hypotheses, defences, notes, interventions, the programme and commands;
/// learner names (whole and each word of 4 letters or more); organisation, jury and
/// facilitator names; actors; briefs, notes, remarks, reasons, titles, deliverables.
fn forbidden() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in COHORT.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        collect(&v["command_id"], None, &mut out);
        collect(&v["actor"], None, &mut out);
        collect(&v["data"], None, &mut out);
        if v["command"] == "enrol_learner" {
            let name = v["data"]["name"].as_str().unwrap();
            for word in name.split([' ', '\'']).filter(|w| w.chars().count() >= 4) {
                out.insert(word.to_owned());
            }
        }
    }
    for must in [
        "cohort-2025",
        "l25-08",
        "Pierrick Jaouen",
        "s25-042",
        "fs25-b",
        "Régie de quartier du Blosne",
        "Directrice d'un centre social",
        "intervenant-c",
        "president",
        "coordinator",
        "Écrit à reprendre",
        "cisdcp",
    ] {
        assert!(out.contains(must), "{must} missing from the forbidden list");
    }
    out
}

fn assert_clean(what: &str, text: &str, forbidden: &BTreeSet<String>) {
    let lower = text.to_lowercase();
    for f in forbidden {
        assert!(!lower.contains(&f.to_lowercase()), "{what} contains {f:?}");
    }
}

/// Every string value of a Parquet file, and its footer's metadata.
fn parquet_strings(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let mut text = String::new();
    if let Some(kv) = builder.metadata().file_metadata().key_value_metadata() {
        for entry in kv {
            text.push_str(&format!(
                "{}={}\n",
                entry.key,
                entry.value.clone().unwrap_or_default()
            ));
        }
    }
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        for column in batch.columns() {
            if let Some(strings) = column.as_any().downcast_ref::<StringArray>() {
                for value in strings.iter().flatten() {
                    text.push_str(value);
                    text.push('\n');
                }
            }
        }
    }
    text
}

crate::both_backends!(
    no_export_contains_a_name_or_a_raw_id_of_cohort_2025,
    no_export_contains_a_name_or_a_raw_id_of_cohort_2025_on
);

async fn no_export_contains_a_name_or_a_raw_id_of_cohort_2025_on(env: TestEnv) {
    import(&env, COHORT).await;
    let dir = Dir::new(&env);
    let forbidden = forbidden();
    assert!(forbidden.len() > 150, "{}", forbidden.len());
    let mut checked = 0;
    for format in ["csv", "jsonl", "parquet"] {
        for shape in ["long", "wide", "summary"] {
            for dates in ["exact", "shifted", "week"] {
                let out = export_ok(&env, &dir, format, shape, &["--dates", dates]);
                let bytes = std::fs::read(&out).unwrap();
                assert!(!bytes.is_empty());
                let what = format!("{format} {shape} {dates}");
                assert_clean(&what, &String::from_utf8_lossy(&bytes), &forbidden);
                if format == "parquet" {
                    let strings = parquet_strings(&out);
                    assert!(strings.contains("C-"), "{what}: no pseudonym decoded");
                    assert_clean(&format!("{what} (decoded)"), &strings, &forbidden);
                }
                let dictionary = std::fs::read_to_string(research::dictionary_path(&out)).unwrap();
                assert_clean(&format!("{what} dictionary"), &dictionary, &forbidden);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 27);
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ Parquet readers

/// The arrow field types the dictionary's type names stand for.
fn arrow_type(name: &str) -> arrow_schema::DataType {
    use arrow_schema::{DataType, TimeUnit};
    match name {
        "string" => DataType::Utf8,
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "timestamp[us, UTC]" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        other => panic!("unknown type {other:?} in the dictionary"),
    }
}

crate::both_backends!(
    the_parquet_files_read_back_with_the_documented_schema_in_rust_and_in_python,
    the_parquet_files_read_back_with_the_documented_schema_in_rust_and_in_python_on
);

async fn the_parquet_files_read_back_with_the_documented_schema_in_rust_and_in_python_on(
    env: TestEnv,
) {
    import(&env, COHORT).await;
    let dir = Dir::new(&env);
    for (shape, dates) in [
        ("long", "exact"),
        ("wide", "exact"),
        ("summary", "exact"),
        ("long", "week"),
    ] {
        let out = export_ok(&env, &dir, "parquet", shape, &["--dates", dates]);
        // The documented schema: the dictionary beside the file.
        let (header, dictionary) = csv_rows(&research::dictionary_path(&out));
        assert_eq!(header, ["column", "type", "nullable", "unit", "meaning"]);
        assert!(
            dictionary.iter().all(|d| !d[4].is_empty()),
            "a column without meaning"
        );
        let documented: Vec<arrow_schema::Field> = dictionary
            .iter()
            .map(|d| arrow_schema::Field::new(d[0].clone(), arrow_type(&d[1]), d[2] == "yes"))
            .collect();

        let file = std::fs::File::open(&out).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let fields: Vec<arrow_schema::Field> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        assert_eq!(fields, documented, "{shape} {dates}");
        let kv: BTreeMap<String, String> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(kv["fieldtrail.shape"], shape);
        assert_eq!(kv["fieldtrail.dates"], dates);
        assert_eq!(kv["fieldtrail.key_id"], pseudonyms(KEY).key_id());
        let rows: usize = builder
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        // The same rows as the JSON Lines export of that shape.
        let lines = jsonl(&export_ok(&env, &dir, "jsonl", shape, &["--dates", dates]));
        assert_eq!(rows, lines.len(), "{shape} {dates}");
        let expected_rows = match shape {
            "wide" => 11,
            "summary" => 1,
            _ => rows,
        };
        assert_eq!(rows, expected_rows);

        // Python's reader (pyarrow, installed by .ci/run): a failure to run it fails the test.
        let script = "import sys, pyarrow.parquet as pq\n\
                      t = pq.read_table(sys.argv[1])\n\
                      print(t.num_rows)\n\
                      print(','.join(t.schema.names))\n\
                      print(','.join(str(f.type) for f in t.schema))\n\
                      print(t.column('learner' if 'learner' in t.schema.names else 'cohort')[0].as_py())\n";
        let python = Command::new("python3")
            .args(["-c", script])
            .arg(&out)
            .output()
            .unwrap_or_else(|e| {
                panic!("python3 must be installed (with pyarrow) for this test: {e}")
            });
        assert!(
            python.status.success(),
            "python3 could not read {} with pyarrow (does `python3 -m pip install pyarrow` work?): {}",
            out.display(),
            String::from_utf8_lossy(&python.stderr)
        );
        let stdout = String::from_utf8(python.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], rows.to_string());
        let names: Vec<&str> = dictionary.iter().map(|d| d[0].as_str()).collect();
        assert_eq!(lines[1], names.join(","));
        if dates == "exact" && shape != "summary" {
            assert!(lines[2].contains("timestamp[us, tz=UTC]"), "{}", lines[2]);
        } else {
            assert!(!lines[2].contains("timestamp"), "{}", lines[2]);
        }
        assert!(
            lines[3].starts_with("L-") || lines[3].starts_with("C-"),
            "{}",
            lines[3]
        );
    }
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ keys and dates

fn wide_by_learner(path: &Path) -> BTreeMap<String, Value> {
    jsonl(path)
        .into_iter()
        .map(|r| (r["learner"].as_str().unwrap().to_owned(), r))
        .collect()
}

crate::both_backends!(
    pseudonyms_follow_the_key_and_dates_can_be_shifted_or_coarsened,
    pseudonyms_follow_the_key_and_dates_can_be_shifted_or_coarsened_on
);

async fn pseudonyms_follow_the_key_and_dates_can_be_shifted_or_coarsened_on(env: TestEnv) {
    import(&env, COHORT).await;
    let dir = Dir::new(&env);
    let first = std::fs::read(export_ok(&env, &dir, "csv", "wide", &[])).unwrap();
    let again = dir.path("again.csv");
    assert!(export(&env, &dir, "csv", "wide", &again, &[])
        .status
        .success());
    assert_eq!(
        std::fs::read(&again).unwrap(),
        first,
        "same key, same journal, same bytes"
    );

    // The key from the environment gives the same pseudonyms as the key file.
    let from_env = dir.path("env.csv");
    let output = fieldtrail(&env)
        .args([
            "export",
            "trajectories",
            "--format",
            "csv",
            "--shape",
            "wide",
            "--out",
        ])
        .arg(&from_env)
        .env("FIELDTRAIL_PSEUDONYM_KEY", KEY)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&from_env).unwrap(), first);

    // Another key: other pseudonyms, none shared.
    let other = dir.path("other.csv");
    let output = fieldtrail(&env)
        .args([
            "export",
            "trajectories",
            "--format",
            "csv",
            "--shape",
            "wide",
            "--out",
        ])
        .arg(&other)
        .arg("--key-file")
        .arg(dir.path("other-key"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let learners = |path: &Path| -> BTreeSet<String> {
        csv_rows(path).1.into_iter().map(|r| r[1].clone()).collect()
    };
    let (a, b) = (learners(&dir.path("wide-exact.csv")), learners(&other));
    assert_eq!((a.len(), b.len()), (11, 11));
    assert!(a.is_disjoint(&b));
    let p = pseudonyms(KEY);
    let expected: BTreeSet<String> = (1..=11)
        .map(|n| p.learner(&format!("l25-{n:02}")))
        .collect();
    assert_eq!(a, expected);

    // Shifted: every date of a learner moves by the same whole number of days (±90).
    let exact = wide_by_learner(&export_ok(&env, &dir, "jsonl", "wide", &[]));
    let shifted = wide_by_learner(&export_ok(
        &env,
        &dir,
        "jsonl",
        "wide",
        &["--dates", "shifted"],
    ));
    let mut shifts = BTreeSet::new();
    for (learner, row) in &exact {
        let moved = &shifted[learner];
        let shift =
            utc(moved["enrolled_at"].as_str().unwrap()) - utc(row["enrolled_at"].as_str().unwrap());
        assert_eq!(shift.num_seconds() % 86_400, 0);
        assert!(shift.num_days().abs() <= 90);
        shifts.insert(shift.num_days());
        for column in [
            "last_session_attended_at",
            "certificate_awarded_at",
            "withdrew_at",
            "last_defence_at",
        ] {
            match (row[column].as_str(), moved[column].as_str()) {
                (Some(e), Some(s)) => assert_eq!(utc(s) - utc(e), shift, "{learner} {column}"),
                (e, s) => assert_eq!(e.is_none(), s.is_none()),
            }
        }
        assert_eq!(
            row["days_commission_to_agreement"],
            moved["days_commission_to_agreement"]
        );
    }
    assert!(
        shifts.len() > 3,
        "shifts should differ between learners: {shifts:?}"
    );

    // Week: ISO weeks only, no day counts.
    let week = jsonl(&export_ok(
        &env,
        &dir,
        "jsonl",
        "long",
        &["--dates", "week"],
    ));
    for row in &week {
        let w = row["occurred_at"].as_str().unwrap();
        assert!(
            w.len() == 8 && &w[4..6] == "-W" && w[..4].parse::<u32>().is_ok(),
            "{w}"
        );
        assert!(row["days_since_enrolment"].is_null());
    }
    let enrolled = week.iter().find(|r| r["milestone"] == "enrolled").unwrap();
    assert_eq!(enrolled["occurred_at"], "2025-W25");
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ refusals

crate::both_backends!(
    exports_are_refused_without_a_key_and_for_small_cohorts_unless_forced,
    exports_are_refused_without_a_key_and_for_small_cohorts_unless_forced_on
);

async fn exports_are_refused_without_a_key_and_for_small_cohorts_unless_forced_on(env: TestEnv) {
    import(&env, COHORT).await;
    let dir = Dir::new(&env);
    let out = dir.path("refused.csv");

    let no_key = fieldtrail(&env)
        .args(["export", "trajectories", "--format", "csv", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_key.stderr);
    assert!(
        stderr.contains("no pseudonym key") && stderr.contains("FIELDTRAIL_PSEUDONYM_KEY"),
        "{stderr}"
    );
    assert!(!out.exists());

    std::fs::write(dir.path("short-key"), "short").unwrap();
    let short = fieldtrail(&env)
        .args(["export", "trajectories", "--format", "csv", "--out"])
        .arg(&out)
        .arg("--key-file")
        .arg(dir.path("short-key"))
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 16"));

    let small = export(
        &env,
        &dir,
        "csv",
        "long",
        &out,
        &["--min-cohort-size", "12"],
    );
    assert_eq!(small.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&small.stderr);
    assert!(
        stderr.contains("minimum size of 12")
            && stderr.contains("11 learners")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(!out.exists() && !research::dictionary_path(&out).exists());

    let forced = export(
        &env,
        &dir,
        "csv",
        "long",
        &out,
        &["--min-cohort-size", "12", "--force"],
    );
    assert!(forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stderr).contains("warning"));
    assert!(out.exists() && research::dictionary_path(&out).exists());

    let unknown = export(
        &env,
        &dir,
        "csv",
        "long",
        &out,
        &["--cohort", "cohort-1999"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no cohort \"cohort-1999\""));

    // A cohort can be named by its pseudonym.
    let code = pseudonyms(KEY).cohort("cohort-2025");
    let by_code = export_ok(&env, &dir, "csv", "summary", &["--cohort", &code]);
    assert_eq!(csv_rows(&by_code).1.len(), 1);
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ HTTP

#[tokio::test]
async fn the_http_route_streams_the_export_to_researchers_and_refuses_without_a_key() {
    use fieldtrail::auth::Role;
    let env = TestEnv::new("research_http").await;
    import(&env, COHORT).await;
    // A second, small cohort (3 learners).
    let small: Vec<String> = fieldtrail::cli::generate::cohort(1)
        .lines()
        .take(5)
        .map(str::to_owned)
        .collect();
    import(&env, &small.join("\n")).await;
    let researcher = env.client_with(&env.token(Role::Researcher, None, None).await);

    let without =
        crate::servers::Serve::start(&env, None, None, &[("FIELDTRAIL_PSEUDONYM_KEY", "")]).await;
    let response = researcher
        .get(format!("{}/research/trajectories?format=csv", without.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("FIELDTRAIL_PSEUDONYM_KEY"),
        "{body}"
    );
    drop(without);

    let serve =
        crate::servers::Serve::start(&env, None, None, &[("FIELDTRAIL_PSEUDONYM_KEY", KEY)]).await;
    let get = |query: &str| {
        researcher
            .get(format!("{}/research/trajectories?{query}", serve.base))
            .send()
    };

    // Every cohort: the small one is refused, named by its pseudonym only.
    let response = get("format=csv").await.unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&pseudonyms(KEY).cohort("cohort-g1")) && !message.contains("cohort-g1"),
        "{message}"
    );

    let response = get("format=parquet&shape=long&cohort=cohort-2025")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    assert_eq!(
        response.headers()["x-fieldtrail-key-id"],
        pseudonyms(KEY).key_id().as_str()
    );
    let bytes = response.bytes().await.unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    let dir = Dir::new(&env);
    let cli = jsonl(&export_ok(
        &env,
        &dir,
        "jsonl",
        "long",
        &["--cohort", "cohort-2025"],
    ));
    assert_eq!(rows, cli.len());

    let response = get("format=jsonl&shape=wide&cohort=cohort-2025")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let learners: BTreeSet<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["learner"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        learners,
        cli.iter()
            .map(|r| r["learner"].as_str().unwrap().to_owned())
            .collect()
    );

    assert_eq!(get("format=xlsx").await.unwrap().status(), 422);
    assert_eq!(get("format=csv&cohort=nope").await.unwrap().status(), 404);
    let dictionary = researcher
        .get(format!(
            "{}/research/trajectories/dictionary?shape=summary",
            serve.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(dictionary.status(), 200);
    assert!(dictionary
        .text()
        .await
        .unwrap()
        .starts_with("column,type,nullable,unit,meaning\ncohort,"));
    // Not for a learner's token.
    let learner = env.client_with(
        &env.token(Role::Learner, Some("cohort-2025"), Some("l25-01"))
            .await,
    );
    let response = learner
        .get(format!(
            "{}/research/trajectories?format=csv&cohort=cohort-2025",
            serve.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    drop(serve);
    dir.remove();
    env.cleanup().await;
}

// ------------------------------------------------------------------ streaming

/// Chunks in memory, counted.
#[derive(Default)]
struct Chunks {
    bytes: Vec<u8>,
    sent: usize,
}

impl ChunkSink for Chunks {
    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), ResearchError> {
        if !chunk.is_empty() {
            self.sent += 1;
        }
        self.bytes.extend(chunk);
        Ok(())
    }
}

#[tokio::test]
async fn generated_cohorts_stream_out_one_at_a_time_with_equal_summaries() {
    const COPIES: usize = 4;
    let env = TestEnv::new("research_stream").await;
    import(&env, COHORT).await;
    for n in 1..=COPIES {
        import(&env, &fieldtrail::cli::generate::cohort(n)).await;
    }
    let p = pseudonyms(KEY);
    let request = |shape, format| ExportRequest {
        cohorts: vec![],
        format,
        shape,
        dates: DateMode::Exact,
        min_cohort_size: research::DEFAULT_MIN_COHORT_SIZE,
        force: false,
    };
    let hidden = indicatif::ProgressBar::hidden();
    let mut sums = Vec::new();
    for (shape, format) in [(Shape::Summary, Format::Jsonl), (Shape::Long, Format::Csv)] {
        let request = request(shape, format);
        let prepared = research::prepare(&env.journal, &request, &p, &hidden)
            .await
            .unwrap();
        assert_eq!(prepared.cohorts(), COPIES + 1);
        let mut sink = Chunks::default();
        let report = research::write(&env.journal, prepared, &request, &p, &mut sink, &hidden)
            .await
            .unwrap();
        assert_eq!(report.cohorts as usize, COPIES + 1);
        // Cohorts recorded one after the other are held one at a time and sent one by one.
        assert_eq!(report.peak_open_cohorts, 1);
        assert!(sink.sent > COPIES, "{} chunks", sink.sent);
        sums.push(sink.bytes);
    }
    // Every copy has the summary of cohort-2025 (only the cohort's pseudonym differs).
    let summaries: Vec<Value> = String::from_utf8(sums[0].clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(summaries.len(), COPIES + 1);
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("cohort");
        v
    };
    for s in &summaries[1..] {
        assert_eq!(strip(s), strip(&summaries[0]));
    }
    let cohorts: BTreeSet<&str> = summaries
        .iter()
        .map(|s| s["cohort"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<String> = std::iter::once("cohort-2025".to_owned())
        .chain((1..=COPIES).map(|n| format!("cohort-g{n}")))
        .map(|c| p.cohort(&c))
        .collect();
    assert_eq!(cohorts, expected.iter().map(String::as_str).collect());
    // The long CSV: the same number of rows per cohort.
    let text = String::from_utf8(sums[1].clone()).unwrap();
    let mut per_cohort: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines().skip(1) {
        *per_cohort
            .entry(line.split(',').next().unwrap())
            .or_default() += 1;
    }
    let counts: BTreeSet<usize> = per_cohort.values().copied().collect();
    assert_eq!(
        (per_cohort.len(), counts.len()),
        (COPIES + 1, 1),
        "{per_cohort:?}"
    );
    env.cleanup().await;
}
