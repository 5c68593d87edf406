//! The configuration layers, lowest first: built-in defaults, a TOML file, environment
//! variables, command-line flags. Each setting is one field of [`Settings`].
//!
//! The file is `--config PATH`, else `$FIELDTRAIL_CONFIG`, else [`DEFAULT_PATH`] when it exists
//! (no file at all is fine). Its values become the flags' defaults before clap parses the
//! command line, so clap itself applies "flag, then environment, then default". Every value is
//! then checked ([`validate`]); an error names the setting, where its value came from, and why.
//! `fieldtrail config show` prints the outcome ([`show`]) with passwords hidden.

use crate::config::Settings;
use clap::parser::ValueSource;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file read when neither `--config` nor `FIELDTRAIL_CONFIG` names one (only if it exists).
pub const DEFAULT_PATH: &str = "/etc/fieldtrail/fieldtrail.toml";

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "FIELDTRAIL_CONFIG";

/// What a setting's value must be, in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A non-negative integer.
    Count,
    /// `true` or `false`.
    Bool,
    /// `host:port` with a literal IP address.
    Address,
    /// One of a few words.
    Choice(&'static [&'static str]),
}

/// One setting: where it lives in the file, its flag (clap id) and environment variable.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// `[section]` of the file.
    pub section: &'static str,
    /// Key inside the section.
    pub key: &'static str,
    /// The clap id (the field of [`Settings`]); the flag is `--` + the id with `-` for `_`.
    pub id: &'static str,
    /// The environment variable clap reads.
    pub env: &'static str,
    /// A second environment variable, taking precedence over `env` when set.
    pub alias: Option<&'static str>,
    /// Whether the value may hold a password (hidden by `config show`).
    pub secret: bool,
    /// What the file must give.
    pub kind: Kind,
}

const fn entry(
    section: &'static str,
    key: &'static str,
    id: &'static str,
    env: &'static str,
    kind: Kind,
) -> Entry {
    Entry {
        section,
        key,
        id,
        env,
        alias: None,
        secret: false,
        kind,
    }
}

const fn url(
    section: &'static str,
    id: &'static str,
    env: &'static str,
    alias: &'static str,
) -> Entry {
    Entry {
        section,
        key: "url",
        id,
        env,
        alias: Some(alias),
        secret: true,
        kind: Kind::Text,
    }
}

