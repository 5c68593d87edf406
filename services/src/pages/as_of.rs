//! The as-of control of the pages: a date and time (Europe/Paris) on one of the two clocks
//! (as it happened: `occurred_at`; as recorded: `recorded_at`), or a global position; the
//! query `?date=YYYY-MM-DD&heure=HH:MM&horloge=occurred|recorded` or `?position=N` (the API's
//! `as_of`, `as_of_occurred` and `as_of_position` work too), so a view can be bookmarked.

use super::{fr, param};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use fieldtrail_journal::audit::Cut;
use maud::{html, Markup};

/// The as-of control's values, as given in the query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `HH:MM`.
    pub heure: String,
    /// `occurred` or `recorded`.
    pub horloge: String,
    /// A global position.
    pub position: String,
}

/// The cut the query asks for (`None`: now), and the control's values to show again.
///
/// # Errors
/// A French sentence naming the bad field.
pub fn cut(params: &[(String, String)]) -> Result<(Option<Cut>, Control), String> {
    let control = Control {
        date: param(params, "date").unwrap_or_default().to_owned(),
        heure: param(params, "heure").unwrap_or_default().to_owned(),
        horloge: param(params, "horloge").unwrap_or("occurred").to_owned(),
        position: param(params, "position").unwrap_or_default().to_owned(),
    };
    if !control.position.is_empty() {
        let p = crate::audit::parse_position(&control.position).map_err(|_| {
            format!(
                "position : un entier positif est attendu, pas « {} ».",
                control.position
            )
        })?;
        return Ok((Some(Cut::Position(p)), control));
    }
    if !control.date.is_empty() {
        let date = NaiveDate::parse_from_str(&control.date, "%Y-%m-%d").map_err(|_| {
            format!(
                "date : une date AAAA-MM-JJ est attendue, pas « {} ».",
                control.date
            )
        })?;
        let time = if control.heure.is_empty() {
            NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default()
        } else {
            NaiveTime::parse_from_str(&control.heure, "%H:%M").map_err(|_| {
                format!(
                    "heure : une heure HH:MM est attendue, pas « {} ».",
                    control.heure
                )
            })?
        };
        let instant: DateTime<Utc> = Paris
            .from_local_datetime(&date.and_time(time))
            .earliest()
            .ok_or_else(|| {
                "heure : cette heure n'existe pas à Paris ce jour-là (changement d'heure)."
                    .to_owned()
            })?
            .with_timezone(&Utc);
        let cut = match control.horloge.as_str() {
            "occurred" => Cut::Occurred(instant),
            "recorded" => Cut::Recorded(instant),
            other => {
                return Err(format!(
                    "horloge : « occurred » ou « recorded » est attendu, pas « {other} »."
                ))
            }
        };
        return Ok((Some(cut), control));
    }
    let api = crate::audit::cut_from_params(
        param(params, "as_of"),
        param(params, "as_of_position"),
        param(params, "as_of_occurred"),
    )?;
    Ok((api, control))
}

/// The cut in words, e.g. "Telle qu'elle s'était passée au lundi 3 novembre 2025 à 23:59".
pub fn describe(cut: Cut) -> String {
    match cut {
        Cut::Position(p) => format!("Telle qu'à la position {p} du journal"),
        Cut::Occurred(t) => format!("Telle qu'elle s'était passée au {}", fr::datetime(&t)),
        Cut::Recorded(t) => format!("Telle qu'elle était enregistrée au {}", fr::datetime(&t)),
    }
}

/// The control: a GET form to `action`, so that the state is in the URL.
pub fn form(action: &str, legend: &str, control: &Control, past: bool) -> Markup {
    let recorded = control.horloge == "recorded";
    html! {
        form.as-of-control method="get" action=(action) {
            fieldset {
                legend { (legend) }
                p {
                    label for="asof-date" { "Date " }
                    input #asof-date type="date" name="date" value=(control.date);
                    " "
                    label for="asof-heure" { "heure (Paris) " }
                    input #asof-heure type="time" name="heure" value=(control.heure);
                }
                fieldset.clocks {
                    legend { "Horloge" }
                    label { input #horloge-occurred type="radio" name="horloge" value="occurred" checked[!recorded]; " telle que cela s'est passé (horloge du monde)" }
                    label { input #horloge-recorded type="radio" name="horloge" value="recorded" checked[recorded]; " telle que c'était enregistré (horloge du système)" }
                }
                p {
                    label for="asof-position" { "ou position du journal " }
                    input #asof-position type="number" min="0" name="position" value=(control.position);
                }
                p {
                    button type="submit" { "Afficher" }
                    @if past { " " a href=(action) { "Revenir à aujourd'hui" } }
                }
            }
        }
    }
}
