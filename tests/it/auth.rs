//! Who may do what over HTTP, and input that cannot hurt the service (issue: authentication,
//! roles, hostile input).

use crate::helpers::{TestEnv, COHORT};
use fieldtrail::auth::Role;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use std::time::Duration;

const C: &str = "cohort-2025";

struct Tokens {
    staff: String,
    facilitator: String,
    facilitator_elsewhere: String,
    jury: String,
    learner: String,
    other_learner: String,
    auditor: String,
    researcher: String,
    dashboard: String,
}

impl Tokens {
    async fn new(env: &TestEnv) -> Self {
        Self {
            staff: env.staff.clone(),
            facilitator: env.token(Role::Facilitator, Some(C), None).await,
            facilitator_elsewhere: env
                .token(Role::Facilitator, Some("cohort-1999"), None)
                .await,
            jury: env.token(Role::Jury, Some(C), None).await,
            learner: env.token(Role::Learner, Some(C), Some("l25-01")).await,
            other_learner: env.token(Role::Learner, Some(C), Some("l25-05")).await,
            auditor: env.token(Role::Auditor, None, None).await,
            researcher: env.token(Role::Researcher, None, None).await,
            dashboard: env.token(Role::Dashboard, None, None).await,
        }
    }

    /// (label, token) for every role, plus no token at all.
    fn all(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("none", None),
            ("staff", Some(&self.staff)),
            ("facilitator", Some(&self.facilitator)),
            ("facilitator_elsewhere", Some(&self.facilitator_elsewhere)),
            ("jury", Some(&self.jury)),
            ("learner", Some(&self.learner)),
            ("other_learner", Some(&self.other_learner)),
            ("auditor", Some(&self.auditor)),
            ("researcher", Some(&self.researcher)),
            ("dashboard", Some(&self.dashboard)),
        ]
    }
}