/// Every setting, in the order `config show` and the sample file use.
pub const ENTRIES: [Entry; 21] = [
    url(
        "database",
        "database_url",
        "DATABASE_URL",
        "FIELDTRAIL_DATABASE_URL",
    ),
    entry(
        "database",
        "pool_size",
        "pool_size",
        "FIELDTRAIL_POOL_SIZE",
        Kind::Count,
    ),
    url("nats", "nats_url", "NATS_URL", "FIELDTRAIL_NATS_URL"),
    entry(
        "nats",
        "stream",
        "nats_stream",
        "FIELDTRAIL_NATS_STREAM",
        Kind::Text,
    ),
    entry(
        "nats",
        "subject_prefix",
        "subject_prefix",
        "FIELDTRAIL_SUBJECT_PREFIX",
        Kind::Text,
    ),
    entry(
        "nats",
        "dedup_window_secs",
        "dedup_window_secs",
        "FIELDTRAIL_DEDUP_WINDOW_SECS",
        Kind::Count,
    ),
    entry(
        "nats",
        "replicas",
        "nats_replicas",
        "FIELDTRAIL_NATS_REPLICAS",
        Kind::Count,
    ),
    entry("nats", "relay", "relay", "FIELDTRAIL_RELAY", Kind::Bool),
    entry(
        "http",
        "listen",
        "listen",
        "FIELDTRAIL_LISTEN",
        Kind::Address,
    ),
    entry(
        "http",
        "max_body_bytes",
        "max_body_bytes",
        "FIELDTRAIL_MAX_BODY_BYTES",
        Kind::Count,
    ),
    entry(
        "http",
        "request_timeout_secs",
        "request_timeout_secs",
        "FIELDTRAIL_REQUEST_TIMEOUT_SECS",
        Kind::Count,
    ),
    entry(
        "health",
        "ready_max_lag_events",
        "ready_max_lag_events",
        "FIELDTRAIL_READY_MAX_LAG_EVENTS",
        Kind::Count,
    ),
    entry(
        "health",
        "ready_max_lag_secs",
        "ready_max_lag_secs",
        "FIELDTRAIL_READY_MAX_LAG_SECS",
        Kind::Count,
    ),
    entry(
        "shutdown",
        "timeout_secs",
        "shutdown_timeout_secs",
        "FIELDTRAIL_SHUTDOWN_TIMEOUT_SECS",
        Kind::Count,
    ),
    Entry {
        section: "log",
        key: "filter",
        id: "log",
        env: "RUST_LOG",
        alias: Some("FIELDTRAIL_LOG"),
        secret: false,
        kind: Kind::Text,
    },
    entry(
        "log",
        "format",
        "log_format",
        "FIELDTRAIL_LOG_FORMAT",
        Kind::Choice(&["auto", "json", "text"]),
    ),
    entry(
        "progress",
        "interval_secs",
        "progress_interval_secs",
        "FIELDTRAIL_PROGRESS_INTERVAL_SECS",
        Kind::Count,
    ),
    entry(
        "signing",
        "keys_dir",
        "keys_dir",
        "FIELDTRAIL_KEYS_DIR",
        Kind::Text,
    ),
    entry(
        "signing",
        "root",
        "signing_root",
        "FIELDTRAIL_SIGNING_ROOT",
        Kind::Text,
    ),
    entry(
        "signing",
        "digest_interval_secs",
        "digest_interval_secs",
        "FIELDTRAIL_DIGEST_INTERVAL_SECS",
        Kind::Count,
    ),
    // Kept last: not part of `Settings` but an argument of `fieldtrail import`.
    entry(
        "import",
        "operator",
        "operator",
        "FIELDTRAIL_OPERATOR",
        Kind::Text,
    ),
];

/// The settings that are fields of [`Settings`] (every entry but the last).
pub fn settings_entries() -> &'static [Entry] {
    &ENTRIES[..ENTRIES.len() - 1]
}

impl Entry {
    /// `section.key`, as errors name it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    /// The environment variable in force: the alias when it is set, else `env`.
    pub fn env_in_force(&self) -> &'static str {
        match self.alias {
            Some(alias) if std::env::var_os(alias).is_some_and(|v| !v.is_empty()) => alias,
            _ => self.env,
        }
    }

    /// The flag, `--database-url`.
    pub fn flag(&self) -> String {
        format!("--{}", self.id.replace('_', "-"))
    }
}

/// A configuration that cannot be used: the message names the setting (or the file).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The configuration file's values, as strings for clap, by clap id.
#[derive(Clone, Debug, Default)]
pub struct FileLayer {
    /// The file read.
    pub path: PathBuf,
    values: BTreeMap<&'static str, String>,
}

impl FileLayer {
    /// Whether the file gives the setting `id`.
    pub fn gives(&self, id: &str) -> bool {
        self.values.contains_key(id)
    }
}

/// Where the configuration file is: `--config PATH` (or `--config=PATH`) among `args`, else
/// `$FIELDTRAIL_CONFIG`, else [`DEFAULT_PATH`] if it exists. `None`: no file.
pub fn locate(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let default = Path::new(DEFAULT_PATH);
    default.exists().then(|| default.to_owned())
}

/// Reads and checks the file at `path`: every key known, every value of its kind.
///
/// # Errors
/// A one-line [`ConfigError`] naming the file and the setting.
pub fn read_file(path: &Path) -> Result<FileLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "configuration file {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    parse_file(path, &text)
}

