//! The complaints register on the cohort page (Qualiopi indicator 31: every complaint, its
//! answer and the action taken), for the roles that read the whole register over the API
//! (`GET /cohorts/{id}/complaints`: staff and auditors; a learner, who sees only their own
//! there, does not open the cohort page). The present view only, like the attendance register.

use super::fr;
use fieldtrail_projections::{ComplaintStatus, ComplaintsRegister};
use maud::{html, Markup};

/// The register as a table: filed, from, subject, status, answered, days, answer and action.
pub fn section(register: &ComplaintsRegister) -> Markup {
    html! {
        section aria-labelledby="reclamations" {
            h2 #reclamations { "Registre des réclamations" }
            @if register.complaints.is_empty() {
                p { "Aucune réclamation reçue." }
            } @else {
                @let open = register.complaints.iter().filter(|c| c.status == ComplaintStatus::Open).count();
                p {
                    (register.complaints.len()) " réclamation(s), dont " (open) " sans réponse."
                }
                table.complaints {
                    thead { tr {
                        th scope="col" { "Reçue le (Paris)" }
                        th scope="col" { "De" }
                        th scope="col" { "Objet" }
                        th scope="col" { "État" }
                        th scope="col" { "Répondue le (Paris)" }
                        th scope="col" { "Délai (jours)" }
                        th scope="col" { "Réponse et action" }
                    } }
                    tbody {
                        @for c in &register.complaints {
                            tr data-complaint=(c.complaint_id) {
                                td { (fr::datetime_short_text(&c.filed_at)) }
                                td { (c.from) }
                                td { (c.subject) }
                                td {
                                    @match c.status {
                                        ComplaintStatus::Open => strong { "en attente de réponse" },
                                        ComplaintStatus::Answered => "traitée",
                                    }
                                }
                                td { @if let Some(at) = &c.answered_at { (fr::datetime_short_text(at)) } @else { "—" } }
                                td { @if let Some(days) = c.days_to_answer { (days) } @else { "—" } }
                                td {
                                    @if let (Some(answer), Some(action)) = (&c.answer, &c.action) {
                                        (answer) br; "Action : " (action)
                                    } @else { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
