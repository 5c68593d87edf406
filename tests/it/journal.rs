//! The journal's own guarantees: append-only, complete envelopes, exact expected version.

use crate::helpers::{TestEnv, COHORT};
use fieldtrail_journal::{CommandMetadata, JournalError, PgJournal};

#[tokio::test]
async fn update_and_delete_on_events_are_refused_and_rows_are_complete() {
    let env = TestEnv::new("append_only").await;
    env.import(COHORT).await;
    let client = env.pool().get().await.unwrap();
    for statement in [
        "UPDATE events SET actor = 'someone:else' WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
        "TRUNCATE events",
    ] {
        let err = client.execute(statement, &[]).await.expect_err(statement);
        assert!(
            err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
            "{statement}: {err:?}"
        );
    }
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE occurred_at IS NOT NULL AND recorded_at IS NOT NULL
                                               AND actor <> '' AND command_id <> '') FROM events",
            &[],
        )
        .await
        .unwrap();
    let (all, complete): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(all, 210);
    assert_eq!(complete, all);
    // Stream versions are contiguous 1..n in every stream.
    let gaps: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT stream_type, stream_id, max(stream_version) AS m, count(*) AS c
                                   FROM events GROUP BY 1, 2) s WHERE m <> c",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(gaps, 0);
    drop(client);
    env.cleanup().await;
}

fn metadata(command_id: &str) -> CommandMetadata {
    CommandMetadata {
        reported_actor: None,
        command_id: command_id.to_owned(),
        command: "close_cohort".to_owned(),
        actor: "staff:test".to_owned(),
        occurred_at: "2025-01-01T10:00:00+01:00".parse().unwrap(),
        correlation_id: command_id.to_owned(),
        causation_id: command_id.to_owned(),
    }
}

#[tokio::test]
async fn an_append_at_a_wrong_expected_version_is_refused_even_without_a_key_clash() {
    let env = TestEnv::new("expected_version").await;
    let journal = PgJournal::new(env.pool().clone());
    let event = || {
        vec![(
            "cohort_closed".to_owned(),
            "1".to_owned(),
            serde_json::json!({"cohort_id": "c1"}),
        )]
    };
    assert_eq!(
        journal
            .append("cohort", "c1", 0, &event(), &metadata("a1"))
            .await
            .unwrap()
            .len(),
        1
    );
    // Version 5 is free, but the stream is at 1, not 4: refused.
    let err = journal
        .append("cohort", "c1", 4, &event(), &metadata("a2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::VersionConflict { expected: 4, .. }),
        "{err:?}"
    );
    // Behind: refused as well.
    let err = journal
        .append("cohort", "c1", 0, &event(), &metadata("a3"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::VersionConflict { .. }),
        "{err:?}"
    );
    // Same command id again at the right version: a duplicate, nothing appended.
    let err = journal
        .append("cohort", "c1", 1, &event(), &metadata("a1"))
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::DuplicateCommand(_)), "{err:?}");
    assert_eq!(env.event_count().await, 1);
    assert!(journal.applied("a2").await.unwrap().is_none());
    env.cleanup().await;
}