/// As [`read_file`], from the file's text.
///
/// # Errors
/// As [`read_file`].
pub fn parse_file(path: &Path, text: &str) -> Result<FileLayer, ConfigError> {
    let shown = path.display();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
        let message: Vec<&str> = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        ConfigError(format!(
            "configuration file {shown}{at}: {}",
            message.join("; ")
        ))
    })?;
    let mut layer = FileLayer {
        path: path.to_owned(),
        values: BTreeMap::new(),
    };
    let sections: Vec<&str> = ENTRIES
        .iter()
        .map(|e| e.section)
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    for (section, value) in &table {
        let Some(keys) = value.as_table() else {
            return Err(ConfigError(format!(
                "configuration file {shown}: `{section}` must be a [section] (known sections: {})",
                sections.join(", ")
            )));
        };
        if !sections.contains(&section.as_str()) {
            return Err(ConfigError(format!(
                "configuration file {shown}: unknown section [{section}] (known sections: {})",
                sections.join(", ")
            )));
        }
        for (key, value) in keys {
            let Some(entry) = ENTRIES
                .iter()
                .find(|e| e.section == section && e.key == key)
            else {
                let known: Vec<&str> = ENTRIES
                    .iter()
                    .filter(|e| e.section == section)
                    .map(|e| e.key)
                    .collect();
                return Err(ConfigError(format!(
                    "configuration file {shown}: unknown setting {section}.{key} (known in [{section}]: {})",
                    known.join(", ")
                )));
            };
            let text = file_value(entry, value).map_err(|why| {
                ConfigError(format!(
                    "configuration file {shown}: {}: {why}",
                    entry.name()
                ))
            })?;
            layer.values.insert(entry.id, text);
        }
    }
    Ok(layer)
}

fn file_value(entry: &Entry, value: &toml::Value) -> Result<String, String> {
    let found = || format!("found {} {value}", value.type_str());
    match entry.kind {
        Kind::Text => value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("must be a string, {}", found())),
        Kind::Count => match value.as_integer() {
            Some(n) if n >= 0 => Ok(n.to_string()),
            _ => Err(format!("must be a whole number, zero or more, {}", found())),
        },
        Kind::Bool => value
            .as_bool()
            .map(|b| b.to_string())
            .ok_or_else(|| format!("must be true or false, {}", found())),
        Kind::Address => match value.as_str() {
            Some(s) => s.parse::<SocketAddr>().map(|a| a.to_string()).map_err(|e| {
                format!("must be an address such as \"127.0.0.1:8080\" ({e}), found {s:?}")
            }),
            None => Err(format!(
                "must be a string such as \"127.0.0.1:8080\", {}",
                found()
            )),
        },
        Kind::Choice(words) => match value.as_str() {
            Some(s) if words.contains(&s) => Ok(s.to_owned()),
            _ => Err(format!("must be one of {}, {}", words.join(", "), found())),
        },
    }
}

/// The command line with the file's values as the flags' defaults, and each setting reading
/// its alias environment variable when that is set.
pub fn apply(mut command: clap::Command, file: Option<&FileLayer>) -> clap::Command {
    let known: Vec<String> = command
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for entry in &ENTRIES {
        let value = file.and_then(|f| f.values.get(entry.id)).cloned();
        let alias = entry.alias.filter(|_| entry.env_in_force() != entry.env);
        if value.is_none() && alias.is_none() {
            continue;
        }
        let edit = |arg: clap::Arg| {
            let arg = match &value {
                Some(v) => arg.default_value(v.clone()),
                None => arg,
            };
            match alias {
                Some(alias) => arg.env(alias),
                None => arg,
            }
        };
        if known.iter().any(|k| k == entry.id) {
            command = command.mut_arg(entry.id, edit);
        } else {
            // A subcommand's own argument (`import --operator`).
            for name in &subcommands {
                let has = command
                    .find_subcommand(name)
                    .is_some_and(|c| c.get_arguments().any(|a| a.get_id() == entry.id));
                if has {
                    command = command.mut_subcommand(name, |c| c.mut_arg(entry.id, edit));
                }
            }
        }
    }
    command
}

