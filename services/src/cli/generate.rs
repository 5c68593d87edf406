//! Generated load in the scenario vocabulary: copies of the shipped cohort under new ids.
//!
//! Copy `n` of cohort-2025 renames every id it owns (`cohort-2025` → `cohort-g<n>`, learners
//! `l25-…` → `g<n>-l25-…`, sessions `s25-…` → `g<n>-s25-…`, field studies `fs25-…` →
//! `g<n>-fs25-…`, programme `cisdcp` → `cisdcp-g<n>`, command ids prefixed with `g<n>-`), so
//! copies are independent and each is a realistic year: sessions, attendance, corrections and
//! the field studies' revisions.

use crate::cli::demo::COHORT_2025;

/// The JSON Lines of cohort copy `n` (203 commands, in order).
pub fn cohort(n: usize) -> String {
    let g = format!("g{n}");
    COHORT_2025
        .replace("\"cohort-2025-c", &format!("\"{g}-c"))
        .replace("cohort-2025", &format!("cohort-{g}"))
        .replace("\"l25-", &format!("\"{g}-l25-"))
        .replace("\"s25-", &format!("\"{g}-s25-"))
        .replace("\"fs25-", &format!("\"{g}-fs25-"))
        .replace("\"cisdcp\"", &format!("\"cisdcp-{g}\""))
}

/// Copies `1..=count`, each as its own list of lines (keep each list in order; lists may be
/// sent concurrently).
pub fn cohorts(count: usize) -> Vec<Vec<String>> {
    (1..=count)
        .map(|n| cohort(n).lines().map(str::to_owned).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_rename_every_owned_id() {
        let copy = cohort(7);
        assert_eq!(copy.lines().count(), 203);
        for old in [
            "\"cohort-2025\"",
            "\"l25-01\"",
            "\"s25-001\"",
            "\"fs25-a\"",
            "\"cisdcp\"",
            "\"cohort-2025-c0001\"",
        ] {
            assert!(!copy.contains(old), "{old} left in the copy");
        }
        assert!(
            copy.contains("\"cohort-g7\"")
                && copy.contains("\"g7-l25-01\"")
                && copy.contains("\"g7-c0001\"")
        );
        assert_ne!(cohort(1), cohort(2));
    }
}
