//! A cohort's year through the seven commands of the second vocabulary
//! (`tests/data/harder-path.jsonl`: a jury member recused and another appointed, a group split,
//! a certificate revoked after a deliberation error, two results rectified, a later award,
//! three complaints), on both backends: the transcripts, the evaluation histories of both
//! studies of the split and the complaints register against `harder-path.expected.json`, then
//! what follows in the other reads (as-of, exports, research trajectories, HTTP roles, CLI).

use crate::helpers::TestEnv;
use fieldtrail_journal::Cursor;
use fieldtrail_projections::formats::{xapi, Publisher};
use fieldtrail_projections::store::recorded;
use fieldtrail_projections::trajectory::{CohortSummary, MilestoneKind, TrajectoryFold};
use serde_json::{json, Value};

/// The scenario.
const PATH: &str = include_str!("../data/harder-path.jsonl");
/// Its documents, typed by hand.
const PATH_EXPECTED: &str = include_str!("../data/harder-path.expected.json");
const COHORT: &str = "hp-cohort";

/// The scenario's lines `from..to` (1-based, `to` excluded), as one file.
fn lines(from: usize, to: usize) -> String {
    PATH.lines()
        .skip(from - 1)
        .take(to - from)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A history without its entries' `recorded_at` (the server's clock), after checking that
/// each is an RFC 3339 UTC instant and that they do not go back in the order recorded.
fn without_recorded_at(mut history: Value) -> Value {
    let mut last = None;
    for entry in history["entries"].as_array_mut().unwrap() {
        let at = entry
            .as_object_mut()
            .unwrap()
            .remove("recorded_at")
            .unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap();
        assert!(last <= Some(at), "recorded_at goes back: {entry}");
        last = Some(at);
    }
    history
}

async fn cohort_calendar(env: &TestEnv) -> String {
    fieldtrail::export::calendar(&env.journal, COHORT, None)
        .await
        .unwrap()
}

crate::both_backends!(
    the_harder_path_reproduces_its_expected_documents,
    the_harder_path_reproduces_its_expected_documents_on
);

