//! Personal data at rest (ARCHITECTURE.md, "Personal data"): the personal fields of the shipped
//! cohort and of the harder path (names, notes, remarks, jury names, a complaint) are sealed in
//! every journal table, on both backends, and read back in clear through the journal.

use crate::helpers::{TestEnv, COHORT};
use serde_json::Value;

const HARDER_PATH: &str = include_str!("../data/harder-path.jsonl");

/// The personal values a scenario file gives, by command: `(command, field path in data)`
/// where the event keeps the value in a personal field (see `personal::CLASSIFICATION`).
const PERSONAL_INPUT: &[(&str, &str)] = &[
    ("enrol_learner", "name"),
    ("withdraw_learner", "reason"),
    ("correct_attendance", "reason"),
    ("record_deis_credit", "note"),
    ("revoke_certificate", "reason"),
    ("file_complaint", "subject"),
    ("file_complaint", "text"),
    ("answer_complaint", "answer"),
    ("change_members", "reason"),
    ("negotiate_commission", "negotiated_with"),
    ("log_intervention", "summary"),
    ("record_reflexive_note", "text"),
    ("schedule_defence", "jury[].name"),
    ("record_defence", "outcomes[].remarks"),
    ("recuse_jury_member", "name"),
    ("recuse_jury_member", "reason"),
    ("appoint_jury_member", "name"),
    ("split_field_study", "reason"),
    ("rectify_defence_result", "reason"),
];

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
        for (name, path) in PERSONAL_INPUT {
            if command["command"] == *name {
                values_at(&command["data"], path, &mut out);
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
    let texts: Vec<String> = [personal_texts(COHORT), personal_texts(HARDER_PATH)].concat();
    assert!(texts.len() > 30, "{texts:?}");
    assert!(texts.iter().any(|t| t == "Dominique Jaouen"));

    // The journal's tables hold none of them (the read models are derived: see the erasure's
    // own test; the key table holds keys only).
    let dump = dump_tables(&env, &["subject_keys", "read_models"]).await;
    assert!(dump.iter().any(|(t, _)| t == "events"));
    assert!(dump.iter().any(|(t, _)| t == "command_ledger"));
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
    // The chain covers the sealed rows.
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}
