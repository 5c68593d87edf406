//! Forming the group and changing its members.

use super::*;

#[tokio::test]
async fn a_missing_field_study_is_not_found() {
    for when in [
        change(&["l7"], &[]),
        negotiate(),
        agree(1),
        state("h"),
        submit(),
        schedule("d1", 10, full_jury()),
        record("d1", &[]),
    ] {
        case(
            "missing",
            vec![],
            when,
            Rejected(
                Code::NotFound,
                "data.field_study_id: field study fs does not exist",
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn form_field_study_rules() {
    case(
        "forms",
        vec![],
        form(&["l1", "l2", "l3"]),
        Events(vec![formed(&["l1", "l2", "l3"])]),
    )
    .await;
    case(
        "forms with 4",
        vec![],
        form(&["l1", "l2", "l3", "l7"]),
        Events(vec![formed(&["l1", "l2", "l3", "l7"])]),
    )
    .await;
    case(
        "exists",
        base(vec![]),
        form(&["l1", "l2", "l3"]),
        Rejected(Code::AlreadyExists, "field study fs already exists"),
    )
    .await;
    let no_cohort = C::FormFieldStudy(FormFieldStudy {
        field_study_id: id(FS),
        cohort_id: id("nope"),
        members: ids(&["l1", "l2", "l3"]),
        organisation: org(),
    });
    case(
        "no cohort",
        vec![],
        no_cohort,
        Rejected(Code::NotFound, "data.cohort_id: cohort nope does not exist"),
    )
    .await;
    case(
        "2 members",
        vec![],
        form(&["l1", "l2"]),
        Rejected(
            Code::Invalid,
            "data.members: a field study has 3 or 4 members, got 2",
        ),
    )
    .await;
    case(
        "5 members",
        vec![],
        form(&["l1", "l2", "l3", "l7", "l8"]),
        Rejected(Code::Invalid, "got 5"),
    )
    .await;
    case(
        "twice",
        vec![],
        form(&["l1", "l2", "l1"]),
        Rejected(Code::Invalid, "data.members[2]: learner l1 is listed twice"),
    )
    .await;
    case(
        "never enrolled",
        vec![],
        form(&["l1", "l2", "zz"]),
        Rejected(
            Code::Invalid,
            "data.members[2]: learner zz is not enrolled in cohort c",
        ),
    )
    .await;
    case(
        "withdrawn",
        vec![],
        form(&["l9", "l2", "l3"]),
        Rejected(Code::Invalid, "data.members[0]: learner l9 has withdrawn"),
    )
    .await;
    case(
        "in another study",
        vec![],
        form(&["l1", "l2", "l4"]),
        Rejected(
            Code::Conflict,
            "data.members[2]: learner l4 is already in field study fs2",
        ),
    )
    .await;
}

#[tokio::test]
async fn change_members_rules() {
    case(
        "joins",
        base(vec![]),
        change(&["l7"], &[]),
        Events(vec![changed(&["l7"], &[], &["l1", "l2", "l3", "l7"])]),
    )
    .await;
    case(
        "swaps",
        base(vec![]),
        change(&["l7"], &["l2"]),
        Events(vec![changed(&["l7"], &["l2"], &["l1", "l3", "l7"])]),
    )
    .await;
    case(
        "down to 2",
        base(vec![]),
        change(&[], &["l1"]),
        Events(vec![changed(&[], &["l1"], &["l2", "l3"])]),
    )
    .await;
    case(
        "down to 1",
        base(vec![]),
        change(&[], &["l3", "l2"]),
        Rejected(Code::Invalid, "would have 1 member;"),
    )
    .await;
    case(
        "up to 5",
        base(vec![]),
        change(&["l7", "l8"], &[]),
        Rejected(Code::Invalid, "would have 5 members"),
    )
    .await;
    case(
        "joiner withdrawn",
        base(vec![]),
        change(&["l9"], &[]),
        Rejected(Code::Invalid, "data.join[0]: learner l9 has withdrawn"),
    )
    .await;
    case(
        "joiner never enrolled",
        base(vec![]),
        change(&["zz"], &[]),
        Rejected(Code::Invalid, "data.join[0]: learner zz is not enrolled"),
    )
    .await;
    case(
        "joiner a member",
        base(vec![]),
        change(&["l1"], &[]),
        Rejected(
            Code::Invalid,
            "data.join[0]: learner l1 is already a member",
        ),
    )
    .await;
    case(
        "joiner twice",
        base(vec![]),
        change(&["l7", "l7"], &[]),
        Rejected(Code::Invalid, "data.join[1]: learner l7 is listed twice"),
    )
    .await;
    case(
        "leaver not a member",
        base(vec![]),
        change(&[], &["l7"]),
        Rejected(Code::Invalid, "data.leave[0]: learner l7 is not a member"),
    )
    .await;
    case(
        "joiner elsewhere",
        base(vec![]),
        change(&["l4"], &[]),
        Rejected(
            Code::Conflict,
            "data.join[0]: learner l4 is already in field study fs2",
        ),
    )
    .await;
    case(
        "joiner elsewhere, group too big",
        base(vec![]),
        change(&["l4", "l7"], &[]),
        Rejected(Code::Invalid, "would have 5 members"),
    )
    .await;
    // The journal's look-up also returns the study itself: it is not "another" study.
    let with_self = lookups().field_study(base(vec![changed(&[], &["l1"], &["l2", "l3"])]));
    case_at(
        "rejoins",
        with_self,
        base(vec![changed(&[], &["l1"], &["l2", "l3"])]),
        june(30, 12),
        change(&["l1"], &[]),
        Events(vec![changed(&["l1"], &[], &["l2", "l3", "l1"])]),
    )
    .await;
}
