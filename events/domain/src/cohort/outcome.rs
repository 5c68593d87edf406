//! The learners' outcomes: `award_certificate` (needs a passed latest defence, read from the
//! cohort's field studies), `revoke_certificate` and `record_deis_credit`.

use super::Cohort;
use crate::command::{AwardCertificate, DefenceResult, RecordDeisCredit, RevokeCertificate};
use crate::error::{DecideError, Rejection};
use crate::event::CohortEvent;
use crate::lookups::Lookups;
use crate::FieldStudy;

impl Cohort {
    /// `award_certificate`: `not_found` for an unknown learner; `already_exists` while a
    /// certificate is in force (after a revocation, the learner may be awarded again);
    /// `conflict` for a withdrawn learner or one whose latest defence result (see
    /// [`FieldStudy::latest_result_among`]) is not `passed`.
    pub(super) async fn award(
        &self,
        c: AwardCertificate,
        lookups: &dyn Lookups,
    ) -> Result<CohortEvent, DecideError> {
        let learner = self.enrolled(&c.learner_id, &c.cohort_id)?;
        if learner.certificate_awarded {
            return Err(Rejection::already_exists(format!(
                "the certificate is already awarded to learner {}",
                c.learner_id
            ))
            .into());
        }
        if learner.withdrawn {
            return Err(Rejection::conflict(format!(
                "learner {} has withdrawn from cohort {}",
                c.learner_id, c.cohort_id
            ))
            .into());
        }
        let studies = lookups
            .field_studies_of_cohort(c.cohort_id.as_str())
            .await?;
        match FieldStudy::latest_result_among(&studies, c.learner_id.as_str()) {
            Some(DefenceResult::Passed) => {}
            Some(other) => {
                return Err(Rejection::conflict(format!(
                "learner {}'s latest defence result is {}: the certificate needs a passed defence",
                c.learner_id,
                other.as_str()
            ))
                .into())
            }
            None => {
                return Err(Rejection::conflict(format!(
                    "learner {} has no defence result: the certificate needs a passed defence",
                    c.learner_id
                ))
                .into())
            }
        }
        Ok(CohortEvent::CertificateAwarded {
            cohort_id: c.cohort_id,
            learner_id: c.learner_id,
        })
    }

    /// `revoke_certificate`: `not_found` for an unknown learner; `conflict` when the learner
    /// holds no certificate in force. The DEIS credit goes with the certificate.
    pub(super) fn revoke(&self, c: RevokeCertificate) -> Result<CohortEvent, Rejection> {
        let learner = self.enrolled(&c.learner_id, &c.cohort_id)?;
        if !learner.certificate_awarded {
            return Err(Rejection::conflict(format!(
                "learner {} holds no certificate in force to revoke",
                c.learner_id
            )));
        }
        Ok(CohortEvent::CertificateRevoked {
            cohort_id: c.cohort_id,
            learner_id: c.learner_id,
            reason: c.reason,
        })
    }

    /// `record_deis_credit`: `not_found` for an unknown learner; `already_exists` once credited;
    /// `conflict` without a certificate or off the DEIS pathway.
    pub(super) fn credit(&self, c: RecordDeisCredit) -> Result<CohortEvent, Rejection> {
        let learner = self.enrolled(&c.learner_id, &c.cohort_id)?;
        if learner.deis_credit {
            return Err(Rejection::already_exists(format!(
                "the DEIS credit of learner {} is already recorded",
                c.learner_id
            )));
        }
        if !learner.certificate_awarded {
            return Err(Rejection::conflict(format!(
                "learner {} has no certificate to credit toward the DEIS",
                c.learner_id
            )));
        }
        if !learner.deis_pathway {
            return Err(Rejection::conflict(format!(
                "learner {} is not on the DEIS pathway",
                c.learner_id
            )));
        }
        Ok(CohortEvent::DeisCreditRecorded {
            cohort_id: c.cohort_id,
            learner_id: c.learner_id,
            note: c.note,
        })
    }
}
