//! `fieldtrail bench`: the product's rates measured against the raw limits of its own parts
//! (PostgreSQL inserts and scans, JetStream publishes), in the same run, on the same servers.
//!
//! Each run creates a scratch database `ft_bench_<random>` and scratch JetStream streams on the
//! configured servers, fills the journal, measures, prints a table and drops everything it
//! created. See BENCHMARKS.md for the figures and their meaning.

pub mod embedded;
pub mod load;
pub mod product;
pub mod raw;

use crate::Settings;
use anyhow::Context as _;
use deadpool_postgres::Pool;
use fieldtrail_journal::database;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// The options of `fieldtrail bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Events written into the journal before the product figures (default 100000; 2000 with
    /// --quick).
    #[arg(long)]
    pub events: Option<u64>,
    /// Concurrent clients of the HTTP and import figures (and connections of the raw insert).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub clients: Vec<usize>,
    /// A small, fast configuration (the CI smoke test): little load, short windows.
    #[arg(long)]
    pub quick: bool,
    /// Offered load of the latency figure, commands per second.
    #[arg(long, default_value_t = 500)]
    pub offered_rate: u32,
    /// Measure the embedded backend (a scratch SQLite file) against a raw rusqlite loop,
    /// instead of PostgreSQL and NATS.
    #[arg(long)]
    pub embedded: bool,
    /// The `fieldtrail` binary started as the server (default: this executable).
    #[arg(long, hide = true)]
    pub server_binary: Option<PathBuf>,
}

impl BenchArgs {
    /// The quick configuration, running `server_binary` as the server.
    pub fn quick(server_binary: PathBuf) -> Self {
        Self {
            events: None,
            clients: vec![1, 8],
            quick: true,
            offered_rate: 500,
            embedded: false,
            server_binary: Some(server_binary),
        }
    }

    /// Events to fill the journal with.
    pub fn events(&self) -> u64 {
        self.events
            .unwrap_or(if self.quick { 2_000 } else { 100_000 })
    }

    /// How long each raw baseline runs.
    pub fn window(&self) -> Duration {
        if self.quick {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(3)
        }
    }

    /// Cohort copies (203 commands each) sent by each client of the HTTP and import figures.
    pub fn cohorts_per_client(&self) -> usize {
        if self.quick {
            1
        } else {
            2
        }
    }

    /// Generated cohorts of the import figure (203 commands each), shared out among its
    /// clients: 20 (issue 15: "a file of 20 generated cohorts"); 2 with --quick.
    pub fn import_cohorts(&self) -> usize {
        if self.quick {
            2
        } else {
            20
        }
    }

    /// Commands each client sends in the HTTP and import figures (a prefix of its copies).
    pub fn commands_per_client(&self) -> usize {
        if self.quick {
            40
        } else {
            self.cohorts_per_client() * 203
        }
    }

    /// How long the fixed offered load of the latency figure lasts.
    pub fn latency_window(&self) -> Duration {
        if self.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        }
    }
}

/// Whether a figure is better high (a rate) or low (a time, a size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// A rate: the ratio is product / raw.
    Higher,
    /// A duration or a size: the ratio is raw / product (still "fraction of the raw speed").
    Lower,
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// The product's value.
    pub product: f64,
    /// The raw baseline's value, when there is one.
    pub raw: Option<f64>,
    /// Unit of both values.
    pub unit: &'static str,
    /// Direction of goodness.
    pub better: Better,
    /// The target, as text.
    pub target: String,
    /// Whether the target is met (`None`: no target).
    pub met: Option<bool>,
}