async fn the_harder_path_reproduces_its_expected_documents_on(env: TestEnv) {
    let expected: Value = serde_json::from_str(PATH_EXPECTED).unwrap();
    let publisher = Publisher::default();
    // Up to the last award before the jury's error is found.
    let first = env.import(&lines(1, 37)).await;
    let calendar_before = cohort_calendar(&env).await;
    // The revocation and both rectifications: the revoked certificate's CLR says so.
    let second = env.import(&lines(37, 40)).await;
    let clr = fieldtrail::export::transcript_clr(&env.journal, &publisher, COHORT, "p-01")
        .await
        .unwrap();
    let certificate = &clr["credentialSubject"]["verifiableCredential"][0];
    assert_eq!(
        certificate["credentialSubject"]["achievement"]["achievementType"],
        "Certificate"
    );
    assert!(certificate.get("awardedDate").is_none(), "{certificate}");
    assert_eq!(
        certificate["description"],
        "Revoked on 2026-07-01: this certificate is no longer issued."
    );
    // Valid until the revocation (2026-07-01T07:00:00Z), but never before it is valid from
    // (the journal recorded the revocation later than it occurred).
    let (from, until) = (
        certificate["validFrom"].as_str().unwrap(),
        certificate["validUntil"].as_str().unwrap(),
    );
    assert!(from >= "2026-07-01T07:00:00Z", "{certificate}");
    assert_eq!(until, from, "{certificate}");
    assert_eq!(
        certificate["credentialSubject"]["result"][0]["status"],
        "OnHold"
    );
    assert_eq!(
        certificate["credentialSubject"]["result"][1]["value"],
        "false"
    );
    let third = env.import(&lines(40, 45)).await;
    let applied = first.applied + second.applied + third.applied;
    assert_eq!(applied as u64, expected["commands"].as_u64().unwrap());
    let rejected = first.rejected + second.rejected + third.rejected;
    assert_eq!(rejected, 0);
    assert_eq!(
        env.event_count().await as u64,
        expected["events"].as_u64().unwrap()
    );

    // The documents, against the hand-typed answers.
    for (learner, want) in expected["transcripts"].as_object().unwrap() {
        let got = env
            .document("transcript", &format!("{COHORT}/{learner}"))
            .await
            .unwrap();
        assert_eq!(&got, want, "transcript of {learner}");
    }
    for (study, want) in expected["histories"].as_object().unwrap() {
        let got = env.document("history", study).await.unwrap();
        assert_eq!(&without_recorded_at(got), want, "history of {study}");
    }
    let register = fieldtrail::read::complaints_register(&env.journal, COHORT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(register, expected["complaints"]);
    let report = env.journal.verify(None).await.unwrap();
    assert!(report.intact(), "{:?}", report.breaks);
    env.assert_read_models_equal_replay().await;

    // As of a position: both halves of the split are consecutive events of one append.
    let as_of = |kind: &'static str, key: &'static str, position: i64| {
        let journal = env.journal.clone();
        async move {
            fieldtrail::audit::document_as_of(
                &journal,
                kind,
                key,
                fieldtrail_journal::audit::Cut::Position(position),
            )
            .await
            .unwrap()
        }
    };
    assert!(as_of("history", "fs-m2", 19).await.is_none());
    let old_at_20 = as_of("history", "fs-m1", 20).await.unwrap();
    assert_eq!(
        old_at_20["members"],
        json!(["p-01", "p-02", "p-03", "p-04"])
    );
    assert!(old_at_20.get("split_into").is_none());
    assert_eq!(
        as_of("history", "fs-m2", 20).await.unwrap()["split_from"],
        "fs-m1"
    );
    assert_eq!(
        as_of("history", "fs-m1", 21).await.unwrap()["members"],
        json!(["p-01", "p-02"])
    );
    let register_at_24 = as_of("complaints", COHORT, 24).await.unwrap();
    let statuses: Vec<&Value> = register_at_24["complaints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["status"])
        .collect();
    assert_eq!(statuses, [&json!("answered"), &json!("open")]);
    let revoked = as_of("transcript", "hp-cohort/p-01", 40).await.unwrap();
    assert_eq!(
        (&revoked["certificate_awarded_on"], &revoked["deis_credit"]),
        (&Value::Null, &json!(false))
    );
    assert_eq!(
        as_of("transcript", "hp-cohort/p-01", 39).await.unwrap()["deis_credit"],
        true
    );

    // The exports follow: the xAPI feed voids the rectified results' statements, the CLR
    // shows the new award, the cohort's calendar is unchanged, the learners' calendars keep
    // the defences they were due at.
    let events = env.journal.stream("field_study", "fs-m1", 0).await.unwrap();
    let id_at = |position: i64| {
        events
            .iter()
            .find(|e| e.position == position)
            .unwrap()
            .event_id
            .to_string()
    };
    let feed = fieldtrail::export::statements(&env.journal, &publisher, "fs-m1")
        .await
        .unwrap();
    let feed = feed.as_array().unwrap();
    for (rectified, corrected, verb) in [
        (41, 32, "https://fieldtrail.example/xapi/verbs/deferred"),
        (42, 33, xapi::VERB_PASSED),
    ] {
        let at = feed
            .iter()
            .position(|s| s["id"] == xapi::statement_id(&id_at(rectified)))
            .unwrap();
        assert_eq!(feed[at]["verb"]["id"], verb);
        assert_eq!(
            feed[at]["result"]["response"],
            "Résultats inversés lors de la saisie"
        );
        assert_eq!(feed[at + 1]["verb"]["id"], xapi::VERB_VOIDED);
        assert_eq!(
            feed[at + 1]["object"]["id"],
            xapi::statement_id(&id_at(corrected))
        );
    }
    let voiding = feed
        .iter()
        .filter(|s| s["verb"]["id"] == xapi::VERB_VOIDED)
        .count();
    assert_eq!(voiding, 2);
    let clr = fieldtrail::export::transcript_clr(&env.journal, &publisher, COHORT, "p-01")
        .await
        .unwrap();
    let certificate = &clr["credentialSubject"]["verifiableCredential"][0];
    assert_eq!(certificate["awardedDate"], "2026-09-21T08:00:00Z");
    assert!(certificate.get("validUntil").is_none());
    assert_eq!(
        certificate["credentialSubject"]["result"][0]["status"],
        "Completed"
    );
    assert_eq!(cohort_calendar(&env).await, calendar_before);
    let learner_calendar = |learner: &'static str| {
        let journal = env.journal.clone();
        async move {
            fieldtrail::export::calendar(&journal, COHORT, Some(learner))
                .await
                .unwrap()
        }
    };
    let p01 = learner_calendar("p-01").await;
    assert!(
        p01.contains("UID:d1@fs-m1.fieldtrail\r\n") && p01.contains("UID:d2@fs-m1.fieldtrail\r\n")
    );
    let p03 = learner_calendar("p-03").await;
    assert!(p03.contains("UID:d1@fs-m2.fieldtrail\r\n"), "{p03}");
    assert!(!p03.contains("@fs-m1.fieldtrail"), "{p03}");

    // The research trajectories show the split, the rectified results and the revocation.
    let mut fold = TrajectoryFold::new(None);
    let mut cursor = Cursor::default();
    loop {
        let batch = env.journal.read(cursor, 500).await.unwrap();
        let Some(last) = batch.last() else { break };
        cursor = Cursor::after(last);
        for e in &batch {
            fold.apply(&recorded(e).unwrap());
        }
    }
    let cohorts = fold.finish();
    let learner = |id: &str| {
        cohorts[0]
            .learners
            .iter()
            .find(|l| l.learner_id == id)
            .unwrap()
            .clone()
    };
    let p03 = learner("p-03");
    let moves: Vec<(MilestoneKind, Option<&str>, Option<&str>)> = p03
        .milestones
        .iter()
        .filter(|m| {
            matches!(
                m.kind,
                MilestoneKind::FieldStudyJoined | MilestoneKind::FieldStudyLeft
            )
        })
        .map(|m| (m.kind, m.field_study_id.as_deref(), m.reason_category))
        .collect();
    assert_eq!(
        moves,
        [
            (MilestoneKind::FieldStudyJoined, Some("fs-m1"), None),
            (
                MilestoneKind::FieldStudyJoined,
                Some("fs-m2"),
                Some("split")
            ),
            (MilestoneKind::FieldStudyLeft, Some("fs-m1"), Some("split")),
        ]
    );
    let p01 = learner("p-01");
    let results: Vec<&str> = p01
        .of_kind(MilestoneKind::DefenceAttempt)
        .filter_map(|m| m.result.map(|r| r.as_str()))
        .collect();
    assert_eq!(results, ["deferred", "passed"]);
    assert_eq!(p01.of_kind(MilestoneKind::CertificateRevoked).count(), 1);
    assert!(p01.deis_credit_in_force().is_none());
    let summary = CohortSummary::of(&cohorts[0]);
    assert_eq!((summary.certificates, summary.deis_credits), (4, 0));
    env.cleanup().await;
}

crate::both_backends!(
    the_complaints_register_answers_each_role_over_http_and_the_cli,
    the_complaints_register_answers_each_role_over_http_and_the_cli_on
);

async fn the_complaints_register_answers_each_role_over_http_and_the_cli_on(env: TestEnv) {
    use fieldtrail::auth::Role;
    let expected: Value = serde_json::from_str(PATH_EXPECTED).unwrap();
    env.import(PATH).await;
    // The listener is bound before `serve` returns: requests wait for the server to accept.
    let (address, stop, task) = env.serve().await;
    let base = format!("http://{address}");
    let page = |token: String, path: String| {
        let client = env.client_with(&token);
        let url = format!("{base}{path}");
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let get = |token: String, path: String| {
        let answer = page(token, path);
        async move {
            let (status, body) = answer.await;
            (status, serde_json::from_str(&body).unwrap_or(Value::Null))
        }
    };
    let ids = |doc: &Value| -> Vec<String> {
        doc["complaints"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["complaint_id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let path = format!("/cohorts/{COHORT}/complaints");
    let auditor = env.token(Role::Auditor, None, None).await;
    for token in [env.staff.clone(), auditor] {
        let (status, mut doc) = get(token, path.clone()).await;
        assert_eq!(status, 200);
        assert!(doc["position"].as_i64().unwrap() >= 47);
        doc.as_object_mut().unwrap().remove("position");
        assert_eq!(doc, expected["complaints"]);
    }
    for (learner, own) in [("p-05", &["k-01"][..]), ("p-02", &["k-03"]), ("p-01", &[])] {
        let token = env.token(Role::Learner, Some(COHORT), Some(learner)).await;
        let (status, doc) = get(token, path.clone()).await;
        assert_eq!(status, 200, "{learner}");
        assert_eq!(ids(&doc), own, "{learner}");
    }
    let elsewhere = env
        .token(Role::Learner, Some("other-cohort"), Some("p-05"))
        .await;
    let facilitator = env.token(Role::Facilitator, Some(COHORT), None).await;
    let jury = env.token(Role::Jury, Some(COHORT), None).await;
    let dashboard = env.token(Role::Dashboard, None, None).await;
    for token in [elsewhere, facilitator, jury, dashboard] {
        assert_eq!(get(token, path.clone()).await.0, 403);
    }
    let (status, doc) = get(env.staff.clone(), format!("{path}?as_of_position=24")).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&doc), ["k-01", "k-02"]);
    assert_eq!(doc["complaints"][1]["status"], "open");
    assert_eq!(
        get(env.staff.clone(), format!("{path}?as_of_position=2"))
            .await
            .1["complaints"],
        json!([])
    );
    assert_eq!(
        get(env.staff.clone(), format!("{path}?as_of_position=1"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(env.staff.clone(), format!("{path}?as_of_position=x"))
            .await
            .0,
        422
    );
    assert_eq!(
        get(env.staff.clone(), "/cohorts/nope/complaints".to_owned())
            .await
            .0,
        404
    );
    // A cohort without complaints has an empty register.
    let open = json!({"command_id": "hp-extra", "command": "open_cohort", "at": "2026-09-01T09:00:00+02:00",
        "actor": "staff:coordinator", "data": {"cohort_id": "hp-quiet", "programme_id": "hp-prog",
        "title": "Sans réclamation", "starts_on": "2026-09-01", "ends_on": "2027-06-30"}});
    let answer: Value = env
        .client()
        .post(format!("{base}/commands"))
        .json(&open)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let position = answer["position"].as_i64().unwrap();
    let (status, doc) = get(
        env.staff.clone(),
        format!("/cohorts/hp-quiet/complaints?min_position={position}"),
    )
    .await;
    assert_eq!((status, &doc["complaints"]), (200, &json!([])));
    // The pages (French HTML): the register on the cohort page for staff and auditors only,
    // the split's lineage and the jury's changes on the field-study pages.
    let (status, html) = page(env.staff.clone(), format!("/cohorts/{COHORT}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Registre des réclamations"), "{html}");
    assert!(html.contains("data-complaint=\"k-03\"") && html.contains("en attente de réponse"));
    let facilitator = env.token(Role::Facilitator, Some(COHORT), None).await;
    let (status, html) = page(facilitator, format!("/cohorts/{COHORT}")).await;
    assert_eq!(status, 200);
    assert!(!html.contains("Registre des réclamations") && !html.contains("k-01"));
    let (_, html) = page(env.staff.clone(), "/field-studies/fs-m2".to_owned()).await;
    assert!(html.contains("Issu de la scission du groupe"), "{html}");
    let (_, html) = page(env.staff.clone(), "/field-studies/fs-m1".to_owned()).await;
    assert!(html.contains("forment le groupe"), "{html}");
    assert!(html.contains("M. Centre se récuse"), "{html}");
    assert!(
        html.contains("résultat de p-01 rectifié, admis·e devient ajourné·e"),
        "{html}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();

    // The CLI prints the same register; --learner narrows it as a learner's token does.
    let report = |args: &[&str]| {
        let out = crate::cli::fieldtrail(&env)
            .args(["report", "complaints", "--cohort", COHORT])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(report(&[]), expected["complaints"]);
    assert_eq!(ids(&report(&["--learner", "p-05"])), ["k-01"]);
    assert_eq!(
        report(&["--as-of-position", "24"])["complaints"][1]["status"],
        "open"
    );
    env.cleanup().await;
}
