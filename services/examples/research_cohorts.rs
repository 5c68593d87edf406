//! Fills a journal with generated cohorts (copies of cohort-2025 under new ids,
//! `fieldtrail::cli::generate::cohort`) through the command handler, to measure
//! `fieldtrail export trajectories` on many cohorts (time and peak memory). Either backend:
//! `DATABASE_URL=sqlite://PATH` works as well.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/ft_research_load \
//!   cargo run --release -p fieldtrail --example research_cohorts -- 200 4
//! head -c 32 /dev/urandom | base64 > /tmp/research.key
//! /usr/bin/time -v target/release/fieldtrail --database-url postgres://postgres@127.0.0.1:5432/ft_research_load \
//!   export trajectories --format parquet --shape long --out /tmp/t.parquet --key-file /tmp/research.key
//! ```
//!
//! Arguments: the number of cohorts (default 200), then the number of concurrent writers
//! (default 4; each imports its cohorts one after the other, so about that many cohorts are
//! interleaved in the log at any point).

use fieldtrail::cli::{generate, import};
use fieldtrail::handler::CommandHandler;

use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cohorts: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let writers: usize = args.next().map_or(Ok(4), |a| a.parse())?.max(1);
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/ft_research_load".to_owned());
    let journal = fieldtrail_journal::open(&url, writers.saturating_mul(2).max(4)).await?;
    let handler = Arc::new(CommandHandler::new(journal));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let handler = handler.clone();
        tasks.push(tokio::spawn(async move {
            let mut applied = 0usize;
            let mut rejected = 0usize;
            for n in (1..=cohorts).filter(|n| n % writers == writer) {
                let report = import::import_text(&handler, &generate::cohort(n), None).await?;
                applied += report.applied;
                rejected += report.rejected;
            }
            anyhow::Ok((applied, rejected))
        }));
    }
    let (mut applied, mut rejected) = (0, 0);
    for task in tasks {
        let (a, r) = task.await??;
        applied += a;
        rejected += r;
    }
    println!(
        "{cohorts} cohorts into {url}: applied {applied}, rejected {rejected} commands in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
