//! Rules across aggregates held by reservations (issue 16): a learner is in at most one field
//! study of their cohort, one certificate per learner and cohort. Two `fieldtrail serve`
//! processes on one PostgreSQL journal receive two commands claiming the same learner at the
//! same instant (a barrier), round after round: exactly one is applied, the other is a
//! `conflict`. The same with two handlers on one SQLite file; the journal's own refusal
//! (`JournalError::ClaimHeld`) on both backends; the backfill of a journal written before the
//! reservation table; and a copy, which enforces the same rule.

use crate::helpers::{TestEnv, COHORT};
use fieldtrail::handler::CommandHandler;
use fieldtrail_journal::reservations::Reservation;
use fieldtrail_journal::{CommandMetadata, Journal, JournalError};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Barrier;

/// Rounds of each race.
const ROUNDS: usize = 24;

fn line(command_id: &str, command: &str, data: Value) -> String {
    json!({"command_id": command_id, "command": command, "at": "2025-10-01T10:00:00+02:00",
           "actor": "staff:coordinator", "data": data})
    .to_string()
}

fn form(command_id: &str, study: &str, members: &[String]) -> String {
    line(
        command_id,
        "form_field_study",
        json!({"field_study_id": study, "cohort_id": "cohort-2025", "members": members,
               "organisation": {"name": "Centre social", "sector": "social"}}),
    )
}

fn change(command_id: &str, study: &str, join: &[String], leave: &[String]) -> String {
    line(
        command_id,
        "change_members",
        json!({"field_study_id": study, "join": join, "leave": leave, "reason": "recomposition"}),
    )
}

/// The programme and cohort of the shipped scenario, and `n` more learners `r<i>`.
fn setup(n: usize) -> String {
    let mut text: String = COHORT.lines().take(2).map(|l| format!("{l}\n")).collect();
    for i in 0..n {
        text.push_str(&line(
            &format!("enrol-r{i}"),
            "enrol_learner",
            json!({"cohort_id": "cohort-2025", "learner_id": format!("r{i}"),
                   "name": format!("Learner {i}"), "deis_pathway": false}),
        ));
        text.push('\n');
    }
    text
}

fn learners(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("r{i}")).collect()
}

/// Sends `lines[i]` to `bases[i]` at the same instant (a barrier), returning each answer's
/// status and body.
async fn race(client: &reqwest::Client, bases: [&str; 2], lines: [String; 2]) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(2));
    let sends: Vec<_> = bases
        .iter()
        .zip(lines)
        .map(|(base, line)| {
            let request = client
                .post(format!("{base}/commands"))
                .header("content-type", "application/json")
                .body(line);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for s in sends {
        out.push(s.await.unwrap());
    }
    out
}

/// Exactly one of `answers` applied, the other a `conflict` naming `learner` and the study
/// that holds them; returns (the winner's index, whether the reservation refused the loser
/// (rather than the aggregate's own check)).
fn one_wins(answers: &[(u16, Value)], learner: &str, studies: [&str; 2]) -> (usize, bool) {
    let applied: Vec<usize> = (0..2)
        .filter(|i| answers[*i].1["outcome"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1, "exactly one applied: {answers:?}");
    let (winner, loser) = (applied[0], 1 - applied[0]);
    assert_eq!(answers[winner].0, 200, "{answers:?}");
    let (status, body) = &answers[loser];
    assert_eq!(*status, 409, "{body}");
    assert_eq!(body["outcome"], "rejected", "{body}");
    assert_eq!(body["code"], "conflict", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "learner {learner} is already in field study {}",
            studies[winner]
        )),
        "{message}"
    );
    (winner, message.contains("one field study at a time"))
}

async fn member_claims(journal: &Journal) -> Vec<(String, String)> {
    journal
        .reservations()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.claim_kind == "field_study_member")
        .map(|r| (r.claim_key, r.holder))
        .collect()
}

