//! `fieldtrail demo`: the shipped cohort end to end, with a readable summary.

use crate::read;
use fieldtrail_journal::Journal;
use serde_json::Value;
use std::fmt::Write as _;

/// The demo cohort shipped with fieldtrail: a year of the certificate programme (203 commands).
pub const COHORT_2025: &str = include_str!("../../../data/cohort-2025.jsonl");

fn num(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A readable summary of every cohort's timetable, its learners' transcripts and its field
/// studies' histories, from the stored read models.
///
/// # Errors
/// When PostgreSQL cannot be read.
pub async fn summary(journal: &Journal) -> anyhow::Result<String> {
    let docs = read::all_documents(journal).await?;
    let mut out = String::new();
    for (_, key, timetable) in docs.iter().filter(|d| d.0 == read::TIMETABLE) {
        let _ = writeln!(
            out,
            "Cohort {key}: half-days per module (planned / scheduled / held)"
        );
        for m in list(timetable, "modules") {
            let _ = writeln!(
                out,
                "  {:<6} {:>4} / {:>4} / {:>4}",
                text(m, "module_id"),
                num(m, "planned_half_days"),
                num(m, "scheduled_half_days"),
                num(m, "held_half_days")
            );
        }
        let sessions = list(timetable, "sessions");
        let held = sessions
            .iter()
            .filter(|s| text(s, "status") == "held")
            .count();
        let cancelled = sessions
            .iter()
            .filter(|s| text(s, "status") == "cancelled")
            .count();
        let moved = sessions
            .iter()
            .filter(|s| !list(s, "previous_slots").is_empty())
            .count();
        let _ = writeln!(
            out,
            "  {} sessions: {held} held, {cancelled} cancelled, {moved} rescheduled",
            sessions.len()
        );
        let _ = writeln!(out, "\n  Learners: attended / held half-days (excused, absent); field study; defences; certificate");
        for (_, _, t) in docs
            .iter()
            .filter(|d| d.0 == read::TRANSCRIPT && d.1.starts_with(&format!("{key}/")))
        {
            let (mut held, mut attended, mut excused, mut absent) = (0, 0, 0, 0);
            for m in list(t, "modules") {
                held += num(m, "held_half_days");
                attended += num(m, "attended_half_days");
                excused += num(m, "excused_half_days");
                absent += num(m, "absent_half_days");
            }
            let defences: Vec<String> = list(t, "defences")
                .iter()
                .map(|d| format!("{} {}", text(d, "defence_id"), text(d, "result")))
                .collect();
            let deis = if t
                .get("deis_credit")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                " + DEIS credit"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<8} {:<9} {:>3} / {:>3} ({excused}, {absent})  {:<8} {:<28} {}{deis}",
                text(t, "learner_id"),
                text(t, "status"),
                attended,
                held,
                text(t, "field_study_id"),
                if defences.is_empty() {
                    "-".to_owned()
                } else {
                    defences.join(", ")
                },
                text(t, "certificate_awarded_on"),
            );
        }
        let _ = writeln!(out);
    }
    for (_, key, h) in docs.iter().filter(|d| d.0 == read::HISTORY) {
        let members: Vec<&str> = list(h, "members")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            out,
            "Field study {key} ({}): members {}",
            text(h, "cohort_id"),
            members.join(", ")
        );
        let commission = h.get("commission").cloned().unwrap_or(Value::Null);
        let _ = writeln!(
            out,
            "  commission: latest version {}, agreed version {}",
            commission
                .get("latest_version")
                .map_or("-".to_owned(), Value::to_string),
            commission
                .get("agreed_version")
                .map_or("-".to_owned(), Value::to_string)
        );
        for v in list(&commission, "versions") {
            let _ = writeln!(
                out,
                "    v{} {}",
                num(v, "version"),
                v.get("reason")
                    .and_then(Value::as_str)
                    .map_or("(first negotiation)".to_owned(), |r| format!(
                        "renegotiated: {r}"
                    ))
            );
        }
        for hy in list(h, "hypotheses") {
            let _ = writeln!(
                out,
                "  hypothesis {}: {} ({} text(s))",
                text(hy, "hypothesis_id"),
                text(hy, "status"),
                list(hy, "texts").len()
            );
        }
        let _ = writeln!(
            out,
            "  productions: {}; journal entries: {}",
            list(h, "productions").len(),
            list(h, "entries").len()
        );
    }
    Ok(out)
}