/// A clap error about a setting's value (from a flag or an environment variable) as one
/// line naming the setting; `None` for other errors (help, usage), which clap prints itself.
pub fn value_error(error: &clap::Error) -> Option<ConfigError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => return None,
    };
    let entry = ENTRIES
        .iter()
        .find(|e| arg == e.flag() || arg.starts_with(&format!("{} ", e.flag())))?;
    let rendered = error.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ");
    let valid = match error.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(values)) => format!(" (possible values: {})", values.join(", ")),
        _ => String::new(),
    };
    Some(ConfigError(format!(
        "invalid configuration: {} (flag {}, env {}): {}{valid}",
        entry.name(),
        entry.flag(),
        entry.env_in_force(),
        hide_secrets(first)
    )))
}

/// Where a setting's effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Where each setting of [`Settings`] came from, by clap id.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    by_id: BTreeMap<&'static str, Source>,
}

impl Sources {
    /// The sources of a parse of the command line built by [`apply`].
    pub fn of(matches: &clap::ArgMatches, file: Option<&FileLayer>) -> Self {
        let mut by_id = BTreeMap::new();
        for entry in settings_entries() {
            let source = match find_source(matches, entry.id) {
                Some(ValueSource::CommandLine) => Source::Flag(entry.flag()),
                Some(ValueSource::EnvVariable) => Source::Env(entry.env_in_force()),
                _ => match file {
                    Some(f) if f.gives(entry.id) => Source::File(f.path.clone()),
                    _ => Source::Default,
                },
            };
            by_id.insert(entry.id, source);
        }
        Self {
            file: file.map(|f| f.path.clone()),
            by_id,
        }
    }

    /// Where the setting `id` came from.
    pub fn get(&self, id: &str) -> Source {
        self.by_id.get(id).cloned().unwrap_or(Source::Default)
    }
}

/// The value source of a global argument, looked for at the top and in the subcommand given.
fn find_source(matches: &clap::ArgMatches, id: &str) -> Option<ValueSource> {
    let mut best = matches
        .try_get_raw(id)
        .ok()
        .flatten()
        .and(matches.value_source(id));
    let mut current = matches;
    while let Some((_, sub)) = current.subcommand() {
        if let Some(source) = sub.try_get_raw(id).ok().flatten().and(sub.value_source(id)) {
            best = Some(best.map_or(source, |b| b.max(source)));
        }
        current = sub;
    }
    best
}

/// The effective value of the setting `id`, as TOML.
pub fn value(settings: &Settings, id: &str) -> toml::Value {
    let count = |n: u64| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let size = |n: usize| count(u64::try_from(n).unwrap_or(u64::MAX));
    match id {
        "database_url" => toml::Value::String(settings.database_url.clone()),
        "pool_size" => size(settings.pool_size),
        "nats_url" => toml::Value::String(settings.nats_url.clone()),
        "nats_stream" => toml::Value::String(settings.nats_stream.clone()),
        "subject_prefix" => toml::Value::String(settings.subject_prefix.clone()),
        "dedup_window_secs" => count(settings.dedup_window_secs),
        "nats_replicas" => size(settings.nats_replicas),
        "relay" => toml::Value::Boolean(settings.relay),
        "listen" => toml::Value::String(settings.listen.to_string()),
        "max_body_bytes" => size(settings.max_body_bytes),
        "request_timeout_secs" => count(settings.request_timeout_secs),
        "ready_max_lag_events" => count(settings.ready_max_lag_events),
        "ready_max_lag_secs" => count(settings.ready_max_lag_secs),
        "shutdown_timeout_secs" => count(settings.shutdown_timeout_secs),
        "log" => toml::Value::String(settings.log.clone()),
        "log_format" => toml::Value::String(settings.log_format.as_str().to_owned()),
        "progress_interval_secs" => count(settings.progress_interval_secs),
        "keys_dir" => toml::Value::String(settings.keys_dir.clone()),
        "signing_root" => toml::Value::String(settings.signing_root.clone()),
        "digest_interval_secs" => count(settings.digest_interval_secs),
        _ => toml::Value::String(String::new()),
    }
}

