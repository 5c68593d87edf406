//! Running fieldtrail in production (issue 10): `/metrics` after an import over HTTP, `/readyz`
//! with NATS stopped and back, SIGTERM under load, import progress lines, the layered
//! configuration and `fieldtrail status`. Servers are real `fieldtrail serve` processes, so
//! each has its own metrics registry.

use crate::faults::stream_contents;
use crate::helpers::{TestEnv, COHORT};
use crate::servers::{post, OwnNats, Serve};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn fieldtrail(env: &TestEnv) -> Command {
    let mut command = crate::helpers::fieldtrail_binary();
    command
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
        .env("FIELDTRAIL_SUBJECT_PREFIX", &env.settings.subject_prefix)
        .env_remove("FIELDTRAIL_CONFIG")
        .env("RUST_LOG", "warn");
    command
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `name` with exactly these labels (in the exporter's order).
fn sample(all: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", inner.join(","))
    };
    all.get(&key).copied()
}

async fn scrape(base: &str) -> BTreeMap<String, f64> {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200, "/metrics needs no token");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    samples(&response.text().await.unwrap())
}

async fn readyz(base: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_command_by_outcome_and_show_no_lag_once_caught_up() {
    let env = TestEnv::new("ops_metrics").await;
    let serve = Serve::start(&env, None, None, &[]).await;
    let client = env.client();
    let commands = lines(COHORT);
    // The cohort, then five of its commands again (duplicates), then its first command under a
    // new id (a programme that already exists: rejected).
    let mut sent: Vec<String> = commands.clone();
    sent.extend(commands[..5].iter().cloned());
    let mut again: Value = serde_json::from_str(&commands[0]).unwrap();
    again["command_id"] = Value::from("ops-metrics-again");
    sent.push(again.to_string());

    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut report = BTreeMap::<String, usize>::new();
    for line in &sent {
        let (status, body) = post(&client, &serve.base, line).await.expect("an answer");
        assert_ne!(status, 500, "{body}");
        let name = serde_json::from_str::<Value>(line).unwrap()["command"]
            .as_str()
            .unwrap()
            .to_owned();
        let outcome = match body["outcome"].as_str().unwrap() {
            "rejected" => format!("rejected:{}", body["code"].as_str().unwrap()),
            other => other.to_owned(),
        };
        *report
            .entry(body["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
        *expected.entry((name, outcome)).or_default() += 1.0;
    }
    assert_eq!(report.get("applied"), Some(&203), "{report:?}");
    assert_eq!(report.get("duplicate"), Some(&5), "{report:?}");
    assert_eq!(report.get("rejected"), Some(&1), "{report:?}");

    env.wait_caught_up(Duration::from_secs(30)).await;
    let metrics = scrape(&serve.base).await;
    let counted: BTreeMap<(String, String), f64> = metrics
        .iter()
        .filter_map(|(key, value)| {
            let labels = key
                .strip_prefix("fieldtrail_commands_total{")?
                .strip_suffix('}')?;
            let (command, outcome) = labels.split_once(',')?;
            let command = command.strip_prefix("command=\"")?.strip_suffix('"')?;
            let outcome = outcome.strip_prefix("outcome=\"")?.strip_suffix('"')?;
            Some(((command.to_owned(), outcome.to_owned()), *value))
        })
        .collect();
    assert_eq!(
        counted, expected,
        "fieldtrail_commands_total against the outcomes the client got"
    );

    // One latency observation per command; one append per applied command, its events summed.
    let latencies: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("fieldtrail_command_duration_seconds_count{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(latencies, sent.len() as f64);
    assert_eq!(
        sample(&metrics, "fieldtrail_append_batch_events_count", &[]),
        Some(203.0)
    );
    let events = env.event_count().await as f64;
    assert_eq!(
        sample(&metrics, "fieldtrail_append_batch_events_sum", &[]),
        Some(events)
    );

    // Every read model (and the relay) caught up: lag 0, position at the journal head.
    let head = sample(&metrics, "fieldtrail_journal_head_position", &[]).unwrap();
    assert_eq!(
        head, events,
        "positions start at 1 and nothing was rolled back"
    );
    for model in ["timetable", "transcript", "history"] {
        let labels = [("read_model", model)];
        assert_eq!(
            sample(&metrics, "fieldtrail_read_model_lag_events", &labels),
            Some(0.0),
            "{model}"
        );
        assert_eq!(
            sample(&metrics, "fieldtrail_read_model_lag_seconds", &labels),
            Some(0.0),
            "{model}"
        );
        assert_eq!(
            sample(&metrics, "fieldtrail_read_model_position", &labels),
            Some(head),
            "{model}"
        );
    }
    let stream = [("stream", env.settings.nats_stream.as_str())];
    assert_eq!(
        sample(&metrics, "fieldtrail_relay_lag_events", &stream),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, "fieldtrail_relay_position", &stream),
        Some(head)
    );
    assert_eq!(
        sample(&metrics, "fieldtrail_relay_published_total", &stream),
        Some(events)
    );
    assert_eq!(
        sample(&metrics, "fieldtrail_relay_duplicate_acks_total", &stream),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, "fieldtrail_leader", &[("role", "projector")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "fieldtrail_db_pool_max_connections", &[]),
        Some(16.0)
    );
    assert!(sample(&metrics, "fieldtrail_db_pool_connections", &[]).is_some_and(|n| n >= 1.0));
    // No id in any label.
    for key in metrics.keys() {
        assert!(
            !key.contains("cohort-2025") && !key.contains("l25-") && !key.contains("ops-metrics"),
            "{key}"
        );
    }

    let (status, body) = readyz(&serve.base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["read_models"]["transcript"]["lag_events"], 0);
    drop(serve);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_naming_nats_while_it_is_stopped_and_passes_once_it_is_back() {
    let mut nats = OwnNats::start().await;
    let env = TestEnv::on(&crate::helpers::server_url(), &nats.url(), "ops_ready").await;
    let serve = Serve::start(&env, None, Some(&nats.url()), &[]).await;
    let wait_for = |want: u16, limit: Duration| {
        let base = serve.base.clone();
        async move {
            let started = Instant::now();
            loop {
                let (status, body) = readyz(&base).await;
                if status == want {
                    return (body, started.elapsed());
                }
                assert!(
                    started.elapsed() < limit,
                    "/readyz still {status} after {limit:?}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (body, _) = wait_for(200, Duration::from_secs(10)).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["nats"]["ok"], true, "{body}");

    nats.stop();
    let (body, took) = wait_for(503, Duration::from_secs(15)).await;
    eprintln!("readyz: 503 {took:?} after NATS stopped: {body}");
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["checks"]["nats"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["postgres"]["ok"], true, "{body}");
    let problems = body["problems"].to_string();
    assert!(
        problems.contains("nats") && problems.contains(&nats.url()),
        "{problems}"
    );
    // Alive all the same; commands still pass (NATS is not on the command path).
    assert_eq!(serve.health().await.unwrap()["nats"], "down");
    let line = &lines(COHORT)[0];
    let (status, _) = post(&env.client(), &serve.base, line).await.unwrap();
    assert_eq!(status, 200);

    nats.resume().await;
    let (body, took) = wait_for(200, Duration::from_secs(30)).await;
    eprintln!("readyz: 200 again {took:?} after NATS came back");
    assert_eq!(body["checks"]["nats"]["state"], "connected", "{body}");
    assert_eq!(body["problems"], Value::Array(vec![]));
    drop(serve);
    env.cleanup().await;
}

/// Posts `commands` in order until the server stops answering; returns the answers received.
async fn post_until_stopped(
    client: reqwest::Client,
    base: String,
    commands: Vec<String>,
    acked: Arc<AtomicUsize>,
) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    for line in &commands {
        match post(&client, &base, line).await {
            Some((status, body)) => {
                assert_ne!(status, 500, "{body}");
                if status == 200 {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                answers.push((status, body));
            }
            None => break,
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_acknowledged_command_and_leaves_checkpoints_consistent() {
    let env = TestEnv::new("ops_sigterm").await;
    let mut serve = Serve::start(
        &env,
        None,
        None,
        &[("FIELDTRAIL_SHUTDOWN_TIMEOUT_SECS", "15")],
    )
    .await;
    let client = env.client();
    let cohorts = fieldtrail::cli::generate::cohorts(4);
    let acked = Arc::new(AtomicUsize::new(0));
    let posters: Vec<_> = cohorts
        .iter()
        .map(|c| {
            tokio::spawn(post_until_stopped(
                client.clone(),
                serve.base.clone(),
                c.clone(),
                acked.clone(),
            ))
        })
        .collect();
    while acked.load(Ordering::SeqCst) < 150 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = serve.child.id().to_string();
    let signalled = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = serve.child.wait().unwrap();
    let stopped_in = signalled.elapsed();
    assert!(status.success(), "serve exits 0 after SIGTERM: {status:?}");
    assert!(
        stopped_in < Duration::from_secs(15),
        "shutdown took {stopped_in:?}"
    );
    let mut answers = Vec::new();
    for poster in posters {
        answers.push(poster.await.unwrap());
    }
    let acknowledged: Vec<String> = answers
        .iter()
        .flatten()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body["command_id"].as_str().unwrap().to_owned())
        .collect();
    eprintln!(
        "sigterm: {} commands acknowledged, server stopped {stopped_in:?} after SIGTERM",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= 150 && acknowledged.len() < 4 * 203,
        "the signal came during the load"
    );

    // Every acknowledged command is in the ledger; the checkpoints name events of the journal.
    let db = env.pool().get().await.unwrap();
    let ledger: HashSet<String> = db
        .query("SELECT command_id FROM command_ledger", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &acknowledged {
        assert!(
            ledger.contains(id),
            "acknowledged command {id} is not in the journal"
        );
    }
    let dangling: i64 = db
        .query_one(
            "SELECT count(*) FROM checkpoints c
              WHERE c.position > 0
                AND NOT EXISTS (SELECT 1 FROM events e WHERE e.tx_id = c.tx_id AND e.position = c.position)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        dangling, 0,
        "a checkpoint names an event that is not in the journal"
    );
    drop(db);

    // Restart, send what was not acknowledged (from each client's first unanswered command),
    // and compare the read models with a replay.
    let serve = Serve::start(&env, None, None, &[]).await;
    let mut duplicates = 0;
    for (cohort, got) in cohorts.iter().zip(&answers) {
        let done = got.iter().take_while(|(status, _)| *status == 200).count();
        for line in &cohort[done..] {
            let (status, body) = post(&client, &serve.base, line)
                .await
                .expect("an answer after restart");
            assert_eq!(status, 200, "{body}");
            if body["outcome"] == "duplicate" {
                duplicates += 1;
            }
        }
    }
    assert_eq!(
        duplicates, 0,
        "a command without an answer was applied all the same (in flight, not finished)"
    );
    let caught_up = env.wait_caught_up(Duration::from_secs(60)).await;
    eprintln!("sigterm: after restart, caught up in {caught_up:?}");
    assert_eq!(env.event_count().await, 4 * 210);
    env.assert_read_models_equal_replay().await;
    let messages = stream_contents(&env).await;
    let ids: HashSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        (messages.len(), ids.len()),
        (4 * 210, 4 * 210),
        "each event on NATS once"
    );
    drop(serve);
    env.cleanup().await;
}

#[tokio::test]
async fn import_prints_plain_progress_lines_when_stderr_is_not_a_terminal() {
    let env = TestEnv::new("ops_progress").await;
    let file = format!("{}/../data/cohort-2025.jsonl", env!("CARGO_MANIFEST_DIR"));
    let output = fieldtrail(&env)
        .args(["import", &file])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("import: "))
        .collect();
    assert!(
        progress.len() >= 10,
        "a line at least at each tenth: {stderr}"
    );
    let done: Vec<u64> = progress
        .iter()
        .map(|l| {
            l["import: ".len()..]
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert!(
        progress[0].contains("/203 lines (") && progress[0].contains("/s, ETA "),
        "{}",
        progress[0]
    );
    let last = progress.last().unwrap();
    assert!(
        last.starts_with("import: 203/203 lines (100%) in "),
        "{last}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "no terminal control codes: {stderr:?}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("applied 203, duplicate 0, rejected 0")
    );
    env.cleanup().await;
}

#[tokio::test]
async fn import_draws_a_progress_bar_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to give the import a pseudo-terminal");
    }
    let env = TestEnv::new("ops_bar").await;
    let file = format!("{}/../data/cohort-2025.jsonl", env!("CARGO_MANIFEST_DIR"));
    let inner = format!("{} import {file}", env!("CARGO_BIN_EXE_fieldtrail"));
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env(
            fieldtrail_journal::sealing::MASTER_KEY_ENV,
            crate::helpers::master_key_hex().as_str(),
        )
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("RUST_LOG", "warn")
        .env("TERM", "xterm")
        .env_remove("FIELDTRAIL_CONFIG")
        .stdin(Stdio::null());
    let output = command.output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains("/203 lines"),
        "a bar with the count: {screen:?}"
    );
    assert!(
        screen.contains("/s") && screen.contains("ETA"),
        "rate and ETA: {screen:?}"
    );
    assert!(
        !screen.contains("import: 203/203 lines (100%) in"),
        "no plain lines on a terminal: {screen:?}"
    );
    env.cleanup().await;
}

#[test]
fn configuration_layers_file_then_environment_then_flags_and_hides_passwords() {
    let dir = std::env::temp_dir().join(format!("ft-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fieldtrail.toml");
    std::fs::write(
        &file,
        "[database]\nurl = \"postgres://fieldtrail:s3cret@db:5432/fieldtrail\"\npool_size = 8\n\
         [http]\nlisten = \"0.0.0.0:9000\"\nrequest_timeout_secs = 12\n[nats]\nstream = \"FROM_FILE\"\n",
    )
    .unwrap();
    let show = |envs: &[(&str, &str)], args: &[&str]| {
        let mut command = crate::helpers::fieldtrail_binary();
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in envs {
            command.env(k, v);
        }
        let output = command.args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let path = file.to_str().unwrap();
    let (code, out, err) = show(
        &[
            ("FIELDTRAIL_POOL_SIZE", "5"),
            ("NATS_URL", "nats://relay:hunter2@nats-1:4222"),
        ],
        &[
            "config",
            "show",
            "--config",
            path,
            "--listen",
            "127.0.0.1:7000",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!(
            "url = \"postgres://fieldtrail:***@db:5432/fieldtrail\"  # file {path}"
        )),
        "{out}"
    );
    assert!(
        out.contains("pool_size = 5  # env FIELDTRAIL_POOL_SIZE"),
        "env beats the file: {out}"
    );
    assert!(
        out.contains("listen = \"127.0.0.1:7000\"  # flag --listen"),
        "the flag beats the file: {out}"
    );
    assert!(
        out.contains(&format!("request_timeout_secs = 12  # file {path}")),
        "{out}"
    );
    assert!(
        out.contains("url = \"nats://relay:***@nats-1:4222\"  # env NATS_URL"),
        "{out}"
    );
    assert!(out.contains("dedup_window_secs = 120  # default"), "{out}");
    assert!(
        !out.contains("s3cret") && !out.contains("hunter2"),
        "passwords hidden: {out}"
    );
    // The output is itself a valid configuration file.
    assert!(out.parse::<toml::Table>().is_ok());

    // FIELDTRAIL_CONFIG names the file; FIELDTRAIL_DATABASE_URL beats DATABASE_URL.
    let (code, out, _) = show(
        &[
            ("FIELDTRAIL_CONFIG", path),
            ("DATABASE_URL", "postgres://a@h/x"),
            ("FIELDTRAIL_DATABASE_URL", "postgres://b@h/y"),
        ],
        &["config", "show"],
    );
    assert_eq!(code, Some(0));
    assert!(out.contains("stream = \"FROM_FILE\""), "{out}");
    assert!(
        out.contains("url = \"postgres://b@h/y\"  # env FIELDTRAIL_DATABASE_URL"),
        "{out}"
    );

    // Bad values: one line naming the setting, exit status 2.
    for (envs, args, names) in [
        (
            vec![("FIELDTRAIL_POOL_SIZE", "many")],
            vec!["status"],
            "database.pool_size (flag --pool-size, env FIELDTRAIL_POOL_SIZE)",
        ),
        (
            vec![("FIELDTRAIL_POOL_SIZE", "1")],
            vec!["status"],
            "database.pool_size = 1 (from env FIELDTRAIL_POOL_SIZE",
        ),
        (
            vec![],
            vec!["status", "--nats-stream", "A.B"],
            "nats.stream = \"A.B\" (from flag --nats-stream",
        ),
        (
            vec![("DATABASE_URL", "mysql://u:pw@h/x")],
            vec!["status"],
            "database.url = \"mysql://u:***@h/x\"",
        ),
        (
            vec![],
            vec!["status", "--config", "/nonexistent/fieldtrail.toml"],
            "configuration file /nonexistent/fieldtrail.toml: cannot read it",
        ),
    ] {
        let (code, out, err) = show(&envs, &args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(names), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }
    // The commented sample in deploy/ is accepted and gives every setting its default.
    let sample = format!("{}/../deploy/fieldtrail.toml", env!("CARGO_MANIFEST_DIR"));
    let (code, from_sample, err) = show(&[], &["config", "show", "--config", &sample]);
    assert_eq!(code, Some(0), "{err}");
    let (_, defaults, _) = show(&[], &["config", "show"]);
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        values(&from_sample),
        values(&defaults),
        "the sample's values are the defaults"
    );
    assert_eq!(
        from_sample.matches(&format!("# file {sample}")).count(),
        19,
        "{from_sample}"
    );

    std::fs::write(&file, "[database]\npool = 3\n").unwrap();
    let (code, _, err) = show(&[], &["status", "--config", path]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unknown setting database.pool (known in [database]: url, pool_size)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn status_reports_positions_lags_and_readiness() {
    let env = TestEnv::new("ops_status").await;
    env.import(COHORT).await;
    env.relay().await;
    let output = fieldtrail(&env).args(["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("journal      head position 210, 210 events, 203 commands"),
        "{text}"
    );
    assert!(
        text.contains("timetable  position 210, lag 0 events (0.0 s), 1 documents"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "relay        stream {}: position 210, lag 0 events",
            env.settings.nats_stream
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "stream {} holds 210 messages",
            env.settings.nats_stream
        )),
        "{text}"
    );
    assert!(text.contains("ready        yes"), "{text}");

    // A read model behind its bound: not ready, exit 2; the JSON names the lag.
    env.pool()
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE checkpoints SET tx_id = '0', position = 0 WHERE name = 'projector'",
            &[],
        )
        .await
        .unwrap();
    let output = fieldtrail(&env)
        .args(["status", "--json", "--ready-max-lag-events", "100"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        body["checks"]["read_models"]["history"]["lag_events"], 210,
        "{body}"
    );
    assert!(
        body["problems"][0].as_str().unwrap().contains("210 events"),
        "{body}"
    );
    env.cleanup().await;
}
