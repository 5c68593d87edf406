//! The relay against a real JetStream server.

use crate::helpers::{TestEnv, COHORT};
use async_nats::jetstream;
use std::collections::HashSet;

async fn stream_messages(env: &TestEnv) -> u64 {
    let client = fieldtrail::workers::relay::connect(&env.settings.nats_url)
        .await
        .unwrap();
    let mut stream = jetstream::new(client)
        .get_stream(&env.settings.nats_stream)
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn a_subscriber_receives_every_event_once_and_the_stream_matches_the_journal() {
    let env = TestEnv::new("relay").await;
    env.import(COHORT).await;
    let rows = env.event_count().await;
    assert_eq!(env.relay().await.events as i64, rows);
    assert_eq!(stream_messages(&env).await as i64, rows);

    let seen = crate::faults::read_stream(&env, Some("dashboard")).await;
    let ids: HashSet<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(seen.len() as i64, rows);
    assert_eq!(ids.len(), seen.len(), "an event id arrived twice");
    let client = env.pool().get().await.unwrap();
    let journal_ids: HashSet<String> = client
        .query("SELECT event_id::text FROM events", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, journal_ids.iter().map(String::as_str).collect());
    // Per stream, messages arrive in stream-version order.
    let mut last = std::collections::HashMap::<String, i64>::new();
    for (_, body) in &seen {
        let key = format!(
            "{}/{}",
            body["stream_type"].as_str().unwrap(),
            body["stream_id"].as_str().unwrap()
        );
        let version = body["stream_version"].as_i64().unwrap();
        assert_eq!(version, last.get(&key).copied().unwrap_or(0) + 1, "{key}");
        last.insert(key, version);
    }

    // A relay that lost its checkpoint after the acks publishes again: JetStream takes each
    // re-publish as a duplicate, so the stream does not grow.
    client
        .execute("DELETE FROM checkpoints WHERE name LIKE 'relay:%'", &[])
        .await
        .unwrap();
    let again = env.relay().await;
    assert_eq!((again.events as i64, again.duplicates as i64), (rows, rows));
    assert_eq!(stream_messages(&env).await as i64, rows);
    drop(client);
    env.cleanup().await;
}
