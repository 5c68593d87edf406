//! The role table (README "Roles"), as a pure function of who asks and what they ask for.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A token's role. The names are the README's and the CLI's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every command, every read.
    Staff,
    /// `record_session`, `correct_attendance`, `record_reflexive_note` for its cohort; reads of
    /// that cohort's timetable and histories.
    Facilitator,
    /// `record_defence` for the field studies of its cohort; reads of those histories.
    Jury,
    /// Reads of its own transcript, its own field study's history and its own complaints.
    Learner,
    /// Every read, including the audit endpoints; no command.
    Auditor,
    /// Only the pseudonymised research exports.
    Researcher,
    /// Subscribes to NATS; on HTTP only the timetables.
    Dashboard,
}

impl Role {
    /// The role's name (`staff`, `facilitator`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Facilitator => "facilitator",
            Role::Jury => "jury",
            Role::Learner => "learner",
            Role::Auditor => "auditor",
            Role::Researcher => "researcher",
            Role::Dashboard => "dashboard",
        }
    }

    /// The role named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Role::Staff,
            Role::Facilitator,
            Role::Jury,
            Role::Learner,
            Role::Auditor,
            Role::Researcher,
            Role::Dashboard,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }

    /// Whether the role needs `--cohort` (facilitator, jury, learner) and `--learner` (learner).
    pub fn scope_required(self) -> (bool, bool) {
        match self {
            Role::Facilitator | Role::Jury => (true, false),
            Role::Learner => (true, true),
            _ => (false, false),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: the token's name, role and scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The token's id.
    pub token_id: uuid::Uuid,
    /// The token's name (e.g. a person or a system).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The cohort it is scoped to (facilitator, jury, learner).
    pub cohort: Option<String>,
    /// The learner it is (learner).
    pub learner: Option<String>,
}

impl Principal {
    /// The `actor` recorded on the events of its commands: `role:name`.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }

    fn in_cohort(&self, cohort: Option<&str>) -> bool {
        matches!((self.cohort.as_deref(), cohort), (Some(mine), Some(theirs)) if mine == theirs)
    }
}

/// What a request asks for, with what the policy needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// A command: its name and the cohort it acts in (for a field study command, the field
    /// study's cohort; `None` when it cannot be known, e.g. an unknown field study).
    Command {
        /// The command's name.
        name: &'a str,
        /// The cohort it acts in.
        cohort: Option<&'a str>,
    },
    /// A cohort's timetable (JSON or iCalendar).
    Timetable {
        /// The cohort.
        cohort: &'a str,
    },
    /// A learner's transcript (JSON or CLR).
    Transcript {
        /// The cohort.
        cohort: &'a str,
        /// The learner.
        learner: &'a str,
    },
    /// A field study's history (JSON or xAPI).
    History {
        /// The field study's cohort, if the study is known.
        cohort: Option<&'a str>,
        /// Whether the caller's learner is (or was) a member (only meaningful for learners).
        member: bool,
    },
    /// The text of a field study's reflexive notes (the pages; the API's history holds no
    /// note text): staff and auditors, the cohort's facilitators, the study's own learners;
    /// not the jury.
    ReflexiveNotes {
        /// The field study's cohort, if the study is known.
        cohort: Option<&'a str>,
        /// Whether the caller's learner is (or was) a member (only meaningful for learners).
        member: bool,
    },
    /// A cohort's complaints register: staff and auditors; a learner of the cohort, who is
    /// then shown only their own complaints.
    Complaints {
        /// The cohort.
        cohort: &'a str,
    },
    /// The audit endpoints.
    Audit,
    /// The pseudonymised research exports.
    Research,
    /// The global log as Server-Sent Events (`/events/stream`).
    EventStream,
    /// Any other read (e.g. documentation of the API).
    OtherRead,
}

/// The commands a facilitator may send (for its cohort).
pub const FACILITATOR_COMMANDS: [&str; 3] = [
    "record_session",
    "correct_attendance",
    "record_reflexive_note",
];

