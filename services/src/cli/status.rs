//! `fieldtrail status`: what `/readyz` says, for an operator at the server's console: the
//! journal head, each read model's position and lag, the relay's position and lag, which
//! database session runs the projector and the relay, and the JetStream stream's message
//! count. Exit status 0 when ready, [`NOT_READY`] when not.

use crate::http::health::{self, Bounds, Snapshot};
use crate::Settings;
use deadpool_postgres::Pool;
use fieldtrail_journal::{database, Journal, PgJournal};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::process::ExitCode;

/// Exit status when something is not ready (PostgreSQL unreachable, NATS unreachable, a read
/// model behind its bound).
pub const NOT_READY: u8 = 2;

/// Which database session holds a leadership lock.
async fn leader(pool: &Pool, class: i32, name: &str) -> anyhow::Result<Option<String>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT l.pid, coalesce(host(a.client_addr), 'local socket'), a.application_name
               FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.classid = $1::int4::oid AND l.objid = hashtext($2)::oid
              LIMIT 1",
            &[&class, &name],
        )
        .await?;
    Ok(row.map(|r| {
        let pid: i32 = r.get(0);
        let from: String = r.get(1);
        format!("database session {pid} from {from}")
    }))
}

/// The stream's message count (`None`: the stream does not exist yet; `serve` creates it), or
/// why NATS could not be asked.
async fn stream_messages(settings: &Settings) -> Result<Option<u64>, String> {
    let client = crate::workers::relay::connect(&settings.nats_url)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let js = async_nats::jetstream::new(client);
    let ask = async {
        use async_nats::jetstream::context::GetStreamErrorKind;
        use async_nats::jetstream::ErrorCode;
        let mut stream = match js.get_stream(&settings.nats_stream).await {
            Ok(stream) => stream,
            Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) => {
                return Ok(None)
            }
            Err(e) => return Err(e.to_string()),
        };
        let info = stream.info().await.map_err(|e| e.to_string())?;
        Ok::<Option<u64>, String>(Some(info.state.messages))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), ask).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("stream {}: {e}", settings.nats_stream)),
        Err(_) => Err("JetStream did not answer within 5 s".to_owned()),
    }
}

/// Everything `status` shows, as JSON, and whether it is ready.
///
/// # Errors
/// Never for an unreachable server (that is reported in the body); only for a bad URL.
pub async fn collect(settings: &Settings) -> anyhow::Result<(bool, Value)> {
    let journal = if fieldtrail_journal::sqlite_path(&settings.database_url).is_some() {
        fieldtrail_journal::open_existing(&settings.database_url, 2).await?
    } else {
        // Not `Journal::new`, which panics on a malformed master key: one line instead.
        Journal::with_master_key(
            PgJournal::new(database::pool(&settings.database_url, 2)?),
            fieldtrail_journal::sealing::MasterKey::configured()?,
        )
    };
    let postgres: Result<Snapshot, String> = health::snapshot(&journal, &settings.nats_stream)
        .await
        .map_err(|e| format!("{e:#}"));
    let nats = if settings.bus().is_some() {
        Some(stream_messages(settings).await)
    } else {
        None
    };
    let nats_shown = crate::config::file::hide_secrets(&settings.nats_url);
    let nats_state = nats
        .as_ref()
        .map(|r| r.as_ref().map(|_| "connected").map_err(Clone::clone));
    let bounds = Bounds {
        max_lag_events: settings.ready_max_lag_events,
        max_lag_secs: settings.ready_max_lag_secs,
    };
    let (ready, mut body) = health::judge(&postgres, nats_state, &nats_shown, &bounds, false);
    if let (Ok(_), None) = (&postgres, journal.postgres()) {
        let mut documents = serde_json::Map::new();
        for (kind, _, _) in journal.documents().await? {
            let n = documents.entry(kind).or_insert(json!(0));
            *n = json!(n.as_i64().unwrap_or(0) + 1);
        }
        body["journal"] = json!({
            "events": journal.count().await?,
            "commands": journal.export_ledger().await?.len(),
            "backend": "sqlite",
        });
        body["documents"] = Value::Object(documents);
        body["leaders"] = json!({"projector": "this process (embedded journal)", "relay": null});
    }
    if let (Ok(_), Some(pool)) = (&postgres, journal.postgres()) {
        let (projector, relay) = (
            leader(
                pool,
                crate::workers::leader::PROJECTOR_KEY.0,
                crate::workers::leader::PROJECTOR_KEY.1,
            )
            .await,
            leader(
                pool,
                crate::workers::leader::RELAY_CLASS,
                &settings.nats_stream,
            )
            .await,
        );
        let client = pool.get().await?;
        let counts = client
            .query(
                "SELECT kind, count(*) FROM read_models GROUP BY kind ORDER BY kind",
                &[],
            )
            .await?;
        let events: i64 = client
            .query_one("SELECT count(*) FROM events", &[])
            .await?
            .get(0);
        let commands: i64 = client
            .query_one("SELECT count(*) FROM command_ledger", &[])
            .await?
            .get(0);
        let documents: serde_json::Map<String, Value> = counts
            .iter()
            .map(|r| (r.get::<_, String>(0), json!(r.get::<_, i64>(1))))
            .collect();
        body["journal"] = json!({"events": events, "commands": commands});
        body["documents"] = Value::Object(documents);
        body["leaders"] = json!({
            "projector": projector.map_err(|e| e.to_string()).ok().flatten(),
            "relay": relay.map_err(|e| e.to_string()).ok().flatten(),
        });
    }
    body["database"] = json!(crate::config::file::hide_secrets(&settings.database_url));
    body["stream"] = json!(settings.nats_stream);
    if let Some(Ok(messages)) = &nats {
        body["stream_messages"] = json!(messages);
    }
    if let Some(Err(e)) = &nats {
        body["nats_error"] = json!(e);
    }
    journal.close();
    Ok((ready, body))
}

