//! The PostgreSQL journal's own guarantees: append-only (triggers), complete envelopes.
//! What every backend guarantees is in `conformance`.

use crate::helpers::{TestEnv, COHORT};

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
