//! Progress of a long job on stderr: an indicatif bar with rate and ETA on a terminal; plain
//! lines when stderr is not a terminal (a log file, a pipe, systemd's journal).
//!
//! A plain line is written at most every `interval` and at each tenth of the work, then a last
//! line at the end:
//!
//! ```text
//! import: 61/203 lines (30%), 152.3/s, ETA 1s
//! import: 203/203 lines (100%) in 1.3 s, 152.1/s
//! ```

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Progress of one job over `total` items.
pub struct Progress {
    inner: Inner,
}

enum Inner {
    Hidden,
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

struct Lines {
    job: String,
    unit: String,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
    last_tenth: u64,
    interval: Duration,
}

impl Progress {
    /// No output at all.
    pub fn hidden() -> Self {
        Self {
            inner: Inner::Hidden,
        }
    }

    /// A bar on a terminal, plain lines every `interval` (and at each tenth) otherwise.
    /// `job` names the work (`import`), `unit` its items (`lines`).
    pub fn new(job: &str, unit: &str, total: u64, interval: Duration) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar(job, unit, total)
        } else {
            Self::lines(job, unit, total, interval)
        }
    }

    /// Always the terminal bar (indicatif draws only when stderr is a terminal).
    pub fn bar(job: &str, unit: &str, total: u64) -> Self {
        let bar = ProgressBar::new(total);
        let template = format!(
            "{job} {{bar:40.cyan/blue}} {{pos}}/{{len}} {unit} {{percent}}% · {{per_sec}} · ETA {{eta}}"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            inner: Inner::Bar(bar),
        }
    }

    /// Always plain lines.
    pub fn lines(job: &str, unit: &str, total: u64, interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner: Inner::Lines(Mutex::new(Lines {
                job: job.to_owned(),
                unit: unit.to_owned(),
                total,
                done: 0,
                started: now,
                last: now,
                last_tenth: 0,
                interval,
            })),
        }
    }

    /// `n` more items done.
    pub fn inc(&self, n: u64) {
        match &self.inner {
            Inner::Hidden => {}
            Inner::Bar(bar) => bar.inc(n),
            Inner::Lines(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.done += n;
                    let tenth = l.done.saturating_mul(10).checked_div(l.total).unwrap_or(0);
                    let due = l.last.elapsed() >= l.interval || tenth > l.last_tenth;
                    if due && l.done < l.total {
                        l.last = Instant::now();
                        l.last_tenth = tenth;
                        let line = l.line();
                        write_line(&line);
                    }
                }
            }
        }
    }

    /// Prints a message above the bar (or as a plain line).
    pub fn println(&self, message: &str) {
        match &self.inner {
            Inner::Hidden => {}
            Inner::Bar(bar) => bar.println(message),
            Inner::Lines(_) => write_line(message),
        }
    }

    /// The job is over: the bar is cleared, or a last plain line is written.
    pub fn finish(&self) {
        match &self.inner {
            Inner::Hidden => {}
            Inner::Bar(bar) => bar.finish_and_clear(),
            Inner::Lines(lines) => {
                if let Ok(l) = lines.lock() {
                    let secs = l.started.elapsed().as_secs_f64();
                    let rate = if secs > 0.0 {
                        l.done as f64 / secs
                    } else {
                        0.0
                    };
                    write_line(&format!(
                        "{}: {}/{} {} ({}%) in {secs:.1} s, {rate:.1}/s",
                        l.job,
                        l.done,
                        l.total,
                        l.unit,
                        l.percent()
                    ));
                }
            }
        }
    }
}

impl Lines {
    fn percent(&self) -> u64 {
        self.done
            .saturating_mul(100)
            .checked_div(self.total)
            .unwrap_or(100)
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let eta = if rate > 0.0 {
            format!("{:.0}s", self.total.saturating_sub(self.done) as f64 / rate)
        } else {
            "?".to_owned()
        };
        format!(
            "{}: {}/{} {} ({}%), {rate:.1}/s, ETA {eta}",
            self.job,
            self.done,
            self.total,
            self.unit,
            self.percent()
        )
    }
}

/// A job whose size is not known in advance (a replay in one transaction): a spinner with
/// the elapsed time on a terminal, a line at the start and one at the end otherwise.
pub struct Spinner {
    job: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Spinner {
    /// Starts showing `job` doing `what`.
    pub fn new(job: &str, what: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::with_template(&format!("{{spinner}} {job}: {what} ({{elapsed}})"))
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            write_line(&format!("{job}: {what}"));
            None
        };
        Self {
            job: job.to_owned(),
            bar,
            started: Instant::now(),
        }
    }

    /// The job is over: `summary` says what it did.
    pub fn finish(&self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        write_line(&format!(
            "{}: {summary} in {:.1} s",
            self.job,
            self.started.elapsed().as_secs_f64()
        ));
    }
}

fn write_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_give_count_rate_and_eta() {
        let progress = Progress::lines("import", "lines", 20, Duration::from_secs(3600));
        for _ in 0..5 {
            progress.inc(1);
        }
        if let Inner::Lines(lines) = &progress.inner {
            let l = lines.lock().unwrap();
            let line = l.line();
            assert!(line.starts_with("import: 5/20 lines (25%), "), "{line}");
            assert!(line.contains("/s, ETA "), "{line}");
            assert_eq!(l.last_tenth, 2, "a line at each tenth");
        }
        progress.finish();
    }
}
