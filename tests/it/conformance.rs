//! The journal conformance suite: what every backend behind the storage seam guarantees, run
//! on PostgreSQL and on the embedded SQLite journal from one body each (`both_backends!`):
//! optimistic concurrency, idempotency, no skipped event under concurrent writers, `as_of`
//! equal to a projection rebuilt from the journal cut there; and the copy between backends.
//! (Tamper evidence on both backends: `audit::verify_names_*`.)

use crate::helpers::{TestEnv, COHORT};
use fieldtrail_journal::audit::Cut;
use fieldtrail_journal::{CommandMetadata, Cursor, Journal, JournalError};
use fieldtrail_projections::{asof, DocKey, DocKind};
use std::collections::BTreeSet;

fn metadata(command_id: &str) -> CommandMetadata {
    CommandMetadata {
        reported_actor: None,
        command_id: command_id.to_owned(),
        command: "close_cohort".to_owned(),
        actor: "staff:test".to_owned(),
        occurred_at: "2025-01-01T10:00:00+01:00".parse().unwrap(),
        correlation_id: command_id.to_owned(),
        causation_id: command_id.to_owned(),
        event_ids: Vec::new(),
    }
}

fn event(cohort: &str) -> Vec<(String, String, serde_json::Value)> {
    vec![(
        "cohort_closed".to_owned(),
        "1".to_owned(),
        serde_json::json!({ "cohort_id": cohort }),
    )]
}

/// Every event of the journal in global-log order.
async fn log(journal: &Journal) -> Vec<fieldtrail_journal::StoredEvent> {
    let mut all = Vec::new();
    let mut cursor = Cursor::default();
    loop {
        let page = journal.read(cursor, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        cursor = Cursor::after(last);
        all.extend(page);
    }
}

crate::both_backends!(
    an_append_at_a_wrong_expected_version_is_refused_and_a_known_command_id_is_a_duplicate,
    expected_version_and_idempotency
);

async fn expected_version_and_idempotency(env: TestEnv) {
    let journal = &env.journal;
    assert_eq!(
        journal
            .append("cohort", "c1", 0, &event("c1"), &metadata("a1"))
            .await
            .unwrap()
            .len(),
        1
    );
    // Version 5 is free, but the stream is at 1, not 4: refused.
    let err = journal
        .append("cohort", "c1", 4, &event("c1"), &metadata("a2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::VersionConflict { expected: 4, .. }),
        "{err:?}"
    );
    // Behind: refused as well.
    let err = journal
        .append("cohort", "c1", 0, &event("c1"), &metadata("a3"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::VersionConflict { .. }),
        "{err:?}"
    );
    // The same command id again at the right version: a duplicate, nothing appended.
    let err = journal
        .append("cohort", "c1", 1, &event("c1"), &metadata("a1"))
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::DuplicateCommand(_)), "{err:?}");
    // ... also on another stream: the idempotency key is global.
    let err = journal
        .append("cohort", "c2", 0, &event("c2"), &metadata("a1"))
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::DuplicateCommand(_)), "{err:?}");
    assert_eq!(env.event_count().await, 1);
    assert!(journal.applied("a2").await.unwrap().is_none());
    let applied = journal.applied("a1").await.unwrap().unwrap();
    assert_eq!(applied.stream, "cohort/c1");
    assert_eq!(applied.first_position, applied.last_position);
    // Two concurrent appends at the same expected version: exactly one wins.
    let (events, mx, my) = (event("c1"), metadata("race-x"), metadata("race-y"));
    let (x, y) = tokio::join!(
        journal.append("cohort", "c1", 1, &events, &mx),
        journal.append("cohort", "c1", 1, &events, &my),
    );
    assert_eq!(
        u8::from(x.is_ok()) + u8::from(y.is_ok()),
        1,
        "{x:?} / {y:?}"
    );
    let versions: Vec<i64> = journal
        .stream("cohort", "c1", 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, [1, 2]);
    env.cleanup().await;
}

crate::both_backends!(
    a_reader_following_the_log_under_concurrent_writers_skips_nothing,
    no_skipped_event
);

