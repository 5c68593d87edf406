//! What sealing personal fields costs (BENCHMARKS.md, "Personal data"): the same commands
//! through the same paths, on journals that seal (every `Journal`) and on journals that do not
//! (`Journal::unsealed_for_measurement`), alternately, best of the rounds.
//!
//! ```sh
//! cargo run --release -p fieldtrail --example sealing_cost -- 20 postgres://postgres@127.0.0.1:5432
//! ```
//!
//! Arguments: the number of cohort-2025 copies for the import (default 20: 4,060 commands, about
//! 4,300 events, a third of them with personal fields), then optionally a PostgreSQL server URL
//! without database name (scratch databases `ft_seal_<random>` are created and dropped);
//! without it, the embedded backend only. Paths measured: `import` (the bulk path, 1,000 lines
//! a batch), one command at a time through `CommandHandler::handle` (the path of
//! `POST /commands` without its HTTP layer), 3 copies (609 commands) in order, and the same
//! commands through real HTTP: `POST /commands` with a staff token, one request after the
//! other on one kept-alive connection (reqwest), to the API's router (`http::router`, as
//! `fieldtrail serve` builds it, without the projector and relay loops) on a local port.

use fieldtrail::auth::Role;
use fieldtrail::cli::generate;
use fieldtrail::cli::import::import_text;
use fieldtrail::handler::CommandHandler;
use fieldtrail_domain::CommandEnvelope;
use fieldtrail_journal::sqlite::SqliteJournal;
use fieldtrail_journal::{database, Journal, PgJournal};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

