//! The HTTP API, served on a free port by `serve::run`.

use crate::helpers::TestEnv;
use serde_json::{json, Value};
use std::time::Duration;

async fn wait_for_document(client: &reqwest::Client, url: &str) -> Value {
    for _ in 0..100 {
        let response = client.get(url).send().await.unwrap();
        if response.status() == 200 {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never appeared");
}

crate::both_backends!(
    commands_over_http_answer_with_the_format_codes_and_documents_follow,
    commands_over_http_answer_with_the_format_codes_and_documents_follow_on
);

async fn commands_over_http_answer_with_the_format_codes_and_documents_follow_on(env: TestEnv) {
    let (address, stop, task) = env.serve().await;
    let base = format!("http://{address}");
    let client = env.client();
    let post = |body: Value| {
        let client = client.clone();
        let url = format!("{base}/commands");
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // The server may still be starting: wait for /healthz.
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health: Value = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let backend = env.journal.kind();
    assert_eq!(
        (
            &health["status"],
            &health["journal"],
            &health["backend"],
            &health["nats"]
        ),
        (
            &json!("alive"),
            &json!("up"),
            &json!(backend.as_str()),
            &json!("up")
        )
    );
    let postgres = match backend {
        fieldtrail_journal::BackendKind::Postgres => "up",
        fieldtrail_journal::BackendKind::Sqlite => "unused",
    };
    assert_eq!(health["postgres"], postgres);
    // This server is alone on its database: it takes both leaderships (within a poll interval).
    for role in ["projector", "relay"] {
        assert!(
            health[role] == "leader" || health[role] == "standby",
            "{health}"
        );
    }

    let programme = json!({"command_id": "h1", "command": "define_programme", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"programme_id": "p", "title": "P", "modules": [{"module_id": "m1", "title": "M1", "half_days": 4, "units": []}]}});
    let (status, body) = post(programme.clone()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")));
    let (status, body) = post(programme).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));
    let open = json!({"command_id": "h2", "command": "open_cohort", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"cohort_id": "c", "programme_id": "nope", "title": "C", "starts_on": "2025-01-01", "ends_on": "2025-06-30"}});
    assert_eq!(post(open).await.0, 404);
    let open = json!({"command_id": "h3", "command": "open_cohort", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"cohort_id": "c", "programme_id": "p", "title": "C", "starts_on": "2025-01-01", "ends_on": "2025-06-30"}});
    assert_eq!(post(open.clone()).await.0, 200);
    let mut again = open;
    again["command_id"] = json!("h4");
    assert_eq!(post(again).await.0, 409);
    // Bad input: 422 naming the field, never a 500.
    let (status, body) = post(json!({"command_id": "h5", "command": "enrol_learner", "at": "2025-01-01T10:00:00+01:00", "actor": "staff:a",
        "data": {"cohort_id": "c", "learner_id": "Bad Id!", "name": "x", "deis_pathway": false}})).await;
    assert_eq!(status, 422);
    assert!(
        body["message"].as_str().unwrap().contains("learner_id"),
        "{body}"
    );
    let response = client
        .post(format!("{base}/commands"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);

    let timetable = wait_for_document(&client, &format!("{base}/cohorts/c/timetable")).await;
    assert_eq!(
        timetable["modules"],
        json!([{"module_id": "m1", "planned_half_days": 4, "scheduled_half_days": 0, "held_half_days": 0}])
    );
    assert_eq!(
        client
            .get(format!("{base}/cohorts/none/timetable"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

/// `/docs` is the API reference rendered on the server from the OpenAPI document: every route
/// is on it, and it loads nothing (no script, no address elsewhere), so it works on an
/// isolated network.
#[tokio::test]
async fn the_api_reference_page_lists_the_routes_and_loads_nothing_from_elsewhere() {
    let env = TestEnv::sqlite("docs_page").await;
    let (address, stop, task) = env.serve().await;
    let response = env
        .client()
        .get(format!("http://{address}/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let openapi: Value =
        serde_json::from_str(&fieldtrail::http::openapi::document().to_string()).unwrap();
    for path in openapi["paths"].as_object().unwrap().keys() {
        assert!(page.contains(path.as_str()), "{path} missing from /docs");
    }
    assert!(page.contains("POST /commands"), "{page}");
    assert!(!page.contains("<script"), "a script on /docs");
    assert!(
        !page.contains("https://") && !page.contains("http://"),
        "an address elsewhere on /docs"
    );
    // An unknown API path answers JSON to an API client (the pages' French 404 is for browsers).
    let response = env
        .client()
        .get(format!("http://{address}/cohorts/cohort-2025/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_found", "{body}");
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}
