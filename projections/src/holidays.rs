//! French public holidays ("jours fériés"), computed: no table to keep up to date.
//!
//! Source: Code du travail, article L3133-1, which lists the legal holidays: 1 January, Easter
//! Monday, 1 May, 8 May, Ascension Day, Whit Monday, 14 July, Assumption (15 August), All
//! Saints' Day (1 November), 11 November and Christmas Day (25 December). The movable ones
//! follow Easter Sunday (Gregorian computus): Easter Monday = Easter + 1 day, Ascension =
//! Easter + 39 days, Whit Monday = Easter + 50 days. The local holidays of Alsace-Moselle
//! (Good Friday, 26 December: article L3134-13) are not included.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm, also known as
/// Meeus/Jones/Butcher). `None` for a year chrono cannot represent.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The French public holidays of `year` (L3133-1), in calendar order, with their French
/// names.
pub fn public_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let fixed = |month: u32, day: u32, name: &'static str| {
        NaiveDate::from_ymd_opt(year, month, day).map(|d| (d, name))
    };
    let mut days: Vec<(NaiveDate, &'static str)> = [
        fixed(1, 1, "Jour de l'an"),
        fixed(5, 1, "Fête du Travail"),
        fixed(5, 8, "Victoire 1945"),
        fixed(7, 14, "Fête nationale"),
        fixed(8, 15, "Assomption"),
        fixed(11, 1, "Toussaint"),
        fixed(11, 11, "Armistice 1918"),
        fixed(12, 25, "Noël"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(easter) = easter_sunday(year) {
        days.push((easter + Duration::days(1), "Lundi de Pâques"));
        days.push((easter + Duration::days(39), "Ascension"));
        days.push((easter + Duration::days(50), "Lundi de Pentecôte"));
    }
    days.sort();
    days
}

/// The name of the French public holiday on `date`, if it is one.
pub fn public_holiday(date: NaiveDate) -> Option<&'static str> {
    public_holidays(date.year())
        .into_iter()
        .find(|(d, _)| *d == date)
        .map(|(_, name)| name)
}

/// Whether `date` is a Sunday.
pub fn is_sunday(date: NaiveDate) -> bool {
    date.weekday() == Weekday::Sun
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn easter_matches_known_dates() {
        for (year, easter) in [
            (1961, "1961-04-02"),
            (2000, "2000-04-23"),
            (2008, "2008-03-23"),
            (2011, "2011-04-24"),
            (2019, "2019-04-21"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2038, "2038-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter_sunday(year), Some(date(easter)), "{year}");
        }
    }

    #[test]
    fn the_eleven_holidays_of_2026() {
        let got: Vec<String> = public_holidays(2026)
            .iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "2026-01-01",
                "2026-04-06",
                "2026-05-01",
                "2026-05-08",
                "2026-05-14",
                "2026-05-25",
                "2026-07-14",
                "2026-08-15",
                "2026-11-01",
                "2026-11-11",
                "2026-12-25"
            ]
        );
        assert_eq!(public_holiday(date("2026-05-14")), Some("Ascension"));
        assert_eq!(
            public_holiday(date("2025-06-09")),
            Some("Lundi de Pentecôte")
        );
        assert_eq!(public_holiday(date("2026-05-15")), None);
        assert!(is_sunday(date("2025-09-14")));
        assert!(!is_sunday(date("2025-09-15")));
    }
}
