//! The web pages, in French, for the people who record and check: server-rendered HTML
//! (maud), the stylesheet and one small script embedded in the binary (no CDN), usable
//! without JavaScript (the script only adds live updates through `EventSource`).
//!
//! | route | page |
//! |---|---|
//! | `GET /sign-in`, `POST /sign-in`, `GET /sign-in?token=…&next=/path`, `POST /sign-out` | sign-in and sign-out ([`session`]) |
//! | `GET /` | what the signed-in role may open ([`home`]) |
//! | `GET /cohorts` | the cohorts the role may open ([`cohorts`]) |
//! | `GET /cohorts/{cohort_id}` | timetable by week, module bars, attendance register, complaints register ([`cohort`], [`complaints`]) |
//! | `GET /cohorts/{cohort_id}/learners/{learner_id}` | a learner's transcript ([`transcript`]) |
//! | `GET /field-studies/{field_study_id}` | a field study's path, with the as-of control ([`field_study`]) |
//! | `GET /history/{stream_type}/{stream_id}` | a stream's full history and its hash-chain check ([`audit`]) |
//! | `GET /research`, `GET /research/cohorts/{pseudonym}` | trajectories as SVG charts, from the pseudonymised export only ([`research`]) |
//! | `GET /assets/fieldtrail.css`, `GET /assets/live.js` | the embedded assets ([`layout`]) |
//!
//! Access: the token comes from the `HttpOnly`, `SameSite=Strict` cookie set at sign-in (or
//! an `Authorization: Bearer` header); without a valid one a page redirects to the sign-in
//! page. Each page asks [`crate::auth::policy::allows`] for the same [`Access`] as its API
//! twin, so a page shows exactly what the role may read over the API. `?fragment=1` answers
//! only the page's live region (what the script swaps in), and `?min_position=N` waits, as
//! on the API, until the read models include the event at `N`.

pub mod as_of;
pub mod audit;
pub mod cohort;
pub mod cohorts;
pub mod complaints;
pub mod field_study;
pub mod fr;
pub mod home;
pub mod layout;
pub mod research;
pub mod session;
pub mod transcript;

use crate::auth::{policy, Access, Principal};
use crate::http::{consistency, AppState};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

/// The page routes (merged into [`crate::http::router`] beside the API, with their own
/// authentication, [`session::require`]).
pub fn routes(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/", get(home::page))
        .route("/cohorts", get(cohorts::page))
        .route("/cohorts/{cohort_id}", get(cohort::page))
        .route(
            "/cohorts/{cohort_id}/learners/{learner_id}",
            get(transcript::page),
        )
        .route("/field-studies/{field_study_id}", get(field_study::page))
        .route("/history/{stream_type}/{stream_id}", get(audit::page))
        .route("/research", get(research::index))
        .route("/research/cohorts/{pseudonym}", get(research::cohort))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            session::require,
        ));
    Router::new()
        .merge(signed_in)
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in_form),
        )
        .route("/sign-out", axum::routing::post(session::sign_out))
        .route("/assets/fieldtrail.css", get(layout::stylesheet))
        .route("/assets/live.js", get(layout::script))
        .fallback(not_found_anywhere)
        .layer(axum::middleware::map_response(security_headers))
}

/// Every page and asset: only this origin's scripts, styles and images (no CDN, no inline
/// script; inline `style` attributes draw the bars), no framing, no sniffing, and no
/// `Referer` beyond this origin (a sign-in link carries a token).
async fn security_headers(mut response: Response) -> Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// An address no route serves: a French page for a browser (it asks for HTML or carries the
/// session cookie), JSON for an API client (`{"code": "not_found", "message": ...}`, as the
/// API's own 404 answers).
async fn not_found_anywhere(headers: axum::http::HeaderMap) -> Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
        || headers.contains_key(axum::http::header::COOKIE);
    if wants_html {
        PageError::NotFound("Cette adresse ne correspond à aucune page.".to_owned()).into_response()
    } else {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "code": "not_found",
                "message": "no route answers this path and method (see /openapi.json)"
            })),
        )
            .into_response()
    }
}

/// Why a page could not be shown; each answers a French page with its status.
#[derive(Debug)]
pub enum PageError {
    /// 404: an unknown id or address.
    NotFound(String),
    /// 403: outside the role's rights.
    Forbidden(String),
    /// 422: a bad parameter (e.g. the as-of control).
    Invalid(String),
    /// 503: the journal or the read models are not reachable (or not there yet).
    Unavailable(String),
}