#[tokio::test]
async fn two_servers_never_both_place_a_learner_in_two_field_studies() {
    let env = TestEnv::new("reserv_two_servers").await;
    // Per round: 5 learners for the formation race, 7 for the change_members race.
    env.import(&setup(ROUNDS * 12)).await;
    let server_a = crate::servers::Serve::start(&env, None, None, &[]).await;
    let server_b = crate::servers::Serve::start(&env, None, None, &[]).await;
    let bases = [server_a.base.as_str(), server_b.base.as_str()];
    let client = env.client();
    let (mut by_reservation, mut by_aggregate) = (0, 0);
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let r = round * 12;
        // Two groups formed at once, both naming learner `x`.
        let x = format!("r{r}");
        let studies = [format!("fa{round}"), format!("fb{round}")];
        let groups = [
            [vec![x.clone()], learners(r + 1..r + 3)].concat(),
            [vec![x.clone()], learners(r + 3..r + 5)].concat(),
        ];
        let answers = race(
            &client,
            bases,
            [
                form(&format!("fa{round}-1"), &studies[0], &groups[0]),
                form(&format!("fb{round}-1"), &studies[1], &groups[1]),
            ],
        )
        .await;
        let (winner, reserved) = one_wins(&answers, &x, [&studies[0], &studies[1]]);
        wins[winner] += 1;
        if reserved {
            by_reservation += 1;
        } else {
            by_aggregate += 1;
        }
        // Once `x` leaves the winning group, the other group forms with them.
        let loser = 1 - winner;
        let (_, left) = crate::servers::post(
            &client,
            bases[loser],
            &change(
                &format!("fx{round}-leave"),
                &studies[winner],
                &[],
                std::slice::from_ref(&x),
            ),
        )
        .await
        .unwrap();
        assert_eq!(left["outcome"], "applied", "{left}");
        let (_, formed) = crate::servers::post(
            &client,
            bases[winner],
            &form(&format!("fx{round}-again"), &studies[loser], &groups[loser]),
        )
        .await
        .unwrap();
        assert_eq!(formed["outcome"], "applied", "{formed}");

        // Two groups taking the same joiner `y` at once.
        let y = format!("r{}", r + 11);
        let studies = [format!("ga{round}"), format!("gb{round}")];
        for (n, study) in studies.iter().enumerate() {
            let members = learners(r + 5 + 3 * n..r + 8 + 3 * n);
            let (_, formed) = crate::servers::post(
                &client,
                bases[n],
                &form(&format!("{study}-form"), study, &members),
            )
            .await
            .unwrap();
            assert_eq!(formed["outcome"], "applied", "{formed}");
        }
        let answers = race(
            &client,
            bases,
            [
                change(
                    &format!("ga{round}-join"),
                    &studies[0],
                    std::slice::from_ref(&y),
                    &[],
                ),
                change(
                    &format!("gb{round}-join"),
                    &studies[1],
                    std::slice::from_ref(&y),
                    &[],
                ),
            ],
        )
        .await;
        let (winner, reserved) = one_wins(&answers, &y, [&studies[0], &studies[1]]);
        wins[winner] += 1;
        if reserved {
            by_reservation += 1;
        } else {
            by_aggregate += 1;
        }
        // After leaving, `y` may join the other group.
        let loser = 1 - winner;
        let (_, left) = crate::servers::post(
            &client,
            bases[winner],
            &change(
                &format!("gy{round}-leave"),
                &studies[winner],
                &[],
                std::slice::from_ref(&y),
            ),
        )
        .await
        .unwrap();
        assert_eq!(left["outcome"], "applied", "{left}");
        let (_, joined) = crate::servers::post(
            &client,
            bases[loser],
            &change(
                &format!("gy{round}-join"),
                &studies[loser],
                std::slice::from_ref(&y),
                &[],
            ),
        )
        .await
        .unwrap();
        assert_eq!(joined["outcome"], "applied", "{joined}");
    }
    eprintln!(
        "{} races ({ROUNDS} rounds x 2): one applied and one conflict in each; the loser refused \
         by the reservation {by_reservation} times, by the aggregate's own check {by_aggregate} \
         times; server A won {}, server B {}",
        2 * ROUNDS,
        wins[0],
        wins[1]
    );
    assert_eq!(by_reservation + by_aggregate, 2 * ROUNDS);
    // Each server counted the refusals it answered from the reservation table.
    let mut counted = 0.0;
    for base in bases {
        let page = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        counted += page
            .lines()
            .filter_map(|l| {
                l.strip_prefix(
                    "fieldtrail_reservation_refusals_total{claim=\"field_study_member\"} ",
                )
            })
            .map(|v| v.trim().parse::<f64>().unwrap())
            .sum::<f64>();
    }
    assert_eq!(counted, by_reservation as f64);

    // Every learner is in one study at most, and the reservations say where.
    let claims = member_claims(&env.journal).await;
    let keys: std::collections::HashSet<_> = claims.iter().map(|c| c.0.clone()).collect();
    assert_eq!(keys.len(), claims.len());
    assert_eq!(claims.len(), ROUNDS * 12 - 2 * ROUNDS + ROUNDS + ROUNDS);
    // They equal a rebuild from the events.
    let live = env.journal.reservations().await.unwrap();
    env.journal.rebuild_reservations().await.unwrap();
    assert_eq!(env.journal.reservations().await.unwrap(), live);
    drop((server_a, server_b));
    env.cleanup().await;
}

