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

/// Waits up to `limit` for `notified` (armed by the caller); whether it came.
async fn woken(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    limit: u64,
) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(limit), notified)
        .await
        .is_ok()
}

/// Migration V11: a commit's notification names the pool that wrote it (`fieldtrail.writer`,
/// one random id per pool); a journal's LISTEN connection skips the notifications of its own
/// pool (its appends wake its readers in-process) and wakes on every other one, including a
/// commit made without the setting.
#[tokio::test]
async fn commit_notifications_name_their_pool_and_a_journal_skips_only_its_own() {
    use futures::StreamExt as _;
    let env = TestEnv::new("notify_writer").await;
    let url = env.settings.database_url.clone();
    let writer_of = |pool: deadpool_postgres::Pool| async move {
        let client = pool.get().await.unwrap();
        let row = client
            .query_one("SELECT current_setting('fieldtrail.writer')", &[])
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    let own_a = writer_of(env.pool().clone()).await;
    assert_eq!(own_a.len(), 32, "a writer id per pool: {own_a:?}");

    // The trigger's payload, seen by a plain LISTEN connection.
    let config = fieldtrail_journal::database::parse_url(&url).unwrap();
    let (listener, mut connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let (tx, mut payloads) = futures::channel::mpsc::unbounded::<String>();
    let pump = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.unbounded_send(n.payload().to_owned());
            }
        }
    });
    listener
        .batch_execute(&format!("LISTEN {}", fieldtrail_journal::NOTIFY_CHANNEL))
        .await
        .unwrap();
    let first_line = COHORT.lines().next().unwrap();
    env.import(first_line).await;
    let payload = tokio::time::timeout(std::time::Duration::from_secs(5), payloads.next())
        .await
        .expect("a notification for the commit")
        .unwrap();
    assert_eq!(payload, own_a);

    // A second journal on its own pool, listening.
    let pool_b = fieldtrail_journal::database::pool(&url, 2).unwrap();
    let own_b = writer_of(pool_b.clone()).await;
    assert_ne!(own_b, own_a);
    let b = fieldtrail_journal::Journal::new(fieldtrail_journal::PgJournal::with_url(
        pool_b.clone(),
        &url,
    ));
    let notify = b.notifier();
    let ready = notify.notified();
    tokio::pin!(ready);
    ready.as_mut().enable();
    let listening = b.listen().expect("a PostgreSQL journal listens");
    assert!(
        woken(ready, 5000).await,
        "the listener signals once it listens"
    );

    // Its own pool's notification does not wake it.
    let skipped = notify.notified();
    tokio::pin!(skipped);
    skipped.as_mut().enable();
    pool_b
        .get()
        .await
        .unwrap()
        .execute(
            "SELECT pg_notify($1, current_setting('fieldtrail.writer'))",
            &[&fieldtrail_journal::NOTIFY_CHANNEL],
        )
        .await
        .unwrap();
    assert_eq!(payloads.next().await.unwrap(), own_b);
    assert!(
        !woken(skipped, 1000).await,
        "its own commit woke it through LISTEN"
    );

    // Another pool's commit wakes it, and so does one made without the setting.
    let by_a = notify.notified();
    tokio::pin!(by_a);
    by_a.as_mut().enable();
    env.import(COHORT.lines().nth(1).unwrap()).await;
    assert!(
        woken(by_a, 5000).await,
        "another pool's commit did not wake it"
    );
    let by_plain = notify.notified();
    tokio::pin!(by_plain);
    by_plain.as_mut().enable();
    listener
        .batch_execute(&format!(
            "SELECT pg_notify('{}', '')",
            fieldtrail_journal::NOTIFY_CHANNEL
        ))
        .await
        .unwrap();
    assert!(
        woken(by_plain, 5000).await,
        "a commit without the setting did not wake it"
    );

    listening.abort();
    pump.abort();
    drop(listener);
    drop(b);
    env.cleanup().await;
}