impl PageError {
    /// The journal failed: 503, the detail logged.
    pub fn journal(e: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %e, "page: journal unavailable");
        Self::Unavailable(
            "Le journal ne répond pas pour le moment. Réessayez dans un instant.".to_owned(),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Page introuvable", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Accès refusé", m),
            PageError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "Demande invalide", m),
            PageError::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, "Service indisponible", m)
            }
        };
        let body = html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Retour à l'accueil" } }
        };
        (status, layout::page(title, None, body)).into_response()
    }
}

/// A path's parameters, or a 404 page when they cannot be read (e.g. bad percent-encoding):
/// a page never answers axum's plain-text rejection.
pub fn path_or_404<T>(
    path: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, PageError> {
    path.map(|p| p.0)
        .map_err(|_| PageError::NotFound("Cette adresse ne correspond à aucune page.".to_owned()))
}

/// `Err(Forbidden)` unless the policy lets `who` do `what` (the API twin's rule).
pub fn check(who: &Principal, what: &Access<'_>, page: &str) -> Result<(), PageError> {
    if policy::allows(who, what) {
        Ok(())
    } else {
        Err(PageError::Forbidden(format!(
            "Votre rôle ({}) ne permet pas d'ouvrir {page}.",
            fr::role(who.role)
        )))
    }
}

/// The query string as (name, value) pairs; an unreadable query is empty (never a rejection).
pub fn params(uri: &axum::http::Uri) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The first value of `name` in `params`, if given and not empty.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the request asks only for the live region (`?fragment=1`).
pub fn wants_fragment(params: &[(String, String)]) -> bool {
    param(params, "fragment").is_some()
}

/// The stored document `kind`/`key` read for a page: as it stood at `cut` (`None` when it did
/// not exist then, and no position: the cut names the moment), or as it stands now with the
/// position the read models reflect (after `?min_position=`); `unknown` when it does not exist.
///
/// # Errors
/// [`PageError`] from `unknown`, the `min_position` wait, the journal, or a document this
/// build cannot read as `T`.
pub async fn document_then<T: serde::de::DeserializeOwned>(
    state: &AppState,
    params: &[(String, String)],
    kind: &str,
    key: &str,
    cut: Option<fieldtrail_journal::audit::Cut>,
    unknown: impl FnOnce() -> PageError,
) -> Result<(Option<T>, Option<i64>), PageError> {
    let (document, position) = match cut {
        Some(cut) => (
            crate::audit::document_as_of(&state.journal, kind, key, cut)
                .await
                .map_err(PageError::journal)?,
            None,
        ),
        None => {
            let position = reflected(state, params).await?;
            let doc = crate::read::document(&state.journal, kind, key)
                .await
                .map_err(PageError::journal)?
                .ok_or_else(unknown)?;
            (Some(doc), Some(position))
        }
    };
    let document = document
        .map(serde_json::from_value)
        .transpose()
        .map_err(PageError::journal)?;
    Ok((document, position))
}

/// Waits for `?min_position=N` like the API's reads, then answers the position the read
/// models reflect (the projector's checkpoint).
pub async fn reflected(state: &AppState, params: &[(String, String)]) -> Result<i64, PageError> {
    match param(params, "min_position") {
        Some(text) => {
            let min = text.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
                PageError::Invalid(format!(
                    "min_position : une position du journal est attendue (0, 1, 2, …), pas « {text} »."
                ))
            })?;
            consistency::wait_for(&state.journal, min)
                .await
                .map_err(|_| {
                    PageError::Unavailable(format!(
                        "Les vues n'ont pas encore atteint la position {min}. Réessayez."
                    ))
                })
        }
        None => consistency::reflected(&state.journal)
            .await
            .map_err(PageError::journal),
    }
}

/// The answer of a page with a live region: the region alone for `?fragment=1`, else the
/// whole page around it.
pub fn answer(
    params: &[(String, String)],
    title: &str,
    who: &Principal,
    before: Markup,
    live: Markup,
) -> Response {
    if wants_fragment(params) {
        return Html(live.into_string()).into_response();
    }
    layout::page(
        title,
        Some(who),
        html! {
            (before)
            (live)
        },
    )
    .into_response()
}
