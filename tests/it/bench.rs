//! Smoke test of `fieldtrail bench --quick`: it completes and prints a table of the expected
//! shape. Nothing is timed or compared here (CI machines vary); BENCHMARKS.md holds figures.

use crate::helpers::{nats_url, server_url};
use fieldtrail::bench::{self, BenchArgs};
use fieldtrail::Settings;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bench_completes_and_prints_the_table() {
    let base = Settings::new(
        &format!("{}/postgres", server_url()),
        &nats_url(),
        "UNUSED",
        "unused",
    );
    let args = BenchArgs::quick(PathBuf::from(env!("CARGO_BIN_EXE_fieldtrail")));
    let report = bench::run(&base, &args)
        .await
        .expect("the quick bench completes");

    let figures: Vec<&str> = report.rows.iter().map(|r| r.figure.as_str()).collect();
    for wanted in [
        "import commands/s, 1 client",
        "import commands/s, 8 clients",
        "projection rebuild",
        "relay publish",
        "aggregate load",
        "HTTP POST /commands/s, 1 client",
        "HTTP POST /commands/s, 8 clients",
        "latency p50",
        "latency p99",
        "serve RSS idle",
        "serve RSS under load",
    ] {
        assert!(
            figures.iter().any(|f| f.contains(wanted)),
            "no figure {wanted:?} in {figures:?}"
        );
    }
    for row in &report.rows {
        assert!(
            row.product.is_finite() && row.product > 0.0,
            "{}: {}",
            row.figure,
            row.product
        );
        if let Some(raw) = row.raw {
            assert!(raw.is_finite() && raw > 0.0, "{}: raw {raw}", row.figure);
            assert!(
                row.ratio().is_some_and(f64::is_finite),
                "{}: no ratio",
                row.figure
            );
        }
        assert_eq!(
            row.met.is_some(),
            !row.target.is_empty(),
            "{}: a target and its verdict go together",
            row.figure
        );
    }
    assert!(
        report
            .notes
            .iter()
            .all(|n| !n.contains("failed") || n.ends_with(" 0 failed")),
        "HTTP commands failed: {:?}",
        report.notes
    );

    let table = report.table();
    let mut lines = table.lines();
    assert_eq!(
        lines.next(),
        Some("| figure | product | raw baseline | ratio | target | met? |")
    );
    let body: Vec<&str> = lines.skip(1).take_while(|l| l.starts_with("| ")).collect();
    assert_eq!(body.len(), report.rows.len());
    assert!(
        body.iter().all(|l| l.matches(" | ").count() == 5),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_embedded_bench_completes_and_prints_the_table() {
    let mut args = BenchArgs::quick(PathBuf::from(env!("CARGO_BIN_EXE_fieldtrail")));
    args.embedded = true;
    let report = bench::embedded::measure(&args)
        .await
        .expect("the quick embedded bench completes");
    let figures: Vec<&str> = report.rows.iter().map(|r| r.figure.as_str()).collect();
    for wanted in [
        "embedded journal append",
        "embedded import commands/s, 1 client",
        "embedded import commands/s, 8 clients",
        "embedded projection rebuild",
        "embedded POST /commands/s, 1 client",
        "embedded POST /commands/s, 8 clients",
    ] {
        assert!(
            figures.iter().any(|f| f.contains(wanted)),
            "no figure {wanted:?} in {figures:?}"
        );
    }
    for row in &report.rows {
        assert!(
            row.product.is_finite() && row.product > 0.0,
            "{}",
            row.figure
        );
        let raw = row.raw.expect("every embedded figure has its raw baseline");
        assert!(raw.is_finite() && raw > 0.0, "{}: raw {raw}", row.figure);
    }
    assert!(
        report.notes.iter().any(|n| n.contains("0 failed")),
        "{:?}",
        report.notes
    );
}
