//! Personal data at rest (ARCHITECTURE.md, "Personal data"): the personal fields of the shipped
//! cohort and of the harder path (names, notes, remarks, jury names, a complaint) are sealed in
//! every journal table, on both backends, and read back in clear through the journal.

use crate::helpers::{TestEnv, COHORT};
use serde_json::Value;

const HARDER_PATH: &str = include_str!("../data/harder-path.jsonl");

fn values_at(value: &Value, path: &str, out: &mut Vec<String>) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (name, array) = match head.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (head, false),
    };
    let Some(v) = value.get(name) else { return };
    let items: Vec<&Value> = if array {
        v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
    } else {
        vec![v]
    };
    for item in items {
        match rest {
            Some(rest) => values_at(item, rest, out),
            None => out.extend(item.as_str().map(str::to_owned)),
        }
    }
}

/// Every personal text of `scenario` (JSON Lines of commands).
pub fn personal_texts(scenario: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in scenario.lines().filter(|l| !l.trim().is_empty()) {
        let command: Value = serde_json::from_str(line).unwrap();
        // The domain's list of the personal values of each command.
        for (name, paths) in fieldtrail_domain::personal::COMMAND_PERSONAL {
            if command["command"] == *name {
                for path in *paths {
                    values_at(&command["data"], path, &mut out);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every row of every table of the journal but `except`, as text (PostgreSQL: each row cast to
/// text; SQLite: each column as text, blobs as hex).
pub async fn dump_tables(env: &TestEnv, except: &[&str]) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    match fieldtrail_journal::sqlite_path(&env.settings.database_url) {
        Some(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            let tables: Vec<String> = db
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for table in tables.iter().filter(|t| !except.contains(&t.as_str())) {
                let mut select = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                let n = select.column_count();
                let mut result = select.query([]).unwrap();
                while let Some(row) = result.next().unwrap() {
                    let mut text = String::new();
                    for i in 0..n {
                        match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(t) => {
                                text.push_str(&String::from_utf8_lossy(t));
                            }
                            rusqlite::types::ValueRef::Blob(b) => text.push_str(&hex::encode(b)),
                            other => text.push_str(&format!("{other:?}")),
                        }
                        text.push('|');
                    }
                    rows.push((table.clone(), text));
                }
            }
        }
        None => {
            let client = env.pool().get().await.unwrap();
            let tables: Vec<String> = client
                .query(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            for table in tables.iter().filter(|t| !except.contains(&t.as_str())) {
                for row in client
                    .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                    .await
                    .unwrap()
                {
                    rows.push((table.clone(), row.get(0)));
                }
            }
        }
    }
    rows
}

/// The personal texts that occur in a dump, with the table they occur in. JSON escapes
/// non-ASCII letters in neither backend's text form, so a plain search finds them.
pub fn found_in(dump: &[(String, String)], texts: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for text in texts {
        for (table, row) in dump {
            if row.contains(text.as_str()) {
                found.push((table.clone(), text.clone()));
                break;
            }
        }
    }
    found
}

crate::both_backends!(
    personal_fields_are_sealed_in_the_journal_and_read_in_clear,
    sealed_at_rest
);

async fn sealed_at_rest(env: TestEnv) {
    let cohort = env.import(COHORT).await;
    let harder = env.import(HARDER_PATH).await;
    assert_eq!((cohort.rejected, harder.rejected), (0, 0));
    // Refusals whose message quotes a name: the answer quotes it, the remembered refusal
    // (table command_rejections) does not, through the import and over HTTP.
    let refusals = refusals_quoting_names();
    let first = env.import(&refusals).await;
    assert_eq!(first.rejected, 2, "{first:?}");
    assert!(first.lines[0]
        .message
        .as_deref()
        .is_some_and(|m| m.contains("Mme Personne Inconnue")));
    let again = env.import(&refusals).await;
    assert_eq!(again.rejected, 2);
    for line in &again.lines {
        let message = line.message.as_deref().unwrap_or("");
        assert!(
            message.contains(fieldtrail_domain::personal::WITHHELD)
                && !message.contains("Mme Personne Inconnue")
                && !message.contains("Mme Prof"),
            "{message}"
        );
    }
    let (address, stop, task) = env.serve().await;
    let over_http: Value = serde_json::json!({"command_id": "refuse-3", "command": "recuse_jury_member",
        "at": "2026-06-02T09:00:00+02:00", "actor": "staff:coordinator",
        "data": {"field_study_id": "fs-m1", "defence_id": "d1", "name": "M. Fantôme Absent", "reason": "x"}});
    let client = env.client();
    for (round, quoted) in [(1, true), (2, false)] {
        let response = client
            .post(format!("http://{address}/commands"))
            .json(&over_http)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422, "round {round}");
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert_eq!(message.contains("M. Fantôme Absent"), quoted, "{message}");
    }
    stop.cancel();
    task.await.unwrap().unwrap();

    let texts: Vec<String> = [
        personal_texts(COHORT),
        personal_texts(HARDER_PATH),
        personal_texts(&refusals),
        vec!["M. Fantôme Absent".to_owned()],
    ]
    .concat();
    assert!(texts.len() > 30, "{texts:?}");
    assert!(texts.iter().any(|t| t == "Dominique Jaouen"));
    assert!(texts.iter().any(|t| t == "Mme Personne Inconnue"));

    // No table holds any of them (the key table holds keys only), nor does the JetStream
    // stream the relay filled.
    // (The server above relayed what was there then; this publishes the rest.)
    env.relay().await;
    let mut dump = dump_tables(&env, &["subject_keys"]).await;
    for table in [
        "events",
        "command_ledger",
        "read_models",
        "command_rejections",
    ] {
        assert!(dump.iter().any(|(t, _)| t == table), "{table} dumped");
    }
    let messages = crate::faults::stream_contents(&env).await;
    assert_eq!(
        messages.len() as i64,
        env.event_count().await,
        "every event on NATS"
    );
    dump.extend(
        messages
            .iter()
            .map(|(subject, body)| ("jetstream".to_owned(), format!("{subject} {body}"))),
    );
    assert_eq!(found_in(&dump, &texts), vec![], "plaintext at rest");

    // Sealed as `ft1:`, one key row per subject, wrapped (never the plaintext key).
    let rows = env
        .journal
        .export_events(fieldtrail_journal::Cursor::default(), 100_000)
        .await
        .unwrap();
    let enrolled = rows
        .iter()
        .find(|r| r.event_type == "learner_enrolled")
        .unwrap();
    assert!(enrolled.payload["name"]
        .as_str()
        .unwrap()
        .starts_with(fieldtrail_journal::sealing::SEALED_PREFIX));
    let keys = env.journal.export_subject_keys().await.unwrap();
    let subjects: Vec<&str> = keys.iter().map(|k| k.subject_id.as_str()).collect();
    for s in ["learner:l25-01", "field_study:fs25-a", "jury:fs25-a"] {
        assert!(subjects.contains(&s), "{s} in {subjects:?}");
    }
    assert!(subjects
        .iter()
        .any(|s| s.starts_with("complaint:hp-cohort:")));
    assert!(keys
        .iter()
        .all(|k| k.wrapped.as_ref().is_some_and(|w| w.len() == 24 + 32 + 16)));

    // Read through the journal: in clear, where the rules and read models need it.
    let stream = env
        .journal
        .stream("cohort", "cohort-2025", 0)
        .await
        .unwrap();
    let name = stream
        .iter()
        .find(|e| e.event_type == "learner_enrolled")
        .map(|e| e.payload["name"].clone());
    assert_eq!(name, Some(Value::from("Dominique Jaouen")));
    let complaints = env
        .document("complaints", "hp-cohort")
        .await
        .expect("complaints register");
    assert!(complaints
        .to_string()
        .contains("Séance déplacée sans préavis"));
    // Every personal value the events hold came from a value the domain lists as personal
    // in its command (what keeps refusals clean): the list misses none of the scenarios'.
    let mut held = Vec::new();
    let log = env
        .journal
        .read_log(
            fieldtrail_journal::audit::Cut::Position(i64::MAX),
            None,
            fieldtrail_journal::Cursor::default(),
            100_000,
        )
        .await
        .unwrap();
    for event in &log {
        for (path, _) in fieldtrail_domain::personal::personal_fields(&event.event_type) {
            values_at(&event.payload, path, &mut held);
        }
    }
    let given: std::collections::BTreeSet<String> =
        texts.iter().map(|t| t.trim().to_owned()).collect();
    let missing: Vec<&String> = held.iter().filter(|t| !given.contains(t.trim())).collect();
    assert!(!held.is_empty());
    assert_eq!(missing, Vec::<&String>::new(), "not in COMMAND_PERSONAL");
    // The chain covers the sealed rows.
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}

/// Two commands of the harder path's field study fs-m1 that the rules refuse with a message
/// quoting a jury member's name.
fn refusals_quoting_names() -> String {
    [
        serde_json::json!({"command_id": "refuse-1", "command": "recuse_jury_member",
            "at": "2026-06-02T09:00:00+02:00", "actor": "staff:coordinator",
            "data": {"field_study_id": "fs-m1", "defence_id": "d1", "name": "Mme Personne Inconnue",
                     "reason": "Jamais nommée au jury"}}),
        serde_json::json!({"command_id": "refuse-2", "command": "appoint_jury_member",
            "at": "2026-07-07T09:00:00+02:00", "actor": "staff:coordinator",
            "data": {"field_study_id": "fs-m1", "defence_id": "d2", "name": "Mme Prof", "role": "professional"}}),
    ]
    .map(|c| c.to_string())
    .join("\n")
}

fn erase(command_id: &str, subject_id: &str) -> String {
    serde_json::json!({
        "command_id": command_id, "command": "erase_subject", "at": "2026-10-01T10:00:00+02:00",
        "actor": "staff:dpo", "data": {"subject_id": subject_id, "reason": "demande d'effacement RGPD n° 12"}
    })
    .to_string()
}

crate::both_backends!(
    an_erased_subject_reads_as_the_marker_everywhere_and_the_chain_still_verifies,
    erased_everywhere
);

async fn erased_everywhere(env: TestEnv) {
    use fieldtrail_journal::sealing::ERASED;
    env.import(COHORT).await;
    env.import(HARDER_PATH).await;
    let digest_before = env.journal.verify(None).await.unwrap().digest;
    // A learner, a study's jury and a complaint: one command each, through the import.
    let lines = [
        erase("erase-1", "learner:p-05"),
        erase("erase-2", "jury:fs-m1"),
        erase("erase-3", "complaint:hp-cohort:k-01"),
    ]
    .join("\n");
    let report = env.import(&lines).await;
    assert_eq!((report.applied, report.rejected), (3, 0), "{report:?}");
    // Once only.
    let again = env.import(&erase("erase-4", "learner:p-05")).await;
    assert_eq!(again.rejected, 1);

    // The journal answers the marker for the erased subjects only.
    let cohort = env.journal.stream("cohort", "hp-cohort", 0).await.unwrap();
    let names: Vec<(String, String)> = cohort
        .iter()
        .filter(|e| e.event_type == "learner_enrolled")
        .map(|e| {
            (
                e.payload["learner_id"].as_str().unwrap().to_owned(),
                e.payload["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(names.contains(&("p-05".to_owned(), ERASED.to_owned())));
    assert!(names.contains(&("p-01".to_owned(), "Anne Le Goff".to_owned())));
    let study = env.journal.stream("field_study", "fs-m1", 0).await.unwrap();
    let jury: Vec<&Value> = study
        .iter()
        .filter(|e| e.event_type == "defence_scheduled")
        .flat_map(|e| e.payload["jury"].as_array().unwrap())
        .map(|m| &m["name"])
        .collect();
    assert!(
        !jury.is_empty() && jury.iter().all(|n| *n == ERASED),
        "{jury:?}"
    );

    // The read models show the marker where the field was, and nothing of the erased data.
    let erased_texts: Vec<String> = [
        "Élise Morvan",
        "Séance déplacée sans préavis",
        "La séance du 13 octobre a été déplacée la veille au soir ; je n'ai pas pu m'organiser.",
        "Nous vous présentons nos excuses : le déplacement aurait dû être annoncé plus tôt.",
        "M. Centre",
        "A encadré le groupe pendant l'enquête",
    ]
    .map(str::to_owned)
    .to_vec();
    let documents = env.documents().await;
    let register = env.document("complaints", "hp-cohort").await.unwrap();
    assert!(register.to_string().contains(ERASED), "{register}");
    assert!(register.to_string().contains("Calendrier des restitutions"));
    // The dump of every table, the key table included, and the JetStream stream: nothing of
    // the erased subjects'.
    env.relay().await;
    let mut dump = dump_tables(&env, &[]).await;
    dump.extend(
        crate::faults::stream_contents(&env)
            .await
            .into_iter()
            .map(|(subject, body)| ("jetstream".to_owned(), format!("{subject} {body}"))),
    );
    assert_eq!(
        found_in(&dump, &erased_texts),
        vec![],
        "erased data at rest"
    );
    let keys = env.journal.export_subject_keys().await.unwrap();
    for subject in ["learner:p-05", "jury:fs-m1", "complaint:hp-cohort:k-01"] {
        let row = keys.iter().find(|k| k.subject_id == subject).unwrap();
        assert!(row.wrapped.is_none() && row.erased_at.is_some(), "{row:?}");
    }

    // Subject access: the erased learner's data is the marker, another learner's in clear;
    // over HTTP for staff and the learner themself only.
    let erased = fieldtrail::subjects::export(&env.journal, "learner:p-05")
        .await
        .unwrap();
    assert_eq!(erased["erased"], true);
    let data = erased["personal_data"].as_array().unwrap();
    assert!(
        !data.is_empty() && data.iter().all(|d| d["value"] == ERASED),
        "{data:?}"
    );
    let kinds: Vec<&str> = erased["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    for kind in ["learner_enrolled", "session_held", "subject_erased"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let (address, stop, task) = env.serve().await;
    let get = |token: String, subject: &str| {
        let client = env.client_with(&token);
        let url = format!("http://{address}/subjects/{subject}/export");
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = get(env.staff.clone(), "learner:p-01").await;
    assert_eq!(status, 200);
    assert_eq!(body["erased"], false);
    assert!(body["personal_data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["field"] == "name" && d["value"] == "Anne Le Goff"));
    let own = env
        .token(
            fieldtrail::auth::Role::Learner,
            Some("hp-cohort"),
            Some("p-01"),
        )
        .await;
    assert_eq!(get(own.clone(), "learner:p-01").await.0, 200);
    assert_eq!(get(own, "learner:p-02").await.0, 403);
    let auditor = env.token(fieldtrail::auth::Role::Auditor, None, None).await;
    assert_eq!(get(auditor, "learner:p-01").await.0, 403);
    let (status, body) = get(env.staff.clone(), "learner:p-05").await;
    assert_eq!((status, &body["erased"]), (200, &Value::Bool(true)));
    assert_eq!(get(env.staff.clone(), "pupil:p-01").await.0, 422);
    stop.cancel();
    task.await.unwrap().unwrap();

    // The chain still verifies (the same digest up to the erasures), and a rebuild from the
    // journal gives the same documents.
    let report = env.journal.verify(None).await.unwrap();
    assert!(report.intact());
    assert_ne!(report.digest, digest_before);
    fieldtrail_projections::runner::rebuild(&env.journal)
        .await
        .unwrap();
    assert_eq!(env.documents().await, documents, "rebuild after erasure");
    env.cleanup().await;
}

crate::both_backends!(
    retention_erases_the_group_texts_of_closed_cohorts_once,
    retention_once
);

async fn retention_once(env: TestEnv) {
    use fieldtrail_journal::sealing::ERASED;
    env.import(COHORT).await;
    let handler = env.handler();
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    // cohort-2025 closed in 2026: kept 5 years, nothing is due in 2027.
    let early =
        fieldtrail::cli::retention::apply(&handler, &env.journal, 5, at("2027-01-01T00:00:00Z"))
            .await
            .unwrap();
    assert_eq!((early.erased.len(), early.kept), (0, 3));
    let due = at("2032-01-01T00:00:00Z");
    let report = fieldtrail::cli::retention::apply(&handler, &env.journal, 5, due)
        .await
        .unwrap();
    assert_eq!(report.erased.len(), 3, "{report:?}");
    let again = fieldtrail::cli::retention::apply(&handler, &env.journal, 5, due)
        .await
        .unwrap();
    assert_eq!((again.erased.len(), again.already.len()), (0, 3));
    env.project().await;
    // Logged as events; the notes read as the marker, the hypotheses (not personal) stay.
    let erasures = env
        .journal
        .stream("subject", "field_study:fs25-a", 0)
        .await
        .unwrap();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].actor, fieldtrail::cli::retention::ACTOR);
    let study = env
        .journal
        .stream("field_study", "fs25-a", 0)
        .await
        .unwrap();
    let notes: Vec<&Value> = study
        .iter()
        .filter(|e| e.event_type == "reflexive_note_recorded")
        .map(|e| &e.payload["text"])
        .collect();
    assert!(!notes.is_empty() && notes.iter().all(|t| *t == ERASED));
    assert!(study
        .iter()
        .any(|e| e.event_type == "hypothesis_stated" && e.payload["text"] != ERASED));
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}

#[tokio::test]
async fn only_staff_may_erase_a_subject_over_http() {
    use fieldtrail::auth::Role;
    let env = TestEnv::sqlite("erase_roles").await;
    env.import(COHORT).await;
    let (address, stop, task) = env.serve().await;
    let post = |token: String, command_id: &str| {
        let client = env.client_with(&token);
        let body: Value = serde_json::from_str(&erase(command_id, "learner:l25-01")).unwrap();
        let url = format!("http://{address}/commands");
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let before = env.event_count().await;
    for (n, token) in [
        env.token(Role::Facilitator, Some("cohort-2025"), None)
            .await,
        env.token(Role::Jury, Some("cohort-2025"), None).await,
        env.token(Role::Learner, Some("cohort-2025"), Some("l25-01"))
            .await,
        env.token(Role::Auditor, None, None).await,
        env.token(Role::Dashboard, None, None).await,
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(post(token, &format!("erase-r{n}")).await, 403, "role #{n}");
    }
    assert_eq!(env.event_count().await, before, "a refusal appends nothing");
    let keys = env.journal.export_subject_keys().await.unwrap();
    assert!(keys
        .iter()
        .all(|k| k.subject_id != "learner:l25-01" || k.wrapped.is_some()));
    assert_eq!(post(env.staff.clone(), "erase-staff").await, 200);
    assert_eq!(env.event_count().await, before + 1);
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn the_retention_job_runs_from_the_command_line_and_twice_adds_nothing() {
    let env = TestEnv::sqlite("retention_cli").await;
    env.import(COHORT).await;
    let run = || {
        crate::cli::fieldtrail(&env)
            .args(["retention", "--group-texts-years", "0"])
            .output()
            .unwrap()
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{out} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("erased field_study:fs25-a"), "{out}");
    assert!(out.contains("3 erased, 0 erased before"), "{out}");
    let second = run();
    let out = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(out.contains("0 erased, 3 erased before"), "{out}");
    assert_eq!(
        env.journal
            .stream("subject", "field_study:fs25-b", 0)
            .await
            .unwrap()
            .len(),
        1
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_postgresql_journal_needs_a_master_key_and_the_embedded_one_warns_without() {
    let postgres = TestEnv::new("master_key").await;
    let without = |url: &str, args: &[&str]| {
        let output = crate::helpers::fieldtrail_binary()
            .env_remove(fieldtrail_journal::sealing::MASTER_KEY_ENV)
            .env_remove(fieldtrail_journal::sealing::MASTER_KEY_FILE_ENV)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, err) = without(&postgres.settings.database_url, &["audit", "verify"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("FIELDTRAIL_MASTER_KEY") && err.lines().count() == 1,
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.db");
    let url = format!("sqlite://{}", file.display());
    let (code, err) = without(
        &url,
        &[
            "import",
            &format!("{}/../data/cohort-2025.jsonl", env!("CARGO_MANIFEST_DIR")),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("DEVELOPMENT master key"), "{err}");
    postgres.cleanup().await;
}

#[tokio::test]
async fn another_master_key_is_refused_before_anything_is_written() {
    let env = TestEnv::new("wrong_master_key").await;
    assert_eq!(env.import(COHORT).await.rejected, 0);
    let head = env.journal.head().await.unwrap();
    let other = "ab".repeat(32);
    let with_key = |key: &str, args: &[&str]| {
        let output = crate::helpers::fieldtrail_binary()
            .env(fieldtrail_journal::sealing::MASTER_KEY_ENV, key)
            .env_remove(fieldtrail_journal::sealing::MASTER_KEY_FILE_ENV)
            .env("DATABASE_URL", &env.settings.database_url)
            .env("RUST_LOG", "warn")
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // A command through the import: refused at open, nothing appended.
    let dir = tempfile::tempdir().unwrap();
    let line = dir.path().join("open.jsonl");
    std::fs::write(
        &line,
        r#"{"command_id": "wrong-key-1", "command": "open_cohort", "at": "2027-01-04T09:00:00+01:00", "actor": "staff:s", "data": {"cohort_id": "cohort-wrong", "programme_id": "caferuis-2025", "title": "x", "starts_on": "2027-01-04", "ends_on": "2027-06-30"}}"#,
    )
    .unwrap();
    let (code, err) = with_key(&other, &["import", &line.display().to_string()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("does not open this journal's key table"),
        "{err}"
    );
    assert_eq!(env.journal.head().await.unwrap(), head);
    // A malformed key is one line, not a panic, for status too.
    let (code, err) = with_key("zz", &["status"]);
    assert_ne!(code, Some(101), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The right key still opens it.
    let (code, err) = with_key(&crate::helpers::master_key_hex(), &["audit", "verify"]);
    assert_eq!(code, Some(0), "{err}");
    env.cleanup().await;
}

#[tokio::test]
async fn erasing_a_subject_nothing_was_stored_of_is_not_found_and_appends_nothing() {
    let env = TestEnv::new("erase_unknown").await;
    assert_eq!(env.import(COHORT).await.rejected, 0);
    let head = env.journal.head().await.unwrap();
    for (n, subject) in ["learner:nobody", "field_study:nope"].iter().enumerate() {
        let line = format!(
            r#"{{"command_id": "erase-unknown-{n}", "command": "erase_subject", "at": "2026-12-01T10:00:00+01:00", "actor": "staff:dpo", "data": {{"subject_id": "{subject}", "reason": "demande"}}}}"#
        );
        let alone = env
            .handler()
            .handle_json(&line, chrono::Utc::now())
            .await
            .unwrap();
        // The import's bulk path answers the same (its look-ups ask the key table too).
        let other_id = line.replace("erase-unknown-", "erase-unknown-bulk-");
        let bulk = env
            .handler()
            .handle_batch(&[other_id.as_str()], chrono::Utc::now(), None)
            .await
            .unwrap()
            .remove(0);
        for outcome in [alone, bulk] {
            match outcome {
                fieldtrail::handler::Outcome::Rejected { code, message, .. } => {
                    assert_eq!(code.as_str(), "not_found", "{message}");
                    assert!(message.contains(subject), "{message}");
                }
                other => panic!("{subject}: {other:?}"),
            }
        }
    }
    assert_eq!(env.journal.head().await.unwrap(), head);
    env.cleanup().await;
}

/// Every research export of the journal (three shapes in CSV, the long shape in JSON Lines),
/// in memory: `(what, bytes)`.
async fn research_exports(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    use fieldtrail::research::pseudonym::{PseudonymKey, Pseudonymiser};
    use fieldtrail::research::shape::{DateMode, Shape};
    use fieldtrail::research::writer::Format;
    use fieldtrail::research::{self, ChunkSink, ExportRequest, ResearchError};

    struct Bytes(Vec<u8>);
    impl ChunkSink for Bytes {
        async fn send(&mut self, chunk: Vec<u8>) -> Result<(), ResearchError> {
            self.0.extend(chunk);
            Ok(())
        }
    }

    let pseudonyms = Pseudonymiser::new(PseudonymKey::new(b"erasure-test-key-0123456789").unwrap());
    let hidden = indicatif::ProgressBar::hidden();
    let mut out = Vec::new();
    for (format, shape) in [
        (Format::Csv, Shape::Long),
        (Format::Csv, Shape::Wide),
        (Format::Csv, Shape::Summary),
        (Format::Jsonl, Shape::Long),
    ] {
        let request = ExportRequest {
            cohorts: vec![],
            format,
            shape,
            dates: DateMode::Exact,
            min_cohort_size: research::DEFAULT_MIN_COHORT_SIZE,
            force: false,
        };
        let prepared = research::prepare(&env.journal, &request, &pseudonyms, &hidden)
            .await
            .unwrap();
        let mut sink = Bytes(Vec::new());
        research::write(
            &env.journal,
            prepared,
            &request,
            &pseudonyms,
            &mut sink,
            &hidden,
        )
        .await
        .unwrap();
        out.push((format!("{} {}", shape.as_str(), format.as_str()), sink.0));
    }
    out
}

crate::both_backends!(
    research_exports_are_byte_identical_before_and_after_an_erasure,
    research_unchanged_by_erasure
);

async fn research_unchanged_by_erasure(env: TestEnv) {
    use fieldtrail_journal::sealing::ERASED;
    env.import(COHORT).await;
    let before = research_exports(&env).await;
    let long = String::from_utf8(before[0].1.clone()).unwrap();
    // The classified reasons of the shipped cohort are there to be kept: l25-08 withdrew for
    // a new post ("professional") and left fs25-b ("withdrawal").
    assert!(
        long.contains("withdrew") && long.contains("professional"),
        "{long}"
    );
    assert!(long.contains("field_study_left"), "{long}");

    // The learner through the import (the batch path), their field study's group over one
    // command (the line-by-line path).
    let report = env
        .import(&erase("erase-research-1", "learner:l25-08"))
        .await;
    assert_eq!((report.applied, report.rejected), (1, 0), "{report:?}");
    let now = chrono::Utc::now();
    let outcome = env
        .handler()
        .handle_json_as(&erase("erase-research-2", "field_study:fs25-b"), now, None)
        .await
        .unwrap();
    assert!(
        matches!(outcome, fieldtrail::handler::Outcome::Applied { .. }),
        "{outcome:?}"
    );

    // The reasons now read as the marker in the journal...
    let cohort = env
        .journal
        .stream("cohort", "cohort-2025", 0)
        .await
        .unwrap();
    let withdrew = cohort
        .iter()
        .find(|e| e.event_type == "learner_withdrew" && e.payload["learner_id"] == "l25-08")
        .unwrap();
    assert_eq!(withdrew.payload["reason"], ERASED);
    let study = env
        .journal
        .stream("field_study", "fs25-b", 0)
        .await
        .unwrap();
    let left = study
        .iter()
        .find(|e| e.event_type == "members_changed")
        .unwrap();
    assert_eq!(left.payload["reason"], ERASED);
    // ... and their categories are kept, non-personal, by the erasures.
    let erasure = env
        .journal
        .stream("subject", "learner:l25-08", 0)
        .await
        .unwrap();
    assert_eq!(
        erasure[0].payload["reason_categories"],
        serde_json::json!([{"event_id": withdrew.event_id.to_string(), "field": "reason",
                            "category": "professional"}])
    );
    let erasure = env
        .journal
        .stream("subject", "field_study:fs25-b", 0)
        .await
        .unwrap();
    assert_eq!(
        erasure[0].payload["reason_categories"],
        serde_json::json!([{"event_id": left.event_id.to_string(), "field": "reason",
                            "category": "withdrawal"}])
    );

    let after = research_exports(&env).await;
    for ((what, a), (_, b)) in before.iter().zip(&after) {
        assert!(
            a == b,
            "{what} changed:\n{}\n---\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}
