//! Logging: readable on a terminal, JSON otherwise; filtered by `RUST_LOG` (default `info`).

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, writing to stderr (stdout carries the documents).
/// Calling it twice is harmless.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn,refinery_core=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}

/// Installs the global subscriber with the configured `filter` (`RUST_LOG` syntax; `log.filter`)
/// and `format` (`log.format`): `auto` is readable text on a terminal and JSON lines otherwise.
/// Each command runs in a `command` span carrying `command_id`, `command`, `stream` and
/// `outcome`. Calling it twice is harmless.
pub fn init_with(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter)
        .unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