impl Row {
    /// The product's share of the raw speed (`None` without a baseline).
    pub fn ratio(&self) -> Option<f64> {
        let raw = self.raw?;
        match self.better {
            Better::Higher if raw > 0.0 => Some(self.product / raw),
            Better::Lower if self.product > 0.0 => Some(raw / self.product),
            _ => None,
        }
    }
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The table's lines.
    pub rows: Vec<Row>,
    /// Notes printed under the table (sizes, counts, rejected commands).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a line.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        figure: impl Into<String>,
        product: f64,
        raw: Option<f64>,
        unit: &'static str,
        better: Better,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            figure: figure.into(),
            product,
            raw,
            unit,
            better,
            target: target.into(),
            met,
        });
    }

    /// The table as Markdown: figure | product | raw baseline | ratio | target | met?
    pub fn table(&self) -> String {
        let mut out = String::from("| figure | product | raw baseline | ratio | target | met? |\n|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            let raw = r
                .raw
                .map_or("-".to_owned(), |v| format!("{} {}", number(v), r.unit));
            let ratio = r
                .ratio()
                .map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0));
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            let _ = writeln!(
                out,
                "| {} | {} {} | {} | {} | {} | {} |",
                r.figure,
                number(r.product),
                r.unit,
                raw,
                ratio,
                if r.target.is_empty() { "-" } else { &r.target },
                met
            );
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The scratch resources of one run.
pub struct Scratch {
    /// `ft_bench_<random>`.
    pub db_name: String,
    /// The server's URL without a database.
    pub server: String,
    /// Settings naming the scratch database, stream and subject prefix.
    pub settings: Settings,
    /// Pool on the scratch database.
    pub pool: Pool,
    /// The NATS client.
    pub nats: async_nats::Client,
}

/// `postgres://…/name` → `postgres://…` (the part before the last path segment).
pub fn server_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].rfind('/') {
        Some(i) => url[..after_scheme + i].to_owned(),
        None => url.to_owned(),
    }
}

impl Scratch {
    /// Creates (and migrates) the scratch database and connects to NATS.
    ///
    /// # Errors
    /// When PostgreSQL or NATS cannot be reached.
    pub async fn create(base: &Settings) -> anyhow::Result<Self> {
        let unique = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let db_name = format!("ft_bench_{unique}");
        let server = server_of(&base.database_url);
        let url = format!("{server}/{db_name}");
        let mut settings = Settings::new(
            &url,
            &base.nats_url,
            &format!("FT_BENCH_{}", unique.to_uppercase()),
            &format!("ft_bench_{unique}"),
        );
        settings.pool_size = 16;
        settings.log = "warn".to_owned();
        let pool = database::open(&url, 16)
            .await
            .with_context(|| format!("cannot create {db_name}"))?;
        let nats = crate::workers::relay::connect(&base.nats_url).await?;
        Ok(Self {
            db_name,
            server,
            settings,
            pool,
            nats,
        })
    }

    /// Deletes the scratch streams and drops the scratch database.
    ///
    /// # Errors
    /// When the database cannot be dropped.
    pub async fn drop_all(self) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(self.nats.clone());
        for name in [
            self.settings.nats_stream.clone(),
            raw::raw_stream_name(&self.settings),
        ] {
            let _ = js.delete_stream(&name).await;
        }
        self.pool.close();
        let (client, connection) =
            tokio_postgres::connect(&format!("{}/postgres", self.server), tokio_postgres::NoTls)
                .await?;
        let conn = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.db_name
            ))
            .await?;
        drop(client);
        let _ = conn.await;
        Ok(())
    }
}

/// Runs the benchmark against the servers named by `base` and returns the table.
///
/// # Errors
/// When a server cannot be reached or a step fails; the scratch resources are dropped anyway.
pub async fn run(base: &Settings, args: &BenchArgs) -> anyhow::Result<Report> {
    let scratch = Scratch::create(base).await?;
    let result = product::measure(&scratch, args).await;
    let dropped = scratch.drop_all().await;
    let report = result?;
    dropped?;
    Ok(report)
}

/// `fieldtrail bench`: runs and prints the table.
///
/// # Errors
/// As [`run`].
pub async fn run_cli(base: &Settings, mut args: BenchArgs) -> anyhow::Result<()> {
    if args.server_binary.is_none() {
        args.server_binary = Some(std::env::current_exe()?);
    }
    let started = std::time::Instant::now();
    if !args.embedded && fieldtrail_journal::sqlite_path(&base.database_url).is_some() {
        eprintln!("bench: the configured journal is embedded (DATABASE_URL={}): measuring the embedded backend; set DATABASE_URL=postgres://... and NATS_URL for the PostgreSQL and NATS figures", base.database_url);
        args.embedded = true;
    }
    let report = if args.embedded {
        embedded::measure(&args).await?
    } else {
        run(base, &args).await?
    };
    crate::say!("{}", report.table());
    crate::say!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}