enum Where<'a> {
    Sqlite(&'a std::path::Path),
    Postgres(&'a str),
}

async fn open(place: &Where<'_>, n: usize, sealed: bool) -> anyhow::Result<(Journal, String)> {
    let tag = format!("{}_{n}", if sealed { "on" } else { "off" });
    Ok(match place {
        Where::Sqlite(dir) => {
            let path = dir.join(format!("{tag}.db"));
            let backend = SqliteJournal::open(&path).await?;
            let journal = if sealed {
                Journal::new(backend)
            } else {
                Journal::unsealed_for_measurement(backend)
            };
            (journal, String::new())
        }
        Where::Postgres(server) => {
            let name = format!(
                "ft_seal_{tag}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            let url = format!("{server}/{name}");
            let pool = database::open(&url, 16).await?;
            let backend = PgJournal::with_url(pool, &url);
            let journal = if sealed {
                Journal::new(backend)
            } else {
                Journal::unsealed_for_measurement(backend)
            };
            (journal, name)
        }
    })
}

async fn drop_database(place: &Where<'_>, name: &str) {
    if let (Where::Postgres(server), false) = (place, name.is_empty()) {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// `single` sent one after the other as `POST /commands` to the API's router serving
/// `journal` on a local port; the time they took.
async fn over_http(journal: &Journal, single: &[String]) -> anyhow::Result<Duration> {
    let settings = fieldtrail::Settings::new("sqlite://unused.db", "", "FIELDTRAIL", "fieldtrail");
    let token = fieldtrail::auth::tokens::create(journal, "bench", Role::Staff, None, None).await?;
    let app = fieldtrail::http::router(fieldtrail::http::AppState {
        handler: std::sync::Arc::new(CommandHandler::new(journal.clone())),
        journal: journal.clone(),
        nats: None,
        roles: std::sync::Arc::default(),
        body_limit: fieldtrail::http::BODY_LIMIT,
        request_timeout_secs: 30,
        ops: fieldtrail::http::health::Ops::new(&settings),
        keys: fieldtrail::signing::store(&settings),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await
    });
    let client = reqwest::Client::new();
    let url = format!("http://{address}/commands");
    let start = Instant::now();
    for body in single {
        let answer = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        // The same answers as `CommandHandler::handle` gives (a refusal is an answer too);
        // a server error or a refused token is not.
        let status = answer.status().as_u16();
        anyhow::ensure!(
            status < 500 && status != 401 && status != 403,
            "POST /commands answered {status}"
        );
    }
    let took = start.elapsed();
    stop.cancel();
    server.await??;
    Ok(took)
}

/// One round's times.
struct Times {
    import: Duration,
    events: i64,
    one_by_one: Duration,
    commands: usize,
    http: Duration,
}

/// One round on fresh journals, sealing on or off.
async fn round(
    place: &Where<'_>,
    n: usize,
    sealed: bool,
    import: &str,
    single: &[CommandEnvelope],
    lines: &[String],
) -> anyhow::Result<Times> {
    let (journal, name) = open(place, 2 * n, sealed).await?;
    let handler = CommandHandler::new(journal.clone());
    let start = Instant::now();
    let report = import_text(&handler, import, Some("bench")).await?;
    let imported = start.elapsed();
    anyhow::ensure!(report.rejected == 0, "the import rejected lines");
    let events = journal.count().await?;
    journal.close();
    drop_database(place, &name).await;

    let (journal, name) = open(place, 2 * n + 1, sealed).await?;
    let handler = CommandHandler::new(journal.clone());
    let start = Instant::now();
    for envelope in single {
        handler.handle(envelope, chrono::Utc::now()).await?;
    }
    let one_by_one = start.elapsed();
    journal.close();
    drop_database(place, &name).await;

    let (journal, name) = open(place, 2 * n + 2, sealed).await?;
    let http = over_http(&journal, lines).await?;
    journal.close();
    drop_database(place, &name).await;
    Ok(Times {
        import: imported,
        events,
        one_by_one,
        commands: single.len(),
        http,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let copies: usize = args.get(1).map_or(Ok(20), |a| a.parse())?;
    let import: String = (1..=copies)
        .map(generate::cohort)
        .collect::<Vec<_>>()
        .join("\n");
    let lines: Vec<String> = (1..=3)
        .flat_map(|n| {
            generate::cohort(1000 + n)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let single: Vec<CommandEnvelope> = lines
        .iter()
        .map(|l| CommandEnvelope::parse_line(l).map_err(|r| anyhow::anyhow!(r.message)))
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let mut places = vec![("embedded (SQLite)", Where::Sqlite(dir.path()))];
    if let Some(server) = args.get(2) {
        places.push(("PostgreSQL", Where::Postgres(server.as_str())));
    }
    println!("| backend | path | sealing on | sealing off | on / off |");
    println!("|---|---|---:|---:|---:|");
    for (label, place) in &places {
        // [sealed, unsealed]: (import s, single s, HTTP s)
        let mut best = [(f64::MAX, f64::MAX, f64::MAX); 2];
        let (mut events, mut commands) = (0, 0);
        for n in 0..ROUNDS {
            for (i, sealed) in [true, false].into_iter().enumerate() {
                let t = round(place, n * 3 + i, sealed, &import, &single, &lines).await?;
                best[i].0 = best[i].0.min(t.import.as_secs_f64());
                best[i].1 = best[i].1.min(t.one_by_one.as_secs_f64());
                best[i].2 = best[i].2.min(t.http.as_secs_f64());
                (events, commands) = (t.events, t.commands);
            }
        }
        let rate = |count: f64, secs: f64| count / secs;
        let (on, off) = (
            rate(events as f64, best[0].0),
            rate(events as f64, best[1].0),
        );
        println!(
            "| {label} | import, {copies} cohort copies ({events} events), events/s | {on:.0} | {off:.0} | {:.0}% |",
            100.0 * on / off
        );
        let (on, off) = (
            rate(commands as f64, best[0].1),
            rate(commands as f64, best[1].1),
        );
        println!(
            "| {label} | one command at a time ({commands} commands, the POST path without HTTP), commands/s | {on:.0} | {off:.0} | {:.0}% |",
            100.0 * on / off
        );
        let (on, off) = (
            rate(commands as f64, best[0].2),
            rate(commands as f64, best[1].2),
        );
        println!(
            "| {label} | `POST /commands` over HTTP, one after the other ({commands} commands), commands/s | {on:.0} | {off:.0} | {:.0}% |",
            100.0 * on / off
        );
    }
    Ok(())
}
