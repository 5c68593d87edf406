//! How instants and dates are shown in the documents.

use chrono::{DateTime, SecondsFormat, SubsecRound, TimeZone, Utc};
use chrono_tz::Europe::Paris;

/// RFC 3339 in UTC with the `Z` suffix, at most microsecond precision:
/// `2025-09-15T07:00:00Z`, `2025-09-15T07:00:00.123456Z`.
pub(crate) fn utc<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    t.with_timezone(&Utc)
        .trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Europe/Paris wall time without offset: `2025-09-15T09:00:00`.
pub(crate) fn paris_local<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    t.with_timezone(&Paris)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Europe/Paris calendar date: `2026-06-26`.
pub(crate) fn paris_date<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    t.with_timezone(&Paris).format("%Y-%m-%d").to_string()
}
