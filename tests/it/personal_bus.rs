//! Personal data beyond the journal's tables (README "Personal data"): the reference
//! consumer reads what NATS carries sealed in clear through the API, with its token; and an
//! erasure whose append fails leaves the subject as it was (key and data), so that the
//! command can simply be sent again.

use crate::helpers::{fieldtrail_binary, TestEnv};
use fieldtrail::cli::consumer::{ConsumerConfig, ShowPersonal, SEALED};
use fieldtrail_journal::sealing::ERASED;
use serde_json::{json, Value};

const HARDER_PATH: &str = include_str!("../data/harder-path.jsonl");

fn erase(command_id: &str, subject_id: &str) -> String {
    json!({
        "command_id": command_id, "command": "erase_subject", "at": "2026-10-01T10:00:00+02:00",
        "actor": "staff:dpo", "data": {"subject_id": subject_id, "reason": "demande n° 7"}
    })
    .to_string()
}

crate::both_backends!(
    the_reference_consumer_reads_sealed_fields_in_clear_through_the_api_with_its_token,
    consumer_in_clear
);

async fn consumer_in_clear(env: TestEnv) {
    assert_eq!(env.import(HARDER_PATH).await.rejected, 0);
    assert_eq!(
        env.import(&erase("erase-bus", "learner:p-05"))
            .await
            .applied,
        1
    );
    env.relay().await;
    let (address, stop, task) = env.serve().await;
    let api = format!("http://{address}");
    let probe = reqwest::Client::new();
    for _ in 0..100 {
        if probe.get(format!("{api}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let dashboard = env
        .token(fieldtrail::auth::Role::Dashboard, None, None)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let consume = |durable: &str, show: ShowPersonal| {
        let config = ConsumerConfig {
            nats_url: env.settings.nats_url.clone(),
            stream: env.settings.nats_stream.clone(),
            durable: durable.to_owned(),
            state: dir.path().join(format!("{durable}.json")),
            until_idle: true,
            show_personal: Some(show),
        };
        async move {
            let mut lines = Vec::new();
            fieldtrail::cli::consumer::run_with(&config, &mut |line| lines.push(line))
                .await
                .unwrap();
            lines
        }
    };
    // The value shown for each learner's name, by learner id (learner_enrolled lines).
    let names = |lines: &[Value]| -> Vec<(String, Value)> {
        lines
            .iter()
            .filter(|l| l["event_type"] == "learner_enrolled")
            .map(|l| {
                let personal = l["personal"].as_array().unwrap();
                assert_eq!(personal.len(), 1, "{l}");
                assert_eq!(personal[0]["field"], "name");
                (
                    l["stream"].as_str().unwrap().to_owned(),
                    personal[0]["value"].clone(),
                )
            })
            .collect()
    };

    // With a staff token: in clear, the erased learner as the marker.
    let staff_lines = consume(
        "board-staff",
        ShowPersonal {
            api: Some(api.clone()),
            token: Some(env.staff.clone()),
        },
    )
    .await;
    let shown = names(&staff_lines);
    assert!(shown.len() >= 5, "{shown:?}");
    let values: Vec<&Value> = shown.iter().map(|(_, v)| v).collect();
    assert!(values.contains(&&Value::from("Anne Le Goff")), "{values:?}");
    assert!(values.contains(&&Value::from(ERASED)), "{values:?}");
    assert!(!values.contains(&&Value::from("Élise Morvan")));
    assert!(!values.contains(&&Value::from(SEALED)));
    let jury = staff_lines
        .iter()
        .find(|l| l["event_type"] == "defence_scheduled")
        .unwrap();
    assert!(jury["personal"].to_string().contains("M. Centre"), "{jury}");
    // Every line is an event with personal fields, and the bus carried them sealed.
    let messages = crate::faults::stream_contents(&env).await;
    assert!(!messages
        .iter()
        .any(|(_, b)| b.to_string().contains("Anne Le Goff")));

    // Without a token, or with one the API refuses (a dashboard's): sealed.
    for (durable, token) in [("board-none", None), ("board-dash", Some(dashboard))] {
        let lines = consume(
            durable,
            ShowPersonal {
                api: Some(api.clone()),
                token,
            },
        )
        .await;
        assert_eq!(lines.len(), staff_lines.len(), "{durable}");
        assert!(names(&lines).iter().all(|(_, v)| *v == SEALED), "{durable}");
    }

    // The endpoint: staff and auditors; a bad version 422; an unknown event or type 404.
    let enrolment = staff_lines
        .iter()
        .find(|l| l["event_type"] == "learner_enrolled")
        .unwrap();
    let position = enrolment["position"].as_i64().unwrap();
    let stream = enrolment["stream"].as_str().unwrap();
    let event = env
        .journal
        .read_log(
            fieldtrail_journal::audit::Cut::Position(position),
            None,
            fieldtrail_journal::Cursor::default(),
            100_000,
        )
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.position == position)
        .unwrap();
    let url = format!("{api}/events/{stream}/{}", event.stream_version);
    let get = |token: String, url: String| {
        let client = env.client_with(&token);
        async move { client.get(url).send().await.unwrap() }
    };
    let answer = get(env.staff.clone(), url.clone()).await;
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["event_id"], json!(event.event_id));
    assert_eq!(body["payload"], event.payload);
    let auditor = env.token(fieldtrail::auth::Role::Auditor, None, None).await;
    assert_eq!(get(auditor, url.clone()).await.status().as_u16(), 200);
    let dashboard = env
        .token(fieldtrail::auth::Role::Dashboard, None, None)
        .await;
    assert_eq!(get(dashboard, url).await.status().as_u16(), 403);
    for (path, status) in [
        (format!("{stream}/x"), 422),
        (format!("{stream}/0"), 422),
        (format!("{stream}/99999"), 404),
        ("pupil/p-01/1".to_owned(), 404),
    ] {
        let answer = get(env.staff.clone(), format!("{api}/events/{path}")).await;
        assert_eq!(answer.status().as_u16(), status, "{path}");
    }

    // The binary: `fieldtrail consume --show-personal`, the token from the environment.
    let mut command = fieldtrail_binary();
    command
        .current_dir(dir.path())
        .args([
            "consume",
            "--durable",
            "board-binary",
            "--state",
            "binary.json",
            "--until-idle",
            "--show-personal",
            "--api",
            &api,
        ])
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
        .env("FIELDTRAIL_TOKEN", &env.staff);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let printed: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(names(&printed), shown);
    assert!(stdout.contains("applied"), "{stdout}");
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

crate::both_backends!(
    an_erasure_whose_append_fails_leaves_the_key_and_the_data_and_can_be_sent_again,
    failed_erasure
);

async fn failed_erasure(env: TestEnv) {
    assert_eq!(env.import(HARDER_PATH).await.rejected, 0);
    let name_of = |learner: &'static str| {
        let journal = env.journal.clone();
        async move {
            journal
                .stream("cohort", "hp-cohort", 0)
                .await
                .unwrap()
                .into_iter()
                .find(|e| e.event_type == "learner_enrolled" && e.payload["learner_id"] == learner)
                .map(|e| e.payload["name"].clone())
        }
    };
    let key_of = |subject: &'static str| {
        let journal = env.journal.clone();
        async move {
            journal
                .export_subject_keys()
                .await
                .unwrap()
                .into_iter()
                .find(|k| k.subject_id == subject)
                .unwrap()
        }
    };
    assert_eq!(name_of("p-05").await, Some(Value::from("Élise Morvan")));
    // The erasure's event appended under a command id the ledger holds already: its
    // transaction fails after the key statement (PostgreSQL) or before it (SQLite).
    let metadata = fieldtrail_journal::CommandMetadata {
        command_id: "hp-001".to_owned(),
        command: "erase_subject".to_owned(),
        actor: "staff:dpo".to_owned(),
        reported_actor: None,
        occurred_at: chrono::DateTime::parse_from_rfc3339("2026-10-01T10:00:00+02:00").unwrap(),
        correlation_id: "hp-001".to_owned(),
        causation_id: "hp-001".to_owned(),
        event_ids: Vec::new(),
    };
    let event = (
        "subject_erased".to_owned(),
        "1".to_owned(),
        json!({"subject_id": "learner:p-05", "reason": "demande n° 8"}),
    );
    let error = env
        .journal
        .append("subject", "learner:p-05", 0, &[event], &metadata)
        .await
        .unwrap_err();
    assert!(
        matches!(error, fieldtrail_journal::JournalError::DuplicateCommand(_)),
        "{error:?}"
    );
    // Consistent: no erasure event, the key still there, the name still read.
    let erasures = env
        .journal
        .stream("subject", "learner:p-05", 0)
        .await
        .unwrap();
    assert!(erasures.is_empty());
    let key = key_of("learner:p-05").await;
    assert!(key.wrapped.is_some() && key.erased_at.is_none(), "{key:?}");
    assert_eq!(name_of("p-05").await, Some(Value::from("Élise Morvan")));
    assert!(fieldtrail::subjects::export(&env.journal, "learner:p-05")
        .await
        .unwrap()["erased"]
        .eq(&Value::Bool(false)));

    // Sent again as a command, it erases: the event and the key's end together.
    let report = env.import(&erase("erase-again", "learner:p-05")).await;
    assert_eq!((report.applied, report.rejected), (1, 0), "{report:?}");
    let key = key_of("learner:p-05").await;
    assert!(key.wrapped.is_none() && key.erased_at.is_some(), "{key:?}");
    assert_eq!(name_of("p-05").await, Some(Value::from(ERASED)));
    assert_eq!(
        env.journal
            .stream("subject", "learner:p-05", 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(env.journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}