#[tokio::test]
async fn two_servers_award_one_certificate_per_learner_and_cohort() {
    let env = TestEnv::new("reserv_certificate").await;
    // The scenario up to its first award: nine learners have passed their defence.
    let before: String = COHORT
        .lines()
        .take_while(|l| !l.contains("\"award_certificate\""))
        .map(|l| format!("{l}\n"))
        .collect();
    env.import(&before).await;
    let server_a = crate::servers::Serve::start(&env, None, None, &[]).await;
    let server_b = crate::servers::Serve::start(&env, None, None, &[]).await;
    let bases = [server_a.base.as_str(), server_b.base.as_str()];
    let client = env.client();
    let passed = [
        "l25-01", "l25-02", "l25-03", "l25-04", "l25-05", "l25-06", "l25-07", "l25-09", "l25-10",
    ];
    for learner in passed {
        let award = |n: usize| {
            json!({"command_id": format!("award-{learner}-{n}"), "command": "award_certificate",
                   "at": "2026-06-26T10:00:00+02:00", "actor": "staff:direction",
                   "data": {"cohort_id": "cohort-2025", "learner_id": learner}})
            .to_string()
        };
        let answers = race(&client, bases, [award(0), award(1)]).await;
        let applied = answers
            .iter()
            .filter(|a| a.1["outcome"] == "applied")
            .count();
        assert_eq!(applied, 1, "{answers:?}");
        let refused = answers
            .iter()
            .find(|a| a.1["outcome"] == "rejected")
            .unwrap();
        assert_eq!(refused.0, 409, "{answers:?}");
        assert_eq!(refused.1["code"], "already_exists", "{answers:?}");
    }
    let certificates: Vec<Reservation> = env
        .journal
        .reservations()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.claim_kind == "certificate")
        .collect();
    assert_eq!(certificates.len(), passed.len());
    assert!(certificates
        .iter()
        .all(|r| r.holder == "cohort/cohort-2025"));
    drop((server_a, server_b));
    env.cleanup().await;
}

