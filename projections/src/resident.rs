//! Which cohort partitions a projector holds in memory, how many events each was folded
//! from, and which to forget first (least recently used).

use std::collections::HashMap;

/// The held partitions: cohort id → (the batch that last used it, events folded into it).
#[derive(Debug, Default)]
pub(crate) struct Resident {
    held: HashMap<String, (u64, u64)>,
    total: u64,
    batch: u64,
}

impl Resident {
    /// Whether the partition of `cohort` is held.
    pub fn holds(&self, cohort: &str) -> bool {
        self.held.contains_key(cohort)
    }

    /// Events folded into every held partition.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Marks `cohort` held and used by the current batch, `events` more events folded into it.
    pub fn used(&mut self, cohort: String, events: u64) {
        let entry = self.held.entry(cohort).or_insert((self.batch, 0));
        entry.0 = self.batch;
        entry.1 += events;
        self.total += events;
    }

    /// The partitions to forget so that at most `limit` events stay held, least recently used
    /// first; never one the current batch used. They are no longer held.
    pub fn over(&mut self, limit: u64) -> Vec<String> {
        if self.total <= limit {
            return Vec::new();
        }
        let mut candidates: Vec<(u64, String, u64)> = self
            .held
            .iter()
            .filter(|(_, (batch, _))| *batch != self.batch)
            .map(|(cohort, (batch, events))| (*batch, cohort.clone(), *events))
            .collect();
        candidates.sort();
        let mut forgotten = Vec::new();
        for (_, cohort, events) in candidates {
            if self.total <= limit {
                break;
            }
            self.held.remove(&cohort);
            self.total -= events;
            forgotten.push(cohort);
        }
        forgotten
    }

    /// Starts the next batch.
    pub fn next_batch(&mut self) {
        self.batch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::Resident;

    #[test]
    fn the_least_recently_used_partitions_go_first_and_never_the_current_batch() {
        let mut r = Resident::default();
        r.used("a".into(), 10);
        r.next_batch();
        r.used("b".into(), 10);
        r.next_batch();
        r.used("c".into(), 10);
        r.used("a".into(), 1);
        assert_eq!(r.total(), 31);
        // a was used again by this batch: b goes first, and a and c stay even over the limit.
        assert_eq!(r.over(15), vec!["b".to_owned()]);
        assert_eq!(r.total(), 21);
        assert!(r.holds("a") && r.holds("c") && !r.holds("b"));
        r.next_batch();
        assert_eq!(r.over(0), vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!(r.total(), 0);
    }
}