/// Checks every setting; the error names the first wrong one, where its value came from
/// (`sources`), and what is expected.
///
/// # Errors
/// A one-line [`ConfigError`].
pub fn validate(settings: &Settings, sources: &Sources) -> Result<(), ConfigError> {
    for entry in settings_entries() {
        if let Err(why) = check(settings, entry.id) {
            let shown = match value(settings, entry.id) {
                toml::Value::String(s) if entry.secret => {
                    toml::Value::String(hide_secrets(&s)).to_string()
                }
                v => v.to_string(),
            };
            return Err(ConfigError(format!(
                "invalid configuration: {} = {shown} (from {}; flag {}, env {}): {why}",
                entry.name(),
                sources.get(entry.id),
                entry.flag(),
                entry.env
            )));
        }
    }
    Ok(())
}

fn check(s: &Settings, id: &str) -> Result<(), String> {
    match id {
        "database_url" => {
            let url = &s.database_url;
            if let Some(path) = fieldtrail_journal::sqlite_path(url) {
                return fieldtrail_journal::check_sqlite_path(path).map_err(|e| e.to_string());
            }
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err("must be a sqlite://PATH or postgres:// URL".to_owned());
            }
            url.parse::<tokio_postgres::Config>()
                .map(|_| ())
                .map_err(|e| format!("does not parse: {}", hide_secrets(&e.to_string())))
        }
        "pool_size" if s.pool_size < 2 => {
            Err("must be at least 2 (a server uses several connections)".to_owned())
        }
        "nats_url" if s.nats_url.is_empty() => Ok(()),
        "nats_url" => {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|p| s.nats_url.starts_with(p));
            let host = s
                .nats_url
                .split_once("://")
                .map_or("", |(_, rest)| rest.rsplit('@').next().unwrap_or(""));
            if !scheme_ok || host.is_empty() {
                Err("must be a URL such as nats://host:4222 (nats, tls, ws or wss)".to_owned())
            } else {
                Ok(())
            }
        }
        "nats_stream" => {
            let bad = s
                .nats_stream
                .chars()
                .find(|c| c.is_whitespace() || ".*>/\\".contains(*c));
            match bad {
                _ if s.nats_stream.is_empty() => Err("must not be empty".to_owned()),
                Some(c) => Err(format!("a JetStream stream name cannot contain {c:?}")),
                None => Ok(()),
            }
        }
        "subject_prefix" => {
            let p = &s.subject_prefix;
            if p.is_empty() || p.split('.').any(str::is_empty) {
                Err("must be one or more dot-separated tokens, none empty".to_owned())
            } else if let Some(c) = p.chars().find(|c| c.is_whitespace() || "*>".contains(*c)) {
                Err(format!("a subject token cannot contain {c:?}"))
            } else {
                Ok(())
            }
        }
        "nats_replicas" if !(1..=5).contains(&s.nats_replicas) => {
            Err("must be between 1 and 5 (JetStream's limit)".to_owned())
        }
        "max_body_bytes" if s.max_body_bytes < 1024 => {
            Err("must be at least 1024 bytes".to_owned())
        }
        "request_timeout_secs" if s.request_timeout_secs == 0 => {
            Err("must be at least 1 second".to_owned())
        }
        "shutdown_timeout_secs" if s.shutdown_timeout_secs == 0 => {
            Err("must be at least 1 second".to_owned())
        }
        "progress_interval_secs" if s.progress_interval_secs == 0 => {
            Err("must be at least 1 second".to_owned())
        }
        "keys_dir" if s.keys_dir.trim().is_empty() => Err("must name a directory".to_owned()),
        "signing_root"
            if !s.signing_roots().iter().all(|r| {
                r.len() == 43
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }) =>
        {
            Err("must be key ids (43 base64url characters, as `fieldtrail keys list` prints them), comma-separated".to_owned())
        }
        "log" => tracing_subscriber::EnvFilter::try_new(&s.log)
            .map(|_| ())
            .map_err(|e| format!("not a RUST_LOG filter: {e}")),
        _ => Ok(()),
    }
}

/// `text` with every password hidden: `scheme://user:***@host`, `password=***`.
pub fn hide_secrets(text: &str) -> String {
    let mut out = text.to_owned();
    if let Some((scheme, rest)) = out.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                out = format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    let mut hidden = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let (before, after) = rest.split_at(i + "password=".len());
        hidden.push_str(before);
        hidden.push_str("***");
        let end = after.find(['&', ' ']).unwrap_or(after.len());
        rest = &after[end..];
    }
    hidden.push_str(rest);
    hidden
}