async fn no_skipped_event(env: TestEnv) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 40;
    let journal = env.journal.clone();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let journal = journal.clone();
            tokio::spawn(async move {
                for n in 0..PER_WRITER {
                    let stream = format!("w{w}");
                    let id = format!("w{w}-{n}");
                    journal
                        .append(
                            "cohort",
                            &stream,
                            i64::try_from(n).unwrap(),
                            &event(&stream),
                            &metadata(&id),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // Follow the log while they write, as the projector does: resume after the last event read.
    let mut seen = Vec::new();
    let mut cursor = Cursor::default();
    let total = WRITERS * PER_WRITER;
    let started = std::time::Instant::now();
    while seen.len() < total {
        let page = journal.read(cursor, 7).await.unwrap();
        match page.last() {
            Some(last) => cursor = Cursor::after(last),
            None => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
        }
        seen.extend(page.iter().map(|e| e.position));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the reader saw {} of {total} events",
            seen.len()
        );
    }
    for w in writers {
        w.await.unwrap();
    }
    let distinct: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "an event was read twice");
    let all: BTreeSet<i64> = log(&journal).await.iter().map(|e| e.position).collect();
    assert_eq!(distinct, all, "the follower missed events");
    // Within each stream, the log order is the version order.
    for w in 0..WRITERS {
        let versions: Vec<i64> = log(&journal)
            .await
            .iter()
            .filter(|e| e.stream_id == format!("w{w}"))
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(versions, (1..=PER_WRITER as i64).collect::<Vec<_>>());
    }
    env.cleanup().await;
}

crate::both_backends!(
    as_of_a_position_equals_the_read_models_rebuilt_from_a_journal_cut_there,
    as_of_equals_a_replay_cut
);

async fn as_of_equals_a_replay_cut(env: TestEnv) {
    env.import(COHORT).await;
    let events = log(&env.journal).await;
    for cut_at in [1usize, 17, 105, 160, events.len()] {
        let position = events[cut_at - 1].position;
        // The cut: a new journal holding exactly the events up to `position` (global-log order).
        let scratch = TestEnv::sqlite("cut").await;
        let rows: Vec<_> = env
            .journal
            .export_events(Cursor::default(), 100_000)
            .await
            .unwrap()
            .into_iter()
            .take(cut_at)
            .collect();
        assert_eq!(rows.last().unwrap().position, position);
        scratch.journal.import_events(&rows, &[]).await.unwrap();
        scratch.copy_keys_from(&env.journal).await;
        fieldtrail_projections::runner::rebuild(&scratch.journal)
            .await
            .unwrap();
        let replayed = scratch.documents().await;
        let models = asof::models_as_of(&env.journal, Cut::Position(position))
            .await
            .unwrap();
        let mut as_of: Vec<(String, String, serde_json::Value)> = models
            .documents()
            .into_iter()
            .map(|(k, key, d)| (k.to_owned(), key, d))
            .collect();
        as_of.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(as_of, replayed, "as_of position {position}");
        // One document, folded from its own streams only, is the same.
        for (kind, key, document) in &replayed {
            let key = DocKey {
                kind: DocKind::parse(kind).unwrap(),
                key: key.clone(),
            };
            let alone = asof::document_as_of(&env.journal, &key, Cut::Position(position))
                .await
                .unwrap();
            assert_eq!(
                alone.as_ref(),
                Some(document),
                "{kind} {:?} at {position}",
                key.key
            );
        }
    }
    env.cleanup().await;
}

/// The documents of `env` and every stored event's envelope and chain columns.
async fn contents(
    env: &TestEnv,
) -> (
    Vec<(String, String, serde_json::Value)>,
    Vec<fieldtrail_journal::chain::SealedEvent>,
) {
    // The global log is read below the oldest running transaction of the whole server: wait
    // until another test's open transaction no longer hides the rows just copied.
    assert!(env
        .journal
        .wait_readable(std::time::Duration::from_secs(60))
        .await
        .unwrap());
    let events = env
        .journal
        .export_events(Cursor::default(), 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|mut e| {
            e.tx_id = 0; // each backend numbers its own transactions
            e
        })
        .collect();
    (env.documents().await, events)
}

#[tokio::test]
async fn copy_from_sqlite_to_postgres_and_back_keeps_events_chain_and_read_models() {
    let original = TestEnv::sqlite("copy_src").await;
    original.import(COHORT).await;
    // A command the rules refused: its id is spent, in the copies too.
    let refused = r#"{"command_id":"refused-once","command":"close_cohort","actor":"staff:test","at":"2026-07-01T10:00:00+02:00","data":{"cohort_id":"cohort-1999"}}"#;
    original
        .handler()
        .handle_json(refused, chrono::Utc::now())
        .await
        .unwrap();
    let rejections = original.journal.export_rejections().await.unwrap();
    assert_eq!(
        rejections
            .iter()
            .map(|r| (r.command_id.as_str(), r.code.as_str()))
            .collect::<Vec<_>>(),
        [("refused-once", "not_found")]
    );
    let want = contents(&original).await;
    assert_eq!(want.1.len(), 210);

    let postgres = TestEnv::new("copy_pg").await;
    // The test environment holds a token; a journal copy needs no event in the target.
    let progress = fieldtrail::cli::progress::Progress::hidden();
    let report = fieldtrail::cli::copy::copy(&original.journal, &postgres.journal, &progress)
        .await
        .unwrap();
    assert_eq!(
        (report.events, report.commands, report.head),
        (210, 203, 210)
    );
    assert_eq!(contents(&postgres).await, want);
    assert!(postgres.journal.verify(None).await.unwrap().intact());
    assert_eq!(
        postgres.journal.export_rejections().await.unwrap(),
        rejections
    );

    // And back, through the command line.
    let back = TestEnv::sqlite("copy_back").await;
    let output = crate::helpers::fieldtrail_binary()
        .args([
            "copy",
            "--from",
            &postgres.settings.database_url,
            "--to",
            &back.settings.database_url,
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("copied 210 events, 203 commands, "));
    assert_eq!(contents(&back).await, want);
    assert_eq!(back.journal.export_rejections().await.unwrap(), rejections);
    let verified = crate::helpers::fieldtrail_binary()
        .args(["audit", "verify"])
        .env("DATABASE_URL", &back.settings.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // The copy goes on as a journal: a new command appends after the copied head.
    let line = r#"{"command_id":"after-copy","command":"open_cohort","actor":"staff:test","at":"2026-07-01T10:00:00+02:00","data":{"cohort_id":"cohort-2026","programme_id":"cisdcp","title":"Promotion 2026-2027","starts_on":"2026-09-13","ends_on":"2027-06-30"}}"#;
    for env in [&postgres, &back] {
        let outcome = serde_json::to_value(
            env.handler()
                .handle_json(line, chrono::Utc::now())
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(outcome["outcome"], "applied", "{outcome}");
        assert_eq!(outcome["positions"][0], 211, "{outcome}");
        assert!(env.journal.verify(None).await.unwrap().intact());
    }

    // A target that already holds events is refused, and nothing is written to it.
    let err = fieldtrail::cli::copy::copy(&original.journal, &back.journal, &progress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(back.event_count().await, 211);
    original.cleanup().await;
    postgres.cleanup().await;
    back.cleanup().await;
}

#[tokio::test]
async fn the_embedded_journal_refuses_update_and_delete_of_events() {
    let env = TestEnv::sqlite("append_only").await;
    env.import(COHORT).await;
    let path = fieldtrail_journal::sqlite_path(&env.settings.database_url).unwrap();
    let connection = rusqlite::Connection::open(path).unwrap();
    for statement in [
        "UPDATE events SET actor = 'someone:else' WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
    ] {
        let err = connection.execute(statement, []).expect_err(statement);
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    assert_eq!(env.event_count().await, 210);
    env.cleanup().await;
}

crate::both_backends!(
    among_concurrent_appends_a_conflicting_one_fails_alone,
    conflicting_one_fails_alone
);

async fn conflicting_one_fails_alone(env: TestEnv) {
    // 16 appends at once: 14 on their own streams, 2 racing for version 1 of one stream. On the
    // embedded backend they share group commits; exactly one of the racing pair may win, and
    // every other append succeeds.
    let journal = env.journal.clone();
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let stream = if n < 2 {
                    "race".to_owned()
                } else {
                    format!("own-{n}")
                };
                journal
                    .append(
                        "cohort",
                        &stream,
                        0,
                        &event(&stream),
                        &metadata(&format!("concurrent-{n}")),
                    )
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let racing_ok = results[..2].iter().filter(|r| r.is_ok()).count();
    assert_eq!(racing_ok, 1, "{:?}", &results[..2]);
    let loser = results[..2].iter().find(|r| r.is_err()).unwrap();
    assert!(
        matches!(loser, Err(JournalError::VersionConflict { .. })),
        "{loser:?}"
    );
    assert!(results[2..].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(env.event_count().await, 15);
    assert!(journal.applied("concurrent-5").await.unwrap().is_some());
    assert!(journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}