#[tokio::test]
async fn two_handlers_on_one_sqlite_file_never_both_place_a_learner() {
    let env = TestEnv::sqlite("reserv_sqlite_two").await;
    env.import(&setup(ROUNDS * 5)).await;
    // A second journal on the same file, as a second process would open it, with its own
    // handler (its own aggregate cache and lanes).
    let other = fieldtrail_journal::open(&env.settings.database_url, 4)
        .await
        .unwrap();
    let handlers = [
        Arc::new(env.handler()),
        Arc::new(CommandHandler::new(other.clone())),
    ];
    let (mut by_reservation, mut by_aggregate) = (0, 0);
    for round in 0..ROUNDS {
        let r = round * 5;
        let x = format!("r{r}");
        let studies = [format!("sa{round}"), format!("sb{round}")];
        let lines = [
            form(
                &format!("sa{round}-1"),
                &studies[0],
                &[vec![x.clone()], learners(r + 1..r + 3)].concat(),
            ),
            form(
                &format!("sb{round}-1"),
                &studies[1],
                &[vec![x.clone()], learners(r + 3..r + 5)].concat(),
            ),
        ];
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let (handler, barrier, line) =
                    (handlers[i].clone(), barrier.clone(), lines[i].clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let outcome = handler.handle_json(&line, chrono::Utc::now()).await;
                    let body = serde_json::to_value(outcome.unwrap()).unwrap();
                    let status = if body["outcome"] == "applied" {
                        200
                    } else {
                        409
                    };
                    (status, body)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let (_, reserved) = one_wins(&answers, &x, [&studies[0], &studies[1]]);
        if reserved {
            by_reservation += 1;
        } else {
            by_aggregate += 1;
        }
    }
    eprintln!(
        "{ROUNDS} rounds on one SQLite file: one applied and one conflict in each; refused by the \
         reservation {by_reservation} times, by the aggregate {by_aggregate} times"
    );
    assert_eq!(member_claims(&env.journal).await.len(), ROUNDS * 3);
    other.close();
    env.cleanup().await;
}

fn metadata(command_id: &str) -> CommandMetadata {
    CommandMetadata {
        command_id: command_id.to_owned(),
        command: "test".to_owned(),
        actor: "staff:test".to_owned(),
        reported_actor: None,
        occurred_at: chrono::Utc::now().into(),
        correlation_id: command_id.to_owned(),
        causation_id: command_id.to_owned(),
        event_ids: Vec::new(),
    }
}

fn formed_event(study: &str, members: &[&str]) -> (String, String, Value) {
    (
        "field_study_formed".to_owned(),
        "1".to_owned(),
        json!({"field_study_id": study, "cohort_id": "c1", "members": members,
               "organisation": {"name": "o", "sector": "s"}}),
    )
}

crate::both_backends!(
    the_journal_refuses_a_claim_another_stream_holds_until_it_is_released,
    journal_claims
);

/// The journal itself, without the aggregates' checks: a take of a held claim fails the append
/// (nothing appended), a release (a leaver, a withdrawal) frees it.
async fn journal_claims(env: TestEnv) {
    let journal = &env.journal;
    journal
        .append(
            "field_study",
            "s1",
            0,
            &[formed_event("s1", &["a", "b", "c"])],
            &metadata("j1"),
        )
        .await
        .unwrap();
    let before = env.event_count().await;
    let err = journal
        .append(
            "field_study",
            "s2",
            0,
            &[formed_event("s2", &["d", "c", "e"])],
            &metadata("j2"),
        )
        .await
        .unwrap_err();
    match &err {
        JournalError::ClaimHeld { claim, holder } => {
            assert_eq!(claim.key, "c1/c");
            assert_eq!(holder, "field_study/s1");
            let refusal = claim.refusal(holder);
            assert_eq!(refusal.code, fieldtrail_domain::Code::Conflict);
            assert!(refusal
                .message
                .contains("learner c is already in field study s1"));
        }
        other => panic!("expected ClaimHeld, got {other}"),
    }
    assert_eq!(env.event_count().await, before, "nothing appended");
    assert!(journal.applied("j2").await.unwrap().is_none());

    // `c` leaves s1: s2 may take them.
    let leave = (
        "members_changed".to_owned(),
        "1".to_owned(),
        json!({"field_study_id": "s1", "join": [], "leave": ["c"], "reason": "r",
               "members": ["a", "b"]}),
    );
    journal
        .append("field_study", "s1", 1, &[leave], &metadata("j3"))
        .await
        .unwrap();
    journal
        .append(
            "field_study",
            "s2",
            0,
            &[formed_event("s2", &["d", "c", "e"])],
            &metadata("j4"),
        )
        .await
        .unwrap();
    // `a` withdraws from the cohort: their place is released, another study may take it.
    let withdrew = (
        "learner_withdrew".to_owned(),
        "1".to_owned(),
        json!({"cohort_id": "c1", "learner_id": "a", "reason": "r"}),
    );
    journal
        .append("cohort", "c1", 0, &[withdrew], &metadata("j5"))
        .await
        .unwrap();
    let join = (
        "members_changed".to_owned(),
        "1".to_owned(),
        json!({"field_study_id": "s2", "join": ["a"], "leave": [], "reason": "r",
               "members": ["d", "c", "e", "a"]}),
    );
    journal
        .append("field_study", "s2", 1, &[join], &metadata("j6"))
        .await
        .unwrap();
    assert_eq!(
        member_claims(journal).await,
        vec![
            ("c1/a".to_owned(), "field_study/s2".to_owned()),
            ("c1/b".to_owned(), "field_study/s1".to_owned()),
            ("c1/c".to_owned(), "field_study/s2".to_owned()),
            ("c1/d".to_owned(), "field_study/s2".to_owned()),
            ("c1/e".to_owned(), "field_study/s2".to_owned()),
        ]
    );
    // A second certificate for the same learner and cohort is refused by the journal too.
    let award = || {
        (
            "certificate_awarded".to_owned(),
            "1".to_owned(),
            json!({"cohort_id": "c1", "learner_id": "b"}),
        )
    };
    journal
        .append("cohort", "c1", 1, &[award()], &metadata("j7"))
        .await
        .unwrap();
    let err = journal
        .append("cohort", "c1", 2, &[award()], &metadata("j8"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::ClaimHeld { claim, .. } if claim.refusal("cohort/c1").code == fieldtrail_domain::Code::AlreadyExists),
        "{err}"
    );
    // The audit still verifies: the reservation table is not part of the chain.
    assert!(journal.verify(None).await.unwrap().intact());
    env.cleanup().await;
}

crate::both_backends!(
    a_journal_written_before_the_reservations_gets_them_at_open_and_enforces_the_rule,
    backfill
);

/// The reservations of the shipped cohort, emptied and marked stale as in a journal written
/// before them (migration V4, SQLite user_version 2), are rebuilt when the journal is opened
/// again; the rebuilt journal refuses a learner already in a field study, and a copy of it
/// (`fieldtrail copy`) holds the same reservations.
async fn backfill(env: TestEnv) {
    env.import(COHORT).await;
    let live = env.journal.reservations().await.unwrap();
    // fs25-a and fs25-b of four, fs25-c of three, less l25-08 (withdrew, then left fs25-b);
    // nine certificates.
    let members = live
        .iter()
        .filter(|r| r.claim_kind == "field_study_member")
        .count();
    assert_eq!(members, 10);
    assert!(!live.iter().any(|r| r.claim_key == "cohort-2025/l25-08"));
    assert_eq!(live.len() - members, 9);
    let url = env.settings.database_url.clone();
    let forget = "DELETE FROM reservations; UPDATE reservations_state SET rebuilt_at = NULL;";
    match fieldtrail_journal::sqlite_path(&url) {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(forget)
            .unwrap(),
        None => env
            .pool()
            .get()
            .await
            .unwrap()
            .batch_execute(forget)
            .await
            .unwrap(),
    }
    assert!(env.journal.reservations().await.unwrap().is_empty());
    let reopened = fieldtrail_journal::open(&url, 4).await.unwrap();
    assert_eq!(reopened.reservations().await.unwrap(), live);

    // The rule holds on the backfilled journal: a study naming a learner of fs25-c is refused.
    let err = reopened
        .append(
            "field_study",
            "bf-1",
            0,
            &[(
                "field_study_formed".to_owned(),
                "1".to_owned(),
                json!({"field_study_id": "bf-1", "cohort_id": "cohort-2025",
                       "members": ["l25-09", "l25-10", "l25-12"],
                       "organisation": {"name": "o", "sector": "s"}}),
            )],
            &metadata("bf-form"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::ClaimHeld { holder, .. } if holder == "field_study/fs25-c"),
        "{err}"
    );

    // A copy rebuilds them from the copied events.
    let copy = TestEnv::sqlite("reserv_copy").await;
    let progress = fieldtrail::cli::progress::Progress::hidden();
    let report = fieldtrail::cli::copy::copy(&reopened, &copy.journal, &progress)
        .await
        .unwrap();
    assert_eq!(report.reservations, live.len() as u64);
    assert_eq!(copy.journal.reservations().await.unwrap(), live);
    reopened.close();
    copy.cleanup().await;
    env.cleanup().await;
}
