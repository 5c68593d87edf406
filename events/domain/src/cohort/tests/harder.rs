//! The second vocabulary on the cohort: `revoke_certificate` (and an award after it, which
//! reads a rectified result), `file_complaint`, `answer_complaint`.

use super::*;
use crate::command::{AnswerComplaint, FileComplaint, RevokeCertificate};

fn revoke(l: &str, why: &str) -> CohortCommand {
    CohortCommand::RevokeCertificate(RevokeCertificate {
        cohort_id: id(C),
        learner_id: id(l),
        reason: reason(why),
    })
}
fn revoked(l: &str) -> CohortEvent {
    CohortEvent::CertificateRevoked {
        cohort_id: id(C),
        learner_id: id(l),
        reason: reason("erreur du jury"),
    }
}
fn file(k: &str) -> CohortCommand {
    CohortCommand::FileComplaint(FileComplaint {
        cohort_id: id(C),
        complaint_id: id(k),
        from: "learner:l1".to_owned(),
        subject: "s".to_owned(),
        text: "t".to_owned(),
    })
}
fn filed(k: &str) -> CohortEvent {
    CohortEvent::ComplaintFiled {
        cohort_id: id(C),
        complaint_id: id(k),
        from: "learner:l1".to_owned(),
        subject: "s".to_owned(),
        text: "t".to_owned(),
    }
}
fn answer(k: &str) -> CohortCommand {
    CohortCommand::AnswerComplaint(AnswerComplaint {
        cohort_id: id(C),
        complaint_id: id(k),
        answer: "a".to_owned(),
        action: "x".to_owned(),
    })
}
fn answered(k: &str) -> CohortEvent {
    CohortEvent::ComplaintAnswered {
        cohort_id: id(C),
        complaint_id: id(k),
        answer: "a".to_owned(),
        action: "x".to_owned(),
    }
}

/// fs1 = {l1, l2}: at d1 l1 passed, then rectified to `l1`'s `result`.
fn rectified(result: DefenceResult) -> InMemoryLookups {
    let fs = || id("fs1");
    lookups().field_study(vec![
        FieldStudyEvent::FieldStudyFormed {
            field_study_id: fs(),
            cohort_id: id(C),
            members: ids(&["l1", "l2"]),
            organisation: Organisation {
                name: "o".to_owned(),
                sector: "s".to_owned(),
            },
            split_from: None,
        },
        FieldStudyEvent::DefenceScheduled {
            field_study_id: fs(),
            defence_id: id("d1"),
            at: at("2024-09-10T09:00:00+02:00"),
            jury: vec![],
        },
        FieldStudyEvent::DefencePassed {
            field_study_id: fs(),
            defence_id: id("d1"),
            learner_id: id("l1"),
            remarks: String::new(),
        },
        FieldStudyEvent::DefenceResultRectified {
            field_study_id: fs(),
            defence_id: id("d1"),
            learner_id: id("l1"),
            previous_result: DefenceResult::Passed,
            result,
            reason: reason("erreur"),
        },
    ])
}

#[tokio::test]
async fn revoke_certificate_rules() {
    let why = "erreur du jury";
    case(
        "revokes",
        lookups(),
        base(vec![awarded("l1")]),
        revoke("l1", why),
        Events(vec![revoked("l1")]),
    )
    .await;
    case(
        "revokes the credited certificate",
        lookups(),
        base(vec![awarded("l2"), credited("l2")]),
        revoke("l2", why),
        Events(vec![CohortEvent::CertificateRevoked {
            cohort_id: id(C),
            learner_id: id("l2"),
            reason: reason(why),
        }]),
    )
    .await;
    case(
        "never awarded",
        lookups(),
        base(vec![]),
        revoke("l1", why),
        Rejected(Code::Conflict, "holds no certificate in force"),
    )
    .await;
    case(
        "already revoked",
        lookups(),
        base(vec![awarded("l1"), revoked("l1")]),
        revoke("l1", why),
        Rejected(Code::Conflict, "holds no certificate in force"),
    )
    .await;
    case(
        "unknown learner",
        lookups(),
        base(vec![]),
        revoke("zz", why),
        Rejected(Code::NotFound, "learner zz is not enrolled"),
    )
    .await;
    case(
        "no DEIS credit without the certificate in force",
        lookups(),
        base(vec![awarded("l2"), credited("l2"), revoked("l2")]),
        credit("l2"),
        Rejected(Code::Conflict, "has no certificate to credit"),
    )
    .await;
}

#[tokio::test]
async fn an_award_after_a_revocation_reads_the_rectified_result() {
    case(
        "rectified to passed again: awarded again",
        rectified(DefenceResult::Passed),
        base(vec![awarded("l1"), revoked("l1")]),
        award("l1"),
        Events(vec![awarded("l1")]),
    )
    .await;
    case(
        "rectified to deferred: refused",
        rectified(DefenceResult::Deferred),
        base(vec![awarded("l1"), revoked("l1")]),
        award("l1"),
        Rejected(Code::Conflict, "latest defence result is deferred"),
    )
    .await;
    case(
        "in force: already exists",
        rectified(DefenceResult::Passed),
        base(vec![awarded("l1")]),
        award("l1"),
        Rejected(Code::AlreadyExists, "already awarded"),
    )
    .await;
}

#[tokio::test]
async fn complaint_rules() {
    case(
        "files",
        lookups(),
        base(vec![]),
        file("k1"),
        Events(vec![filed("k1")]),
    )
    .await;
    case(
        "id exists",
        lookups(),
        base(vec![filed("k1")]),
        file("k1"),
        Rejected(Code::AlreadyExists, "complaint k1 already exists"),
    )
    .await;
    case(
        "files in a closed cohort",
        lookups(),
        base(vec![closed()]),
        file("k1"),
        Events(vec![filed("k1")]),
    )
    .await;
    case(
        "answers",
        lookups(),
        base(vec![filed("k1")]),
        answer("k1"),
        Events(vec![answered("k1")]),
    )
    .await;
    case(
        "already answered",
        lookups(),
        base(vec![filed("k1"), answered("k1")]),
        answer("k1"),
        Rejected(Code::Conflict, "complaint k1 is already answered"),
    )
    .await;
    case(
        "unknown complaint",
        lookups(),
        base(vec![filed("k1")]),
        answer("k2"),
        Rejected(Code::NotFound, "complaint k2 does not exist"),
    )
    .await;
}

#[test]
fn a_revoked_certificate_is_not_in_force_and_takes_its_credit() {
    let mut cohort = Cohort::default();
    for e in base(vec![awarded("l2"), credited("l2"), revoked("l2")]) {
        cohort.apply(e);
    }
    let l2 = cohort.learner("l2").unwrap();
    assert!(!l2.certificate_awarded() && !l2.deis_credit());
    cohort.apply(awarded("l2"));
    assert!(cohort.learner("l2").unwrap().certificate_awarded());
}