/// The effective configuration as a TOML document, each value commented with its source,
/// passwords hidden.
pub fn show(settings: &Settings, sources: &Sources) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# fieldtrail: effective configuration");
    let _ = writeln!(
        out,
        "# layers: defaults < file ({}) < environment < flags",
        sources.file.as_ref().map_or_else(
            || format!("none; default path {DEFAULT_PATH}"),
            |p| p.display().to_string()
        )
    );
    let mut section = "";
    for entry in settings_entries() {
        if entry.section != section {
            section = entry.section;
            let _ = writeln!(out, "\n[{section}]");
        }
        let shown = match value(settings, entry.id) {
            toml::Value::String(s) if entry.secret => toml::Value::String(hide_secrets(&s)),
            v => v,
        };
        let _ = writeln!(out, "{} = {shown}  # {}", entry.key, sources.get(entry.id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            hide_secrets("postgres://ft:s3cr/t@db:5432/fieldtrail"),
            "postgres://ft:***@db:5432/fieldtrail"
        );
        assert_eq!(
            hide_secrets("nats://relay:p@ss@nats-1:4222"),
            "nats://relay:***@nats-1:4222"
        );
        assert_eq!(
            hide_secrets("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            hide_secrets("postgres://db/x?user=a&password=b&sslmode=disable"),
            "postgres://db/x?user=a&password=***&sslmode=disable"
        );
        assert_eq!(
            hide_secrets("host=db password=xyz user=a"),
            "host=db password=*** user=a"
        );
    }

    #[test]
    fn the_file_is_checked_key_by_key() {
        let path = Path::new("f.toml");
        let layer = parse_file(
            path,
            "[database]\npool_size = 4\n[http]\nlisten = \"0.0.0.0:80\"\n",
        )
        .unwrap();
        assert!(layer.gives("pool_size") && layer.gives("listen") && !layer.gives("database_url"));
        let e = parse_file(path, "[database]\npol_size = 4\n")
            .unwrap_err()
            .0;
        assert!(e.contains("unknown setting database.pol_size"), "{e}");
        let e = parse_file(path, "[database]\npool_size = \"4\"\n")
            .unwrap_err()
            .0;
        assert!(
            e.contains("database.pool_size: must be a whole number"),
            "{e}"
        );
        let e = parse_file(path, "[http]\nlisten = \"localhost\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("http.listen"), "{e}");
        let e = parse_file(path, "[nats\nurl = 1").unwrap_err().0;
        assert!(e.starts_with("configuration file f.toml line 1:"), "{e}");
        let e = parse_file(path, "[log]\nformat = \"xml\"\n").unwrap_err().0;
        assert!(
            e.contains("log.format: must be one of auto, json, text"),
            "{e}"
        );
    }

    #[test]
    fn every_setting_is_checked_by_name() {
        let mut s = Settings::new(
            "postgres://postgres@127.0.0.1/x",
            "nats://127.0.0.1:4222",
            "S",
            "p",
        );
        let sources = Sources::default();
        assert!(validate(&s, &sources).is_ok());
        s.pool_size = 1;
        let e = validate(&s, &sources).unwrap_err().0;
        assert!(e.starts_with("invalid configuration: database.pool_size = 1 (from default; flag --pool-size, env FIELDTRAIL_POOL_SIZE)"), "{e}");
        s.pool_size = 4;
        s.database_url = "mysql://u:pw@h/x".to_owned();
        let e = validate(&s, &sources).unwrap_err().0;
        assert!(
            e.contains("database.url = \"mysql://u:***@h/x\"") && !e.contains("pw"),
            "{e}"
        );
        s.database_url = "postgres://h/x".to_owned();
        s.nats_stream = "A.B".to_owned();
        assert!(validate(&s, &sources)
            .unwrap_err()
            .0
            .contains("nats.stream"));
    }
}