/// Whether `who` may do `what` (the README's role table).
pub fn allows(who: &Principal, what: &Access<'_>) -> bool {
    use Access as A;
    match (who.role, what) {
        (Role::Staff, _) => true,
        (Role::Auditor, A::Command { .. }) => false,
        (Role::Auditor, _) => true,
        (Role::Facilitator, A::Command { name, cohort }) => {
            FACILITATOR_COMMANDS.contains(name) && who.in_cohort(*cohort)
        }
        (Role::Facilitator, A::Timetable { cohort }) => who.in_cohort(Some(cohort)),
        (Role::Facilitator, A::History { cohort, .. } | A::ReflexiveNotes { cohort, .. }) => {
            who.in_cohort(*cohort)
        }
        (Role::Jury, A::Command { name, cohort }) => {
            *name == "record_defence" && who.in_cohort(*cohort)
        }
        (Role::Jury, A::History { cohort, .. }) => who.in_cohort(*cohort),
        (Role::Learner, A::Transcript { cohort, learner }) => {
            who.in_cohort(Some(cohort)) && who.learner.as_deref() == Some(*learner)
        }
        (Role::Learner, A::History { cohort, member } | A::ReflexiveNotes { cohort, member }) => {
            who.in_cohort(*cohort) && *member
        }
        (Role::Learner, A::Complaints { cohort }) => who.in_cohort(Some(cohort)),
        (Role::Researcher, A::Research) => true,
        (Role::Dashboard, A::Timetable { .. } | A::EventStream) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, cohort: Option<&str>, learner: Option<&str>) -> Principal {
        Principal {
            token_id: uuid::Uuid::nil(),
            name: "n".to_owned(),
            role,
            cohort: cohort.map(str::to_owned),
            learner: learner.map(str::to_owned),
        }
    }

    #[test]
    fn the_role_table() {
        let staff = who(Role::Staff, None, None);
        let facilitator = who(Role::Facilitator, Some("c1"), None);
        let jury = who(Role::Jury, Some("c1"), None);
        let learner = who(Role::Learner, Some("c1"), Some("l1"));
        let auditor = who(Role::Auditor, None, None);
        let researcher = who(Role::Researcher, None, None);
        let dashboard = who(Role::Dashboard, None, None);
        let cmd = |name, cohort| Access::Command { name, cohort };
        let notes = |cohort, member| Access::ReflexiveNotes { cohort, member };
        let cases: Vec<(&Principal, Access<'_>, bool)> = vec![
            (&staff, cmd("schedule_session", Some("c1")), true),
            (&staff, Access::Research, true),
            (&facilitator, cmd("record_session", Some("c1")), true),
            (&facilitator, cmd("record_session", Some("c2")), false),
            (&facilitator, cmd("record_reflexive_note", None), false),
            (&facilitator, cmd("schedule_session", Some("c1")), false),
            (&facilitator, Access::Timetable { cohort: "c1" }, true),
            (&facilitator, Access::Timetable { cohort: "c2" }, false),
            (
                &facilitator,
                Access::History {
                    cohort: Some("c1"),
                    member: false,
                },
                true,
            ),
            (
                &facilitator,
                Access::Transcript {
                    cohort: "c1",
                    learner: "l1",
                },
                false,
            ),
            (&jury, cmd("record_defence", Some("c1")), true),
            (&jury, cmd("record_defence", Some("c2")), false),
            (&jury, cmd("schedule_defence", Some("c1")), false),
            (
                &jury,
                Access::History {
                    cohort: Some("c1"),
                    member: false,
                },
                true,
            ),
            (&jury, Access::Timetable { cohort: "c1" }, false),
            (
                &learner,
                Access::Transcript {
                    cohort: "c1",
                    learner: "l1",
                },
                true,
            ),
            (
                &learner,
                Access::Transcript {
                    cohort: "c1",
                    learner: "l2",
                },
                false,
            ),
            (
                &learner,
                Access::History {
                    cohort: Some("c1"),
                    member: true,
                },
                true,
            ),
            (
                &learner,
                Access::History {
                    cohort: Some("c1"),
                    member: false,
                },
                false,
            ),
            (&learner, Access::Timetable { cohort: "c1" }, false),
            (&learner, cmd("record_session", Some("c1")), false),
            (&auditor, Access::Audit, true),
            (&auditor, notes(Some("c1"), false), true),
            (&facilitator, notes(Some("c1"), false), true),
            (&facilitator, notes(Some("c2"), false), false),
            (&learner, notes(Some("c1"), true), true),
            (&learner, notes(Some("c1"), false), false),
            (&jury, notes(Some("c1"), false), false),
            (&researcher, notes(Some("c1"), false), false),
            (&dashboard, notes(Some("c1"), false), false),
            (
                &auditor,
                Access::Transcript {
                    cohort: "c9",
                    learner: "x",
                },
                true,
            ),
            (&auditor, cmd("close_cohort", Some("c1")), false),
            (&researcher, Access::Research, true),
            (&researcher, Access::Timetable { cohort: "c1" }, false),
            (
                &researcher,
                Access::Transcript {
                    cohort: "c1",
                    learner: "l1",
                },
                false,
            ),
            (&dashboard, Access::Timetable { cohort: "c7" }, true),
            (
                &dashboard,
                Access::History {
                    cohort: Some("c1"),
                    member: false,
                },
                false,
            ),
            (&dashboard, Access::Audit, false),
            (&staff, Access::Complaints { cohort: "c1" }, true),
            (&auditor, Access::Complaints { cohort: "c1" }, true),
            (&learner, Access::Complaints { cohort: "c1" }, true),
            (&learner, Access::Complaints { cohort: "c2" }, false),
            (&facilitator, Access::Complaints { cohort: "c1" }, false),
            (&jury, Access::Complaints { cohort: "c1" }, false),
            (&researcher, Access::Complaints { cohort: "c1" }, false),
            (&dashboard, Access::Complaints { cohort: "c1" }, false),
        ];
        for (who, what, expected) in cases {
            assert_eq!(allows(who, &what), expected, "{:?} {what:?}", who.role);
        }
    }

    #[test]
    fn roles_round_trip_by_name() {
        for name in [
            "staff",
            "facilitator",
            "jury",
            "learner",
            "auditor",
            "researcher",
            "dashboard",
        ] {
            assert_eq!(Role::parse(name).map(Role::as_str), Some(name));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