/// The report as an operator reads it.
pub fn render(settings: &Settings, ready: bool, body: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "database     {}",
        body["database"].as_str().unwrap_or("?")
    );
    if body["checks"]["postgres"]["ok"] == true {
        let _ = writeln!(
            out,
            "journal      head position {}, {} events, {} commands",
            body["journal_head"], body["journal"]["events"], body["journal"]["commands"]
        );
        let run_by = |who: &Value| {
            who.as_str().map_or_else(
                || "nobody (no serve process runs it)".to_owned(),
                str::to_owned,
            )
        };
        let _ = writeln!(
            out,
            "projector    run by {}",
            run_by(&body["leaders"]["projector"])
        );
        for kind in health::READ_MODELS {
            let name = kind.as_str();
            let m = &body["checks"]["read_models"][name];
            let _ = writeln!(
                out,
                "  {name:<11}position {}, lag {} events ({:.1} s), {} documents{}",
                m["position"],
                m["lag_events"],
                m["lag_seconds"].as_f64().unwrap_or(0.0),
                body["documents"][name].as_i64().unwrap_or(0),
                if m["ok"] == true {
                    ""
                } else {
                    "  [over the bound]"
                }
            );
        }
        let r = &body["relay"];
        let _ = writeln!(
            out,
            "relay        stream {}: position {}, lag {} events ({:.1} s); run by {}",
            settings.nats_stream,
            r["position"],
            r["lag_events"],
            r["lag_seconds"].as_f64().unwrap_or(0.0),
            run_by(&body["leaders"]["relay"])
        );
    }
    let nats = &body["checks"]["nats"];
    let _ = match nats["state"].as_str() {
        Some("disabled") => writeln!(
            out,
            "nats         no relay (nats.url empty, or nats.relay = false)"
        ),
        Some("connected") => match body["stream_messages"].as_u64() {
            Some(n) => writeln!(
                out,
                "nats         {}: stream {} holds {n} messages",
                nats["url"].as_str().unwrap_or("?"),
                settings.nats_stream
            ),
            None => writeln!(
                out,
                "nats         {}: stream {} not created yet (serve creates it)",
                nats["url"].as_str().unwrap_or("?"),
                settings.nats_stream
            ),
        },
        _ => writeln!(
            out,
            "nats         {}: unreachable: {}",
            nats["url"].as_str().unwrap_or("?"),
            body["nats_error"].as_str().unwrap_or("?")
        ),
    };
    if ready {
        let _ = writeln!(out, "ready        yes");
    } else {
        let _ = writeln!(out, "ready        NO");
        for problem in body["problems"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  - {}", problem.as_str().unwrap_or(""));
        }
    }
    out
}

/// Runs `fieldtrail status` (`--json` for the body as JSON).
///
/// # Errors
/// When the database URL does not parse.
pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let (ready, body) = collect(settings).await?;
    if json {
        crate::say!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        crate::say_raw!("{}", render(settings, ready, &body));
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_READY)
    })
}
