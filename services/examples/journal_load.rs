//! Fills a journal with generated events, through the real append path (hash chain and
//! command ledger included), to measure `fieldtrail audit verify` on a large journal.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/ft_load \
//!   cargo run --release -p fieldtrail --example journal_load -- 1000000
//! fieldtrail --database-url postgres://postgres@127.0.0.1:5432/ft_load audit verify
//! ```
//!
//! Arguments: the number of events (default 100000), then optionally the events per command
//! (default 4) and the number of concurrent writers (default 8). Each writer appends to its own
//! cohort streams of 400 events: one `cohort_opened`, then pairs of `session_scheduled` and
//! `session_held` (12 learners) with the payload shapes of the domain, so that the generated
//! journal also folds (`fieldtrail replay`).

use fieldtrail_journal::{database, CommandMetadata, PgJournal};
use serde_json::{json, Value};
use std::time::Instant;

const STREAM_LEN: i64 = 400;

fn event(cohort: &str, version: i64) -> (String, String, Value) {
    let learners: Vec<String> = (1..=12).map(|l| format!("{cohort}-l{l:02}")).collect();
    let session = format!("{cohort}-s{:04}", (version - 2) / 2);
    let (kind, payload) = if version == 1 {
        (
            "cohort_opened",
            json!({"cohort_id": cohort, "programme_id": "cisdcp", "title": format!("Promotion {cohort}"),
                   "starts_on": "2025-09-14", "ends_on": "2026-06-30"}),
        )
    } else if version % 2 == 0 {
        (
            "session_scheduled",
            json!({"cohort_id": cohort, "session_id": session, "module_id": "m1", "unit_id": "m1-1",
                   "kind": "course", "starts_at": "2025-09-15T09:00:00+02:00", "ends_at": "2025-09-15T17:00:00+02:00",
                   "half_days": 2, "facilitator": "facilitator:intervenant-a"}),
        )
    } else {
        (
            "session_held",
            json!({"cohort_id": cohort, "session_id": session, "module_id": "m1", "half_days": 2,
                   "present": learners[..10], "excused": learners[10..11], "absent": learners[11..]}),
        )
    };
    (kind.to_owned(), "1".to_owned(), payload)
}

async fn writer(
    journal: PgJournal,
    writer: usize,
    events: i64,
    per_command: i64,
) -> anyhow::Result<()> {
    let mut written = 0;
    let mut stream = 0;
    while written < events {
        let cohort = format!("gen-w{writer}-c{stream}");
        let mut version = 0;
        while version < STREAM_LEN && written < events {
            let n = per_command.min(STREAM_LEN - version).min(events - written);
            let batch: Vec<(String, String, Value)> = (version + 1..=version + n)
                .map(|v| event(&cohort, v))
                .collect();
            let command_id = format!("{cohort}-v{}", version + 1);
            let metadata = CommandMetadata {
                reported_actor: None,
                command_id: command_id.clone(),
                command: "generated".to_owned(),
                actor: "staff:generator".to_owned(),
                occurred_at: chrono::DateTime::parse_from_rfc3339("2025-09-15T17:30:00+02:00")?,
                correlation_id: command_id.clone(),
                causation_id: command_id,
                event_ids: Vec::new(),
            };
            journal
                .append("cohort", &cohort, version, &batch, &metadata)
                .await?;
            version += n;
            written += n;
        }
        stream += 1;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .map(|a| a.parse::<i64>())
        .collect::<Result<_, _>>()?;
    let events = args.first().copied().unwrap_or(100_000).max(0);
    let per_command = args.get(1).copied().unwrap_or(4).max(1);
    let writers = args.get(2).copied().unwrap_or(8).max(1);
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/ft_load".to_owned());
    let pool = database::open(&url, usize::try_from(writers)?).await?;
    let journal = PgJournal::new(pool);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let share = events / writers + i64::from(w < events % writers);
            tokio::spawn(writer(
                journal.clone(),
                usize::try_from(w).unwrap_or(0),
                share,
                per_command,
            ))
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    println!(
        "appended {events} events ({per_command} per command, {writers} writers) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