async fn start(
    env: &TestEnv,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (address, stop, task) = env.serve().await;
    let base = format!("http://{address}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (base, stop, task)
}

async fn send(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> u16 {
    let client = reqwest::Client::new();
    let url = format!("{base}{path}");
    let mut request = if method == "POST" {
        client.post(url)
    } else {
        client.get(url)
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    request.send().await.unwrap().status().as_u16()
}

fn command(id: &str, name: &str, data: Value) -> String {
    json!({"command_id": id, "command": name, "at": "2026-06-20T10:00:00+02:00", "actor": "someone:claimed", "data": data}).to_string()
}

crate::both_backends!(
    every_endpoint_for_every_role_and_refusals_append_nothing,
    every_endpoint_for_every_role_and_refusals_append_nothing_on
);

async fn every_endpoint_for_every_role_and_refusals_append_nothing_on(env: TestEnv) {
    env.import(COHORT).await;
    let t = Tokens::new(&env).await;
    let (base, stop, task) = start(&env).await;

    // Reads: (path, expected status per role label in Tokens::all order).
    let reads: Vec<(&str, [u16; 10])> = vec![
        //                                               none staff fac  fac2 jury lrn  lrn2 aud  res  dash
        (
            "/cohorts/cohort-2025/timetable",
            [401, 200, 200, 403, 403, 403, 403, 200, 403, 200],
        ),
        (
            "/cohorts/cohort-2025/timetable.ics",
            [401, 200, 200, 403, 403, 403, 403, 200, 403, 200],
        ),
        (
            "/cohorts/cohort-2025/learners/l25-01/transcript",
            [401, 200, 403, 403, 403, 200, 403, 200, 403, 403],
        ),
        (
            "/cohorts/cohort-2025/learners/l25-01/transcript.clr",
            [401, 200, 403, 403, 403, 200, 403, 200, 403, 403],
        ),
        (
            "/field-studies/fs25-a/history",
            [401, 200, 200, 403, 200, 200, 403, 200, 403, 403],
        ),
        (
            "/field-studies/fs25-a/xapi",
            [401, 200, 200, 403, 200, 200, 403, 200, 403, 403],
        ),
        (
            "/audit/streams/cohort/cohort-2025",
            [401, 200, 403, 403, 403, 403, 403, 200, 403, 403],
        ),
        (
            "/healthz",
            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
    ];
    for (path, expected) in &reads {
        for ((label, token), want) in t.all().into_iter().zip(expected) {
            assert_eq!(
                send(&base, token, "GET", path, None).await,
                *want,
                "GET {path} as {label}"
            );
        }
    }

    // Commands: each row's allowed roles get the status in the row (409 where the command is
    // refused by a rule: authorization comes first, the rule second); every refusal appends nothing.
    let held = |id: &str| {
        command(
            id,
            "record_session",
            json!({"cohort_id": C, "session_id": "s25-001", "present": [], "excused": []}),
        )
    };
    let defended = |id: &str| {
        command(
            id,
            "record_defence",
            json!({"field_study_id": "fs25-a", "defence_id": "fs25-a-d1", "outcomes": []}),
        )
    };
    let overlap = |id: &str| {
        command(
            id,
            "schedule_session",
            json!({"cohort_id": C, "session_id": format!("x-{}", id.replace('_', "-")), "module_id": "m1", "kind": "course",
        "starts_at": "2025-09-15T09:00:00+02:00", "ends_at": "2025-09-15T17:00:00+02:00", "half_days": 2, "facilitator": "f"}),
        )
    };
    let note = |id: &str| {
        command(
            id,
            "record_reflexive_note",
            json!({"field_study_id": "fs25-a", "note_id": format!("n-{}", id.replace('_', "-")), "text": "t"}),
        )
    };
    type Row<'a> = (&'a str, Box<dyn Fn(&str) -> String + 'a>, [u16; 10]);
    let rows: Vec<Row<'_>> = vec![
        //                                        none staff fac  fac2 jury lrn  lrn2 aud  res  dash
        (
            "record_session",
            Box::new(held),
            [401, 409, 409, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "record_defence",
            Box::new(defended),
            [401, 409, 403, 403, 409, 403, 403, 403, 403, 403],
        ),
        (
            "schedule_session",
            Box::new(overlap),
            [401, 409, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "record_reflexive_note",
            Box::new(note),
            [401, 200, 200, 403, 403, 403, 403, 403, 403, 403],
        ),
    ];
    for (name, body, expected) in &rows {
        for ((label, token), want) in t.all().into_iter().zip(expected) {
            let before = env.event_count().await;
            let status = send(
                &base,
                token,
                "POST",
                "/commands",
                Some(&body(&format!("{name}-{label}"))),
            )
            .await;
            assert_eq!(status, *want, "{name} as {label}");
            let appended = env.event_count().await - before;
            assert_eq!(
                appended,
                i64::from(status == 200),
                "{name} as {label}: {appended} events"
            );
        }
    }

    // The actor is the authenticated principal; the claimed one is only reported.
    let notes = env
        .journal
        .history(
            fieldtrail_journal::HistoryOf::Actor("facilitator:facilitator-test"),
            &fieldtrail_journal::audit::EventFilter::default(),
        )
        .await
        .unwrap();
    let note = notes
        .iter()
        .find(|e| e.command_id == "record_reflexive_note-facilitator")
        .expect("the facilitator's note");
    assert_eq!(note.actor, "facilitator:facilitator-test");
    assert_eq!(note.reported_actor.as_deref(), Some("someone:claimed"));

    // A calendar application subscribes by URL: `?token=` is accepted for `.ics` only.
    let client = reqwest::Client::new();
    let ics = |path: &str, token: &str| client.get(format!("{base}{path}?token={token}")).send();
    assert_eq!(
        ics(
            "/cohorts/cohort-2025/learners/l25-01/timetable.ics",
            &t.learner
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        ics(
            "/cohorts/cohort-2025/learners/l25-02/timetable.ics",
            &t.learner
        )
        .await
        .unwrap()
        .status(),
        403
    );
    assert_eq!(
        ics(
            "/cohorts/cohort-2025/learners/l25-01/transcript",
            &t.learner
        )
        .await
        .unwrap()
        .status(),
        401
    );

    // Revoked and malformed tokens are unauthenticated.
    let id = fieldtrail::auth::tokens::parse(&t.dashboard).unwrap().0;
    assert!(fieldtrail::auth::tokens::revoke(&env.journal, id)
        .await
        .unwrap());
    assert_eq!(
        send(
            &base,
            Some(&t.dashboard),
            "GET",
            "/cohorts/cohort-2025/timetable",
            None
        )
        .await,
        401
    );
    assert_eq!(
        send(
            &base,
            Some("ftk_x_y"),
            "GET",
            "/cohorts/cohort-2025/timetable",
            None
        )
        .await,
        401
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

crate::both_backends!(
    a_learner_reads_only_its_own_transcript_and_an_auditor_sends_nothing,
    a_learner_reads_only_its_own_transcript_and_an_auditor_sends_nothing_on
);

async fn a_learner_reads_only_its_own_transcript_and_an_auditor_sends_nothing_on(env: TestEnv) {
    env.import(COHORT).await;
    let t = Tokens::new(&env).await;
    let (base, stop, task) = start(&env).await;
    for learner in ["l25-02", "l25-05", "l25-11"] {
        let path = format!("/cohorts/cohort-2025/learners/{learner}/transcript");
        assert_eq!(
            send(&base, Some(&t.learner), "GET", &path, None).await,
            403,
            "{learner}"
        );
    }
    assert_eq!(
        send(
            &base,
            Some(&t.learner),
            "GET",
            "/cohorts/cohort-2025/learners/l25-01/transcript",
            None
        )
        .await,
        200
    );
    let before = env.event_count().await;
    for line in COHORT.lines().take(40) {
        let mut envelope: Value = serde_json::from_str(line).unwrap();
        envelope["command_id"] = json!(format!(
            "auditor-{}",
            envelope["command_id"].as_str().unwrap()
        ));
        assert_eq!(
            send(
                &base,
                Some(&t.auditor),
                "POST",
                "/commands",
                Some(&envelope.to_string())
            )
            .await,
            403
        );
    }
    assert_eq!(env.event_count().await, before);
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

crate::both_backends!(
    hostile_input_is_invalid_naming_the_field_and_never_a_500,
    hostile_input_is_invalid_naming_the_field_and_never_a_500_on
);

async fn hostile_input_is_invalid_naming_the_field_and_never_a_500_on(env: TestEnv) {
    env.import(COHORT).await;
    let (base, stop, task) = start(&env).await;
    let client = env.client();
    let post = |body: String| {
        let client = client.clone();
        let url = format!("{base}/commands");
        async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let envelope = |data: &str| {
        format!(
            r#"{{"command_id":"h-1","command":"record_reflexive_note","at":"2026-01-01T10:00:00+01:00","actor":"staff:a","data":{data}}}"#
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            envelope(r#"{"field_study_id":"fs25-a","note_id":"n1","text":"a\u0000b"}"#),
            "data.text",
        ),
        (
            envelope(r#"{"field_study_id":"fs25-a","note_id":"n1","text":"\ud800"}"#),
            "data.text",
        ),
        (
            envelope(&format!(
                r#"{{"field_study_id":"fs25-a","note_id":"n1","text":"t","x":{}{}}}"#,
                "[".repeat(3000),
                "]".repeat(3000)
            )),
            "recursion",
        ),
        (
            envelope(&format!(
                r#"{{"field_study_id":"fs25-a","note_id":"n1","text":"{}"}}"#,
                "a".repeat(25_000)
            )),
            "data.text",
        ),
        (
            envelope(r#"{"field_study_id":"FS'; DROP TABLE events;--","note_id":"n1","text":"t"}"#),
            "data.field_study_id",
        ),
        (
            envelope(r#"{"field_study_id":"fs25-a","note_id":"n1","text":"t","extra":1}"#),
            "extra",
        ),
        (
            format!(
                r#"{{"command_id":"h-2","command":"close_cohort","at":"2026-01-01T10:00:00+01:00","actor":"staff:a","data":{{"cohort_id":"c","pad":"{}"}}}}"#,
                "a".repeat(300 * 1024)
            ),
            "limit",
        ),
    ];
    for (body, needle) in cases {
        let (status, answer) = post(body).await;
        assert_eq!(status, 422, "{needle}: {answer}");
        assert_eq!(answer["code"], "invalid", "{needle}: {answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(needle),
            "{needle}: {answer}"
        );
    }
    assert_eq!(env.event_count().await, 210);
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[a-z0-9-]{1,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,14}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies: raw text, random JSON, and real commands with one field replaced by junk.
fn body() -> impl Strategy<Value = String> {
    let lines: Vec<Value> = COHORT
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mutated = (0..lines.len(), "[a-z_]{1,14}", json_value(), any::<bool>()).prop_map(
        move |(i, field, junk, in_data)| {
            let mut envelope = lines[i].clone();
            envelope["command_id"] = json!(format!("fuzz-{i}"));
            let target = if in_data {
                &mut envelope["data"]
            } else {
                &mut envelope
            };
            let keys: Vec<String> = target
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            let key = keys
                .iter()
                .find(|k| k.starts_with(&field[..1]))
                .cloned()
                .unwrap_or(field);
            target[key] = junk;
            envelope.to_string()
        },
    );
    prop_oneof![
        1 => ".{0,200}",
        1 => json_value().prop_map(|v| v.to_string()),
        4 => mutated,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_bodies_never_get_a_500_or_drop_the_connection() {
    let cases: usize = std::env::var("FIELDTRAIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = TestEnv::new("fuzz_api").await;
    env.import(&COHORT.lines().take(80).collect::<Vec<_>>().join("\n"))
        .await;
    let (base, stop, task) = start(&env).await;
    let mut runner = TestRunner::deterministic();
    let strategy = body();
    let bodies: Vec<String> = (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let client = env.client();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let chunks: Vec<Vec<String>> = bodies
        .chunks(cases.div_ceil(4).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (client, url) = (client.clone(), format!("{base}/commands"));
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for body in chunk {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let status = response
                    .unwrap_or_else(|e| panic!("connection failed for {body:?}: {e}"))
                    .status()
                    .as_u16();
                assert!(status != 500 && status < 600, "HTTP {status} for {body:?}");
                seen.push(status);
            }
            seen
        }));
    }
    for t in tasks {
        for status in t.await.unwrap() {
            *statuses.entry(status).or_default() += 1;
        }
    }
    eprintln!("{cases} generated bodies: statuses {statuses:?}");
    assert_eq!(statuses.values().sum::<usize>(), cases);
    assert!(
        statuses
            .keys()
            .all(|s| [200, 403, 404, 409, 422].contains(s)),
        "{statuses:?}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}
