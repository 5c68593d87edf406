//! Faults that kill or stop processes: `serve` killed after a commit (case 3), NATS away
//! (case 5), PostgreSQL away (case 6), random kills under load (case 7), two servers on one
//! database (case 10). Servers are the tests' own processes on their own ports.

use crate::faults::stream_contents;
use crate::helpers::{TestEnv, COHORT};
use crate::servers::{post, slow, OwnNats, OwnPostgres, Serve};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn command_id(line: &str) -> String {
    serde_json::from_str::<Value>(line).unwrap()["command_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends `line` until it gets a success answer (applied or duplicate), as a client that
/// retries with the same command id would. Panics on a rejection or an HTTP 500.
async fn send_until_done(client: &reqwest::Client, base: &str, line: &str) -> Value {
    let base = tokio::sync::Mutex::new(base.to_owned());
    send_until_done_to(client, &base, line).await
}

/// As [`send_until_done`], reading the server's address before every attempt (it changes
/// when the server is restarted).
async fn send_until_done_to(
    client: &reqwest::Client,
    base: &tokio::sync::Mutex<String>,
    line: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let current = base.lock().await.clone();
        if let Some((status, body)) = post(client, &current, line).await {
            assert_ne!(status, 500, "HTTP 500 for {line}: {body}");
            match status {
                200 => return body,
                503 => {}
                other => panic!("{other} for {line}: {body}"),
            }
        }
        assert!(Instant::now() < deadline, "no success for {line}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assert_nats_holds_each_event_once(env: &TestEnv) {
    let messages = stream_contents(env).await;
    let ids: HashSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    let client = env.pool().get().await.unwrap();
    let journal: HashSet<String> = client
        .query("SELECT event_id::text FROM events", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        messages.len(),
        journal.len(),
        "messages on the stream vs rows in the journal"
    );
    assert_eq!(
        ids,
        journal.iter().map(String::as_str).collect::<HashSet<_>>()
    );
}

#[tokio::test]
async fn case_3_a_kill_right_after_commit_loses_nothing_and_the_retry_is_a_duplicate() {
    let env = TestEnv::new("crash_commit").await;
    let commands = lines(COHORT);
    let (before, victim) = (&commands[..20], &commands[20]);
    let victim_id = command_id(victim);
    env.import(&before.join("\n")).await;
    let failpoint = format!("crash_after_commit:{victim_id}");
    let mut serve = Serve::start(&env, None, None, &[("FIELDTRAIL_FAILPOINT", &failpoint)]).await;
    let client = env.client();
    env.wait_caught_up(Duration::from_secs(20)).await;

    assert!(
        post(&client, &serve.base, victim).await.is_none(),
        "the server answered instead of dying"
    );
    let status = serve.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
    let journal = fieldtrail_journal::PgJournal::new(env.pool().clone());
    let applied = journal
        .applied(&victim_id)
        .await
        .unwrap()
        .expect("the committed command is in the journal");
    let events_after_crash = env.event_count().await;
    {
        let db = env.pool().get().await.unwrap();
        let projected: i64 = db
            .query_one(
                "SELECT position FROM checkpoints WHERE name = 'projector'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            projected < applied.first_position,
            "the projector saw the event before the crash"
        );
    }

    let serve = Serve::start(&env, None, None, &[]).await;
    env.wait_caught_up(Duration::from_secs(20)).await;
    let (status, body) = post(&client, &serve.base, victim).await.unwrap();
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    assert_eq!(env.event_count().await, events_after_crash);
    let timetable = env.document("timetable", "cohort-2025").await.unwrap();
    let victim_session =
        serde_json::from_str::<Value>(victim).unwrap()["data"]["session_id"].clone();
    let occurrences = timetable["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["session_id"] == victim_session)
        .count();
    assert_eq!(
        occurrences, 1,
        "the crashed command's session in the read model exactly once"
    );
    assert_nats_holds_each_event_once(&env).await;
    env.assert_read_models_equal_replay().await;
    drop(serve);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_5_nats_away_commands_still_pass_and_everything_is_published_after() {
    let mut nats = OwnNats::start().await;
    let env = TestEnv::on(&crate::helpers::server_url(), &nats.url(), "nats_away").await;
    let serve = Serve::start(&env, None, Some(&nats.url()), &[]).await;
    let client = env.client();
    let commands = lines(&fieldtrail::cli::generate::cohort(1));
    for line in &commands[..3] {
        send_until_done(&client, &serve.base, line).await;
    }
    env.wait_caught_up(Duration::from_secs(20)).await;

    nats.stop();
    let outage = if slow() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(5)
    };
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = serve.health().await.unwrap();
    assert_eq!(health["nats"], "down", "{health}");
    assert_eq!(health["postgres"], "up", "{health}");
    let mut latencies = Vec::new();
    for line in &commands[3..203] {
        let started = Instant::now();
        let (status, body) = post(&client, &serve.base, line)
            .await
            .expect("an answer while NATS is away");
        latencies.push(started.elapsed());
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("applied")),
            "{body}"
        );
    }
    let sent_in = stopped.elapsed();
    if let Some(rest) = outage.checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    latencies.sort();
    eprintln!(
        "case 5: 200 commands while NATS was away ({:.1} s): p50 {:?}, max {:?}",
        sent_in.as_secs_f64(),
        latencies[100],
        latencies[199]
    );

    nats.resume().await;
    let back = Instant::now();
    let rows = env.event_count().await;
    loop {
        if let Ok(messages) =
            tokio::time::timeout(Duration::from_secs(5), stream_contents(&env)).await
        {
            if messages.len() as i64 == rows {
                break;
            }
        }
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "not every event was published after NATS came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "case 5: every event published {:?} after NATS came back",
        back.elapsed()
    );
    let health = serve.health().await.unwrap();
    assert_eq!(health["nats"], "up");
    // In journal order per stream.
    let mut last: HashMap<String, i64> = HashMap::new();
    for (_, body) in stream_contents(&env).await {
        let key = format!("{}/{}", body["stream_type"], body["stream_id"]);
        let version = body["stream_version"].as_i64().unwrap();
        assert_eq!(version, last.get(&key).copied().unwrap_or(0) + 1, "{key}");
        last.insert(key, version);
    }
    assert_nats_holds_each_event_once(&env).await;
    drop(serve);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_6_postgres_away_commands_fail_fast_with_503_and_the_service_recovers() {
    let pg = OwnPostgres::start().await;
    let env = TestEnv::on(
        &format!("postgres://postgres@127.0.0.1:{}", pg.port),
        &crate::helpers::nats_url(),
        "pg_away",
    )
    .await;
    let serve = Serve::start(&env, None, None, &[]).await;
    let client = env.client();
    let commands = lines(&fieldtrail::cli::generate::cohort(1));
    let mut acknowledged = Vec::new();
    for line in &commands[..40] {
        send_until_done(&client, &serve.base, line).await;
        acknowledged.push(command_id(line));
    }
    env.pool().close();
    pg.stop();
    let mut unavailable = 0;
    let mut slowest = Duration::ZERO;
    for line in &commands[40..50] {
        let started = Instant::now();
        let (status, body) = post(&client, &serve.base, line)
            .await
            .expect("an answer while PostgreSQL is away");
        slowest = slowest.max(started.elapsed());
        assert_eq!(status, 503, "{body}");
        unavailable += 1;
    }
    assert!(
        slowest < Duration::from_secs(6),
        "a command hung for {slowest:?}"
    );
    eprintln!("case 6: {unavailable} commands answered 503 while PostgreSQL was away, slowest {slowest:?}");
    pg.resume().await;
    let back = Instant::now();
    for line in &commands[40..] {
        send_until_done(&client, &serve.base, line).await;
        acknowledged.push(command_id(line));
    }
    eprintln!(
        "case 6: service usable again {:?} after PostgreSQL came back",
        back.elapsed()
    );
    let env = env.reconnected();
    let journal = env.journal.clone();
    for id in &acknowledged {
        assert!(
            journal.applied(id).await.unwrap().is_some(),
            "acknowledged command {id} is missing"
        );
    }
    env.wait_caught_up(Duration::from_secs(30)).await;
    env.assert_read_models_equal_replay().await;
    drop(serve);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_7_random_kills_under_load_lose_nothing() {
    let env = TestEnv::new("random_kills").await;
    let cohorts = if slow() { 25 } else { 5 };
    let scripts = fieldtrail::cli::generate::cohorts(cohorts);
    let total: usize = scripts.iter().map(Vec::len).sum();
    let mut serve = Serve::start(&env, None, None, &[]).await;
    let base = Arc::new(tokio::sync::Mutex::new(serve.base.clone()));
    let done = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    // Clients: one task per group of cohorts, each cohort's commands in order.
    let mut clients = Vec::new();
    for group in 0..4 {
        let mine: Vec<Vec<String>> = scripts.iter().skip(group).step_by(4).cloned().collect();
        let (done, answered, base) = (done.clone(), answered.clone(), base.clone());
        let client = env.client();
        clients.push(tokio::spawn(async move {
            for script in mine {
                for line in script {
                    let body = send_until_done_to(&client, &base, &line).await;
                    assert!(
                        body["outcome"] == "applied" || body["outcome"] == "duplicate",
                        "{body}"
                    );
                    answered.lock().await.push(command_id(&line));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    // Three SIGKILLs at random moments, each followed by a restart on the same port setting.
    let mut kills = Vec::new();
    for k in 0..3u128 {
        let target =
            (total / 4) * (k as usize + 1) + (uuid::Uuid::new_v4().as_u128() % 50) as usize;
        while done.load(Ordering::SeqCst) < target.min(total - 1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        serve.kill();
        kills.push(done.load(Ordering::SeqCst));
        serve = Serve::start(&env, None, None, &[]).await;
        *base.lock().await = serve.base.clone();
    }
    for client in clients {
        client.await.unwrap();
    }
    eprintln!("case 7: {total} commands, SIGKILL after {kills:?} answered commands");
    let answered = answered.lock().await.clone();
    assert_eq!(answered.len(), total);
    let db = env.pool().get().await.unwrap();
    let ledger: i64 = db
        .query_one("SELECT count(*) FROM command_ledger", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ledger as usize, total,
        "every answered command is in the ledger once"
    );
    let orphans: i64 = db
        .query_one("SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM command_ledger l WHERE l.command_id = e.command_id)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "events without an applied command");
    let split: i64 = db
        .query_one("SELECT count(*) FROM (SELECT command_id FROM events GROUP BY command_id HAVING count(DISTINCT tx_id) > 1) s", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(split, 0, "a command's events written twice");
    drop(db);
    env.wait_caught_up(Duration::from_secs(60)).await;
    assert_nats_holds_each_event_once(&env).await;
    env.assert_read_models_equal_replay().await;
    drop(serve);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_10_two_servers_share_one_database_with_one_projector_and_one_relay() {
    let env = TestEnv::new("two_servers").await;
    let a = Serve::start(&env, None, None, &[]).await;
    let b = Serve::start(&env, None, None, &[]).await;
    let client = env.client();
    let commands = lines(COHORT);
    for (i, line) in commands[..100].iter().enumerate() {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let body = send_until_done(&client, base, line).await;
        assert_eq!(
            body["outcome"],
            "applied",
            "server {} refused: {body}",
            i % 2
        );
    }
    // Exactly one leader per role, never both.
    let mut a_leads = None;
    for _ in 0..20 {
        let (ha, hb) = (a.health().await.unwrap(), b.health().await.unwrap());
        for role in ["projector", "relay"] {
            assert!(
                !(ha[role] == "leader" && hb[role] == "leader"),
                "both servers lead the {role}"
            );
        }
        if ha["projector"] == "leader" || hb["projector"] == "leader" {
            a_leads = Some(ha["projector"] == "leader");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a_leads = a_leads.expect("a projector leader");
    env.wait_caught_up(Duration::from_secs(20)).await;

    // Kill the leader; the other takes over.
    let (mut leader, survivor) = if a_leads { (a, b) } else { (b, a) };
    let killed = Instant::now();
    leader.kill();
    loop {
        let health = survivor.health().await.unwrap();
        if health["projector"] == "leader" && health["relay"] == "leader" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no takeover: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "case 10: the standby took over {:?} after the leader was killed",
        killed.elapsed()
    );
    for line in &commands[100..] {
        send_until_done(&client, &survivor.base, line).await;
    }
    env.wait_caught_up(Duration::from_secs(20)).await;
    assert_nats_holds_each_event_once(&env).await;
    env.assert_read_models_equal_replay().await;
    drop(survivor);
    env.cleanup().await;
}
