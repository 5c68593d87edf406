//! The page skeleton (header, navigation, sign-out, main, footer) and the embedded assets.

use crate::auth::{policy, Access, Principal};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The stylesheet, embedded in the binary.
pub const CSS: &str = include_str!("assets/fieldtrail.css");
/// The live-update script, embedded in the binary.
pub const LIVE_JS: &str = include_str!("assets/live.js");

/// `GET /assets/fieldtrail.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// `GET /assets/live.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        LIVE_JS,
    )
        .into_response()
}

/// A whole page: `title`, the navigation for `who` (none on the sign-in and error pages),
/// and `body` inside `<main>`.
pub fn page(title: &str, who: Option<&Principal>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldtrail" }
                link rel="stylesheet" href="/assets/fieldtrail.css";
                script src="/assets/live.js" defer {}
            }
            body {
                a.skip href="#contenu" { "Aller au contenu" }
                header.site {
                    nav aria-label="Navigation principale" {
                        a.brand href="/" { "fieldtrail" }
                        @if let Some(who) = who {
                            ul {
                                li { a href="/" { "Accueil" } }
                                @if may_list_cohorts(who) {
                                    li { a href="/cohorts" { "Cohortes" } }
                                }
                                @if policy::allows(who, &Access::Research) {
                                    li { a href="/research" { "Recherche" } }
                                }
                            }
                            form.sign-out method="post" action="/sign-out" {
                                span { (super::fr::role(who.role)) " · " (who.name) }
                                " "
                                button type="submit" { "Se déconnecter" }
                            }
                        }
                    }
                }
                main #contenu tabindex="-1" {
                    (body)
                }
                footer.site {
                    p { "fieldtrail — registre des faits de la formation ; rien n'est réécrit, chaque correction est un nouveau fait." }
                }
            }
        }
    }
}

/// Whether the cohorts list has anything for `who`: the policy lets it read a timetable (its
/// own cohort's when it is scoped to one, any cohort's otherwise).
pub fn may_list_cohorts(who: &Principal) -> bool {
    let cohort = who.cohort.as_deref().unwrap_or("*");
    policy::allows(who, &Access::Timetable { cohort })
}
