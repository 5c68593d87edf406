//! Reading your own writes (issue 16): 50 concurrent commands on one cohort through two
//! `fieldtrail serve` processes on one journal; each answer's position, given as the minimum to the other server,
//! gives a timetable that shows the session, without sleeps. A minimum far ahead answers 503
//! with `Retry-After` within the bound.

use crate::helpers::{TestEnv, COHORT};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `n` weekdays from 2025-10-06 (a Monday), skipping the French public holidays of the period.
fn weekdays(n: usize) -> Vec<chrono::NaiveDate> {
    use chrono::Datelike;
    let holidays = ["2025-11-11", "2025-12-25", "2026-01-01"];
    let mut day = chrono::NaiveDate::from_ymd_opt(2025, 10, 6).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let weekend = matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
        if !weekend && !holidays.contains(&day.to_string().as_str()) {
            out.push(day);
        }
        day = day.succ_opt().unwrap();
    }
    out
}

async fn wait_up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not answer");
}

crate::both_backends!(
    every_answer_position_read_back_on_the_other_server_shows_the_session,
    read_your_writes
);

async fn read_your_writes(env: TestEnv) {
    // The programme, the cohort and its learners; nothing scheduled yet.
    let setup: String = COHORT.lines().take(13).map(|l| format!("{l}\n")).collect();
    env.import(&setup).await;
    // Two `fieldtrail serve` processes on the one journal.
    let server_a = crate::servers::Serve::start(&env, None, None, &[]).await;
    let server_b = crate::servers::Serve::start(&env, None, None, &[]).await;
    let (a, b) = (server_a.base.clone(), server_b.base.clone());
    let client = env.client();
    wait_up(&client, &a).await;
    wait_up(&client, &b).await;

    let sends: Vec<_> = weekdays(50)
        .into_iter()
        .enumerate()
        .map(|(i, day)| {
            let (client, base) = (
                client.clone(),
                if i % 2 == 0 { a.clone() } else { b.clone() },
            );
            let line = serde_json::json!({
                "command_id": format!("ryw-{i}"), "command": "schedule_session",
                "at": "2025-07-10T10:00:00+02:00", "actor": "staff:coordinator",
                "data": {"cohort_id": "cohort-2025", "session_id": format!("ryw-s{i:02}"),
                         "module_id": "m4", "kind": "course",
                         "starts_at": format!("{day}T09:00:00+02:00"),
                         "ends_at": format!("{day}T12:30:00+02:00"), "half_days": 1,
                         "facilitator": "facilitator:intervenant-a"}
            });
            tokio::spawn(async move {
                let response = client
                    .post(format!("{base}/commands"))
                    .json(&line)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let header: i64 = response
                    .headers()
                    .get("fieldtrail-position")
                    .map(|v| v.to_str().unwrap().parse().unwrap())
                    .unwrap_or(-1);
                let body: Value = response.json().await.unwrap();
                (i, status, header, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for s in sends {
        answers.push(s.await.unwrap());
    }
    for (i, status, header, body) in &answers {
        assert_eq!(*status, 200, "command {i}: {body}");
        assert_eq!(
            body["position"].as_i64(),
            Some(*header),
            "command {i}: {body}"
        );
    }
    // Each answer's position, read on the other server: the session is there, 50 of 50.
    let mut shown = 0;
    for (i, _, position, _) in &answers {
        let other = if i % 2 == 0 { &b } else { &a };
        let response = client
            .get(format!(
                "{other}/cohorts/cohort-2025/timetable?min_position={position}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let reflected: i64 = response.headers()["fieldtrail-position"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reflected >= *position, "{reflected} < {position}");
        let timetable: Value = response.json().await.unwrap();
        assert_eq!(
            timetable["position"].as_i64(),
            Some(reflected),
            "{timetable}"
        );
        let id = format!("ryw-s{i:02}");
        if timetable["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == id.as_str())
        {
            shown += 1;
        }
    }
    assert_eq!(shown, 50);

    // The same minimum through the request header.
    let last = answers.iter().map(|a| a.2).max().unwrap();
    let response = client
        .get(format!("{a}/cohorts/cohort-2025/timetable"))
        .header("Fieldtrail-Position", last.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // Far ahead: 503 with Retry-After and the position reached, within the bound (2 s).
    let started = Instant::now();
    let response = client
        .get(format!(
            "{a}/cohorts/cohort-2025/timetable?min_position={}",
            last + 1_000_000
        ))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(body["position"].as_i64().unwrap() >= last, "{body}");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // A malformed minimum is invalid, not a wait.
    let response = client
        .get(format!(
            "{a}/cohorts/cohort-2025/timetable?min_position=soon"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);

    drop((server_a, server_b));
    env.cleanup().await;
}

crate::both_backends!(
    a_pending_defence_id_is_a_conflict_and_the_same_command_again_is_its_first_answer,
    duplicate_defence
);

async fn duplicate_defence(env: TestEnv) {
    let lines: Vec<&str> = crate::helpers::RULES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let handler = env.handler();
    let now = chrono::Utc::now();
    let mut first = None;
    for (n, line) in lines.iter().take(71).enumerate() {
        let outcome = handler.handle_json(line, now).await.unwrap();
        if n == 70 {
            first = Some(serde_json::to_value(&outcome).unwrap());
        }
    }
    // Line 71 scheduled defence t-d1 of t-fs; it has no outcome yet.
    let first = first.unwrap();
    assert_eq!(first["outcome"], "applied", "{first}");
    let scheduled: Value = serde_json::from_str(lines[70]).unwrap();
    assert_eq!(scheduled["command"], "schedule_defence");
    let events = env.event_count().await;

    // A new command (another command id) for the same pending defence id: conflict.
    let mut again = scheduled.clone();
    again["command_id"] = "dup-defence-new".into();
    let outcome =
        serde_json::to_value(handler.handle_json(&again.to_string(), now).await.unwrap()).unwrap();
    assert_eq!(outcome["outcome"], "rejected", "{outcome}");
    assert_eq!(outcome["code"], "conflict", "{outcome}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("already scheduled and has no outcome yet"),
        "{outcome}"
    );

    // The very same command again: an idempotent replay with the first answer's positions.
    let replay = serde_json::to_value(handler.handle_json(lines[70], now).await.unwrap()).unwrap();
    assert_eq!(replay["outcome"], "duplicate", "{replay}");
    assert_eq!(replay["positions"], first["positions"]);
    assert_eq!(replay["command_id"], first["command_id"]);
    assert_eq!(env.event_count().await, events, "nothing appended");
    env.cleanup().await;
}

crate::both_backends!(
    a_strong_history_read_is_folded_from_the_stream_and_equals_the_projection,
    strong_history
);

async fn strong_history(env: TestEnv) {
    env.import(COHORT).await;
    let (address, stop, task) = env.serve().await;
    let base = format!("http://{address}");
    let client = env.client();
    wait_up(&client, &base).await;
    for study in ["fs25-a", "fs25-b", "fs25-c"] {
        let stored = env.document("history", study).await.unwrap();
        let response = client
            .get(format!(
                "{base}/field-studies/{study}/history?consistency=strong"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let position: i64 = response.headers()["fieldtrail-position"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let last = env
            .journal
            .stream("field_study", study, 0)
            .await
            .unwrap()
            .last()
            .unwrap()
            .position;
        assert_eq!(position, last, "{study}");
        let mut strong: Value = response.json().await.unwrap();
        // The answer carries its position as a field too; the rest is the document.
        assert_eq!(strong["position"].as_i64(), Some(last), "{study}");
        strong.as_object_mut().unwrap().remove("position");
        assert_eq!(strong, stored, "{study}");
    }
    let bad = client
        .get(format!(
            "{base}/field-studies/fs25-a/history?consistency=now"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let missing = client
        .get(format!(
            "{base}/field-studies/nope/history?consistency=strong"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    env.cleanup().await;
}
