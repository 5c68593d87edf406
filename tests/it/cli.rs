//! The `fieldtrail` binary as a user runs it.

use crate::helpers::TestEnv;
use serde_json::Value;
use std::process::Command;

/// The `fieldtrail` binary on the test's journal, NATS stream and prefix.
pub(crate) fn fieldtrail(env: &TestEnv) -> Command {
    let mut command = crate::helpers::fieldtrail_binary();
    command
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
        .env("FIELDTRAIL_SUBJECT_PREFIX", &env.settings.subject_prefix)
        .env("RUST_LOG", "warn");
    command
}

fn data(name: &str) -> String {
    format!("{}/../tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

crate::both_backends!(
    import_reports_every_line_and_exits_3_when_some_were_rejected,
    import_with_rejections
);

async fn import_with_rejections(env: TestEnv) {
    let report_path =
        std::env::temp_dir().join(format!("ft-report-{}.json", uuid::Uuid::new_v4().simple()));
    let output = fieldtrail(&env)
        .arg("import")
        .arg(data("rules.jsonl"))
        .arg("--report-json")
        .arg(&report_path)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("line 2: t-x002 rejected: already_exists:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("applied 33, duplicate 1, rejected 63"),
        "{stdout}"
    );
    let report: Vec<Value> = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report.len(), 97);
    assert_eq!(report[1]["line"], 2);
    assert_eq!(report[1]["command_id"], "t-x002");
    assert_eq!(report[1]["outcome"], "rejected");
    assert_eq!(report[1]["code"], "already_exists");
    assert_eq!(report[96]["outcome"], "duplicate");
    std::fs::remove_file(&report_path).ok();

    let output = fieldtrail(&env)
        .args([
            "report",
            "transcript",
            "--cohort",
            "t-cohort",
            "--learner",
            "t-l4",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let transcript: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(transcript["certificate_awarded_on"], "2025-06-26");
    assert_eq!(transcript["deis_credit"], true);
    env.cleanup().await;
}

crate::both_backends!(
    import_of_a_clean_file_exits_0_and_again_reports_duplicates,
    import_clean
);

async fn import_clean(env: TestEnv) {
    let cohort = format!("{}/../data/cohort-2025.jsonl", env!("CARGO_MANIFEST_DIR"));
    let first = fieldtrail(&env)
        .arg("import")
        .arg(&cohort)
        .output()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied 203, duplicate 0, rejected 0"));
    let second = fieldtrail(&env)
        .arg("import")
        .arg(&cohort)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("applied 0, duplicate 203, rejected 0")
    );
    let timetable = fieldtrail(&env)
        .args(["report", "timetable", "--cohort", "cohort-2025"])
        .output()
        .unwrap();
    let timetable: Value = serde_json::from_slice(&timetable.stdout).unwrap();
    assert_eq!(timetable["sessions"].as_array().unwrap().len(), 56);
    let expected: Value = serde_json::from_str(crate::helpers::COHORT_EXPECTED).unwrap();
    assert_eq!(timetable["modules"], expected["timetable"]["modules"]);
    env.cleanup().await;
}

/// `fieldtrail` with no configuration at all: no DATABASE_URL, no NATS_URL, no file.
fn unconfigured(dir: &std::path::Path) -> Command {
    let mut command = crate::helpers::fieldtrail_binary();
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("FIELDTRAIL_DATABASE_URL")
        .env_remove("NATS_URL")
        .env_remove("FIELDTRAIL_NATS_URL")
        .env_remove("FIELDTRAIL_CONFIG")
        .env("RUST_LOG", "warn");
    command
}

#[tokio::test]
async fn with_no_configuration_demo_and_serve_use_the_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let demo = unconfigured(dir.path()).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(
        stdout.contains("Cohort cohort-2025: half-days per module (planned / scheduled / held)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("import: applied 203, duplicate 0, rejected 0; no NATS configured"),
        "{stdout}"
    );
    assert!(
        stdout.contains("journal: sqlite://fieldtrail.db (sqlite)"),
        "{stdout}"
    );
    assert!(dir.path().join("fieldtrail.db").is_file());

    let token = unconfigured(dir.path())
        .args(["token", "create", "--role", "staff", "--name", "me"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let port = crate::servers::free_port();
    let mut serve = unconfigured(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/cohorts/cohort-2025/timetable");
    let client = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..200 {
        if let Ok(r) = client.get(&url).bearer_auth(&token).send().await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let answer = answer.expect("serve answers");
    assert_eq!(answer.status().as_u16(), 200);
    let timetable: Value = answer.json().await.unwrap();
    let expected: Value = serde_json::from_str(crate::helpers::COHORT_EXPECTED).unwrap();
    assert_eq!(timetable["modules"], expected["timetable"]["modules"]);
    let health: Value = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["backend"], "sqlite");
    assert_eq!(health["nats"], "disabled");
    let _ = serve.kill();
    let _ = serve.wait();
}

#[tokio::test]
async fn unusable_files_and_servers_get_a_one_line_error_naming_them() {
    let env = TestEnv::new("cli_errors").await;
    let missing = fieldtrail(&env)
        .args(["import", "/nonexistent/commands.jsonl"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("cannot read /nonexistent/commands.jsonl"));

    let down = fieldtrail(&env)
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("postgres://postgres@127.0.0.1:1/nowhere"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let nats_down = fieldtrail(&env)
        .env("NATS_URL", "nats://127.0.0.1:1")
        .arg("demo")
        .output()
        .unwrap();
    assert_eq!(nats_down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&nats_down.stderr);
    assert!(stderr.contains("nats://127.0.0.1:1"), "{stderr}");
    env.cleanup().await;
}

#[tokio::test]
async fn reading_a_journal_that_is_not_there_or_not_ours_creates_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| unconfigured(dir.path()).args(args).output().unwrap();
    for args in [
        vec!["--database-url", "sqlite://typo.db", "audit", "verify"],
        vec![
            "--database-url",
            "sqlite://typo.db",
            "report",
            "timetable",
            "--cohort",
            "c",
        ],
        vec!["--database-url", "sqlite://typo.db", "status"],
        vec!["--database-url", "sqlite://typo.db", "replay"],
        vec![
            "copy",
            "--from",
            "sqlite://typo.db",
            "--to",
            "sqlite://target.db",
        ],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no journal at typo.db"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!dir.path().join("typo.db").exists());
    assert!(!dir.path().join("target.db").exists());

    // Another application's SQLite database is refused and left as it was.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    for args in [
        vec!["--database-url", "sqlite://other.db", "demo"],
        vec!["--database-url", "sqlite://other.db", "audit", "verify"],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("another application's SQLite database"),
            "{err}"
        );
    }
    assert!(
        std::fs::read(&other).unwrap() == before,
        "the other application's database was changed"
    );

    // Paths that cannot name a journal file are refused by the configuration check.
    for url in ["sqlite://:memory:", "sqlite://x.db?mode=ro", "sqlite://"] {
        let out = run(&["--database-url", url, "status"]);
        assert_eq!(out.status.code(), Some(2), "{url}");
    }
    let out = run(&[
        "--database-url",
        &format!("sqlite://{}", dir.path().display()),
        "demo",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
}

crate::both_backends!(
    report_with_a_minimum_position_waits_for_the_read_models_to_include_it,
    report_min_position
);

/// `fieldtrail report --min-position N` prints the document only once the read models include
/// position N: started before the projector has folded a new command, it prints the document
/// with it once the projector runs; a position beyond the journal's head exits 1 after the
/// bound, naming both positions.
async fn report_min_position(env: TestEnv) {
    // The programme, the cohort and its learners.
    let setup: String = crate::helpers::COHORT
        .lines()
        .take(13)
        .map(|l| format!("{l}\n"))
        .collect();
    env.import(&setup).await;
    // A new session, appended but not projected yet.
    let line = r#"{"command_id":"min-pos-1","command":"schedule_session","at":"2025-07-10T10:00:00+02:00","actor":"staff:coordinator","data":{"cohort_id":"cohort-2025","session_id":"min-pos-s1","module_id":"m4","kind":"course","starts_at":"2026-08-03T09:00:00+02:00","ends_at":"2026-08-03T12:30:00+02:00","half_days":1,"facilitator":"facilitator:intervenant-a"}}"#;
    let outcome = serde_json::to_value(
        env.handler()
            .handle_json(line, chrono::Utc::now())
            .await
            .unwrap(),
    )
    .unwrap();
    let position = outcome["positions"][1].as_i64().expect("applied");
    let report = fieldtrail(&env)
        .args(["report", "timetable", "--cohort", "cohort-2025"])
        .args(["--min-position", &position.to_string()])
        .env("FIELDTRAIL_READ_WAIT_MS", "30000")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The report is waiting (the projector has not run); now it does.
    env.project().await;
    let output = report.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let timetable: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        timetable["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == "min-pos-s1"),
        "{timetable}"
    );
    // The printed document is the stored one (no position field on the CLI).
    assert_eq!(
        timetable,
        env.document("timetable", "cohort-2025").await.unwrap()
    );

    let started = std::time::Instant::now();
    let output = fieldtrail(&env)
        .args(["report", "timetable", "--cohort", "cohort-2025"])
        .args(["--min-position", &(position + 1000).to_string()])
        .env("FIELDTRAIL_READ_WAIT_MS", "300")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "have not reached position {} within 300 ms (they reflect position {position}",
            position + 1000
        )),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    env.cleanup().await;
}

/// A reader of standard output that goes away (`fieldtrail import … | head -1`) is no panic:
/// the import goes on, answers its exit status and writes its `--report-json`.
#[tokio::test]
async fn import_into_a_closed_pipe_finishes_without_a_panic() {
    let env = TestEnv::sqlite("import_closed_pipe").await;
    let report_path =
        std::env::temp_dir().join(format!("ft-report-{}.json", uuid::Uuid::new_v4().simple()));
    let mut child = fieldtrail(&env)
        .arg("import")
        .arg(data("rules.jsonl"))
        .arg("--report-json")
        .arg(&report_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the first line is printed.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let report: Vec<Value> = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report.len(), 97);
    std::fs::remove_file(&report_path).ok();
    env.cleanup().await;
}
