//! The sample NATS configuration in deploy/nats: the relay publishes, a dashboard consumes and
//! cannot publish onto the stream.

use crate::helpers::{TestEnv, COHORT};
use crate::servers::OwnNats;
use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use std::time::Duration;

/// deploy/nats/fieldtrail.conf with a private port, store, passwords and the test's stream.
fn config(nats: &OwnNats, store: &std::path::Path, stream: &str, prefix: &str) -> String {
    let sample = include_str!("../../deploy/nats/fieldtrail.conf");
    sample
        .replace(
            "listen: 127.0.0.1:4222",
            &format!("listen: 127.0.0.1:{}", nats.port),
        )
        .replace("/var/lib/nats-server", &store.display().to_string())
        .replace("$FIELDTRAIL_RELAY_PASSWORD", "\"relay-secret\"")
        .replace("$FIELDTRAIL_DASHBOARD_PASSWORD", "\"dashboard-secret\"")
        .replace("FIELDTRAIL", stream)
        .replace("fieldtrail.>", &format!("{prefix}.>"))
}

#[tokio::test]
async fn a_dashboard_user_consumes_but_cannot_publish_onto_the_stream() {
    let probe = TestEnv::new("nats_users").await;
    let (stream, prefix) = (
        probe.settings.nats_stream.clone(),
        probe.settings.subject_prefix.clone(),
    );
    let mut nats = OwnNats::with_config(|nats, store| config(nats, store, &stream, &prefix)).await;
    let relay_url = format!("nats://relay:relay-secret@127.0.0.1:{}", nats.port);
    let mut env = probe;
    env.settings.nats_url = relay_url;
    env.import(&COHORT.lines().take(30).collect::<Vec<_>>().join("\n"))
        .await;
    let published = env.relay().await;
    assert_eq!(published.events as i64, env.event_count().await);

    let dashboard = async_nats::ConnectOptions::with_user_and_password(
        "dashboard".into(),
        "dashboard-secret".into(),
    )
    .connect(format!("127.0.0.1:{}", nats.port))
    .await
    .unwrap();
    let js = jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(dashboard.clone());
    // Consuming works.
    let consumer = js
        .get_stream(&stream)
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some("board".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut received = 0;
    while let Some(message) = batch.next().await {
        message.unwrap().ack().await.unwrap();
        received += 1;
    }
    assert_eq!(received, published.events);
    // Publishing onto the stream is refused: no ack, and the stream does not grow.
    let forged = js
        .publish(
            format!("{prefix}.cohort.cohort-2025.cohort_closed"),
            "{}".into(),
        )
        .await;
    let refused = match forged {
        Err(_) => true,
        Ok(ack) => ack.await.is_err(),
    };
    assert!(refused, "the dashboard user published onto the stream");
    let relay = fieldtrail::workers::relay::connect(&env.settings.nats_url)
        .await
        .unwrap();
    let mut info = jetstream::new(relay).get_stream(&stream).await.unwrap();
    assert_eq!(
        info.info().await.unwrap().state.messages as usize,
        published.events
    );
    nats.stop();
    env.cleanup().await;
}
