//! Cohort summaries: a few numbers per cohort, computed from its [`CohortTrajectory`].

use super::milestones::{CohortTrajectory, MilestoneKind};
use fieldtrail_domain::command::DefenceResult;

/// Five numbers and the mean of a distribution of values.
///
/// Quartiles are interpolated linearly between order statistics (position `(n - 1) * p` of
/// the sorted values, as numpy's default and R's type 7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Distribution {
    /// How many values.
    pub count: u32,
    /// The smallest.
    pub min: f64,
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// The largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Distribution {
    /// The distribution of the finite values of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let at = |p: f64| -> f64 {
            let h = (n as f64 - 1.0) * p;
            let lo = h.floor() as usize;
            let hi = h.ceil() as usize;
            let (Some(&a), Some(&b)) = (sorted.get(lo), sorted.get(hi)) else {
                return f64::NAN;
            };
            a + (h - lo as f64) * (b - a)
        };
        Some(Self {
            count: u32::try_from(n).unwrap_or(u32::MAX),
            min: at(0.0),
            q1: at(0.25),
            median: at(0.5),
            q3: at(0.75),
            max: at(1.0),
            mean: sorted.iter().sum::<f64>() / n as f64,
        })
    }
}

/// The median of `values` (mean of the two middle values for an even count); `None` when
/// empty.
pub fn median(values: &[f64]) -> Option<f64> {
    Distribution::of(values).map(|d| d.median)
}

/// Per cohort: size, withdrawals, the commissions' path, defence outcomes, certificates and
/// the distribution of the learners' attendance.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortSummary {
    /// The cohort's id (raw).
    pub cohort_id: String,
    /// Learners enrolled (withdrawn ones included).
    pub learners: u32,
    /// Learners who withdrew.
    pub withdrawals: u32,
    /// Field studies formed.
    pub field_studies: u32,
    /// Median, over the field studies with an agreement, of the calendar days (Europe/Paris
    /// dates) from version 1 of the commission to the study's last `commission_agreed`.
    pub median_days_commission_to_agreement: Option<f64>,
    /// `commission_renegotiated` events per field study, sorted ascending.
    pub renegotiations_per_field_study: Vec<u32>,
    /// Defence results recorded (one per learner and defence).
    pub defence_attempts: u32,
    /// Of which `passed`.
    pub defences_passed: u32,
    /// Of which `deferred`.
    pub defences_deferred: u32,
    /// Of which `failed`.
    pub defences_failed: u32,
    /// Learners holding a certificate in force (awarded, not revoked since).
    pub certificates: u32,
    /// Learners whose certificate in force is credited toward the DEIS.
    pub deis_credits: u32,
    /// The learners' attendance rates (attended / held half-days over all modules; learners
    /// counted in no held session are left out).
    pub attendance: Option<Distribution>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl CohortSummary {
    /// The summary of one cohort's trajectories.
    pub fn of(cohort: &CohortTrajectory) -> Self {
        let learners = &cohort.learners;
        let milestones = |kind: MilestoneKind| {
            learners
                .iter()
                .flat_map(move |l| l.of_kind(kind))
                .collect::<Vec<_>>()
        };
        let attempts = milestones(MilestoneKind::DefenceAttempt);
        let results =
            |r: DefenceResult| count(attempts.iter().filter(|m| m.result == Some(r)).count());
        let days: Vec<f64> = cohort
            .field_studies
            .iter()
            .filter_map(|s| s.days_commission_to_agreement)
            .map(|d| d as f64)
            .collect();
        let mut renegotiations: Vec<u32> = cohort
            .field_studies
            .iter()
            .map(|s| s.renegotiations)
            .collect();
        renegotiations.sort_unstable();
        let rates: Vec<f64> = learners
            .iter()
            .filter_map(|l| l.attendance.rate())
            .collect();
        Self {
            cohort_id: cohort.cohort_id.clone(),
            learners: count(learners.len()),
            withdrawals: count(learners.iter().filter(|l| l.withdrew_at.is_some()).count()),
            field_studies: count(cohort.field_studies.len()),
            median_days_commission_to_agreement: median(&days),
            renegotiations_per_field_study: renegotiations,
            defence_attempts: count(attempts.len()),
            defences_passed: results(DefenceResult::Passed),
            defences_deferred: results(DefenceResult::Deferred),
            defences_failed: results(DefenceResult::Failed),
            certificates: count(
                learners
                    .iter()
                    .filter(|l| l.certificate_in_force().is_some())
                    .count(),
            ),
            deis_credits: count(
                learners
                    .iter()
                    .filter(|l| l.deis_credit_in_force().is_some())
                    .count(),
            ),
            attendance: Distribution::of(&rates),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate_like_numpy() {
        let d = Distribution::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            (d.min, d.q1, d.median, d.q3, d.max),
            (1.0, 1.75, 2.5, 3.25, 4.0)
        );
        assert_eq!(d.mean, 2.5);
        assert_eq!(median(&[7.0, 51.0, 43.0]), Some(43.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
        let one = Distribution::of(&[0.5]).unwrap();
        assert_eq!((one.q1, one.q3), (0.5, 0.5));
    }
}
