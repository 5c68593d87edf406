//! `GET /events/stream` (Server-Sent Events) on both backends: a client that disconnects
//! half-way and reconnects with `Last-Event-ID` gets every event exactly once, in global order,
//! including events appended while it is connected; filters and bad parameters.

use crate::helpers::{TestEnv, COHORT};
use serde_json::Value;
use std::time::Duration;

/// One SSE message: its `id:` and its `data:` as JSON.
struct Message {
    id: i64,
    data: Value,
}

/// An open SSE response being read message by message.
struct Subscription {
    response: reqwest::Response,
    pending: String,
}

impl Subscription {
    async fn open(client: &reqwest::Client, url: &str, last_event_id: Option<i64>) -> Self {
        let mut request = client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("event stream");
        assert_eq!(response.status().as_u16(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            pending: String::new(),
        }
    }

    /// The next message (skipping comments such as keep-alives), within 10 s.
    async fn next(&mut self) -> Message {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse::<i64>().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(id) = id {
                    return Message {
                        id,
                        data: serde_json::from_str(&data).expect("JSON data"),
                    };
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("stream readable")
                .expect("stream still open");
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

crate::both_backends!(
    a_client_that_reconnects_with_last_event_id_gets_every_event_once_in_order,
    reconnects_exactly_once
);

async fn reconnects_exactly_once(env: TestEnv) {
    env.import(COHORT).await;
    let journal_order: Vec<i64> = {
        let mut all = Vec::new();
        let mut cursor = fieldtrail_journal::Cursor::default();
        loop {
            let page = env.journal.read(cursor, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = fieldtrail_journal::Cursor::after(last);
            all.extend(page.iter().map(|e| e.position));
        }
        all
    };
    assert_eq!(journal_order.len(), 210);
    let (address, stop, task) = env.serve().await;
    let url = format!("http://{address}/events/stream");
    let client = env.client();
    wait_until_up(&client, &format!("http://{address}/healthz")).await;

    let mut received = Vec::new();
    let mut first = Subscription::open(&client, &format!("{url}?after=0"), None).await;
    for _ in 0..105 {
        let m = first.next().await;
        assert_eq!(m.data["position"].as_i64(), Some(m.id));
        received.push(m.id);
    }
    drop(first);

    // Reconnect as EventSource does; `after` is ignored when Last-Event-ID is sent.
    let last = *received.last().unwrap();
    let mut second = Subscription::open(&client, &format!("{url}?after=0"), Some(last)).await;
    while received.len() < journal_order.len() {
        received.push(second.next().await.id);
    }
    assert_eq!(received, journal_order, "every event once, in global order");

    // Live: an event appended now reaches the connected client.
    let line = r#"{"command_id":"sse-live-1","command":"open_cohort","actor":"staff:test","at":"2026-07-01T10:00:00+02:00","data":{"cohort_id":"cohort-2026","programme_id":"cisdcp","title":"Promotion 2026-2027","starts_on":"2026-09-13","ends_on":"2027-06-30"}}"#;
    let outcome = env
        .handler()
        .handle_json(line, chrono::Utc::now())
        .await
        .unwrap();
    let live = second.next().await;
    assert_eq!(live.data["command_id"], "sse-live-1", "{outcome:?}");
    assert!(live.id > *journal_order.iter().max().unwrap());

    // Filters: only the field studies' hypotheses.
    let mut filtered = Subscription::open(
        &client,
        &format!("{url}?stream_type=field_study&event_type=hypothesis_stated"),
        None,
    )
    .await;
    let m = filtered.next().await;
    assert_eq!(m.data["stream_type"], "field_study");
    assert_eq!(m.data["event_type"], "hypothesis_stated");

    // A bad parameter is refused with its name; a learner token is refused.
    let bad = client
        .get(format!("{url}?after=minus"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let body: Value = bad.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().starts_with("after:"));
    let learner = env
        .token(
            fieldtrail::auth::Role::Learner,
            Some("cohort-2025"),
            Some("l25-01"),
        )
        .await;
    let refused = reqwest::Client::new()
        .get(format!("{url}?token={learner}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let dashboard = env
        .token(fieldtrail::auth::Role::Dashboard, None, None)
        .await;
    let allowed = reqwest::Client::new()
        .get(format!("{url}?token={dashboard}&after={last}"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    drop(allowed);

    // Beyond the head, or an unknown event type: refused, naming the parameter.
    for query in ["after=100000", "event_type=session_hled"] {
        let refused = client.get(format!("{url}?{query}")).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 422, "{query}");
        let body: Value = refused.json().await.unwrap();
        let name = query.split('=').next().unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name}:")),
            "{body}"
        );
    }

    // Revoking the token closes the streams opened with it (within the recheck interval).
    let revocable = env
        .token(fieldtrail::auth::Role::Dashboard, None, None)
        .await;
    let mut open = Subscription::open(
        &reqwest::Client::new(),
        &format!("{url}?token={revocable}&after={last}"),
        None,
    )
    .await;
    let token_id = fieldtrail::auth::tokens::parse(&revocable).unwrap().0;
    assert!(fieldtrail::auth::tokens::revoke(&env.journal, token_id)
        .await
        .unwrap());
    let closed = tokio::time::timeout(
        fieldtrail::http::event_stream::TOKEN_RECHECK + Duration::from_secs(5),
        async { while let Ok(Some(_)) = open.response.chunk().await {} },
    )
    .await;
    assert!(
        closed.is_ok(),
        "the stream stayed open after its token was revoked"
    );

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    env.cleanup().await;
}

async fn wait_until_up(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve did not answer {url}");
}
