//! The axum layer: authenticate every request but [`PUBLIC_PATHS`], then apply the policy to reads.
//! Commands are authorized in the command route, which knows the command's name and cohort.

use super::policy::{allows, Access};
use super::{tokens, Principal, Role};
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Paths served without a token: the probes (`/healthz`, `/readyz`) and the Prometheus scrape
/// (`/metrics`: counts and lags only, no id in any label), as probes and scrapers carry no token;
/// and the API's description (`/openapi.json`, `/docs`), which holds no data.
pub const PUBLIC_PATHS: [&str; 5] = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];

/// 401 with `WWW-Authenticate: Bearer` (RFC 6750 section 3).
pub fn unauthenticated(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"fieldtrail\"")],
        Json(json!({"outcome": "rejected", "code": "unauthenticated", "message": message})),
    )
        .into_response()
}

/// 403: authenticated, but outside the token's rights; nothing was done.
pub fn forbidden(who: &Principal, what: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "outcome": "rejected",
            "code": "forbidden",
            "message": format!("a {} token ({}) may not {what}", who.role, who.name),
        })),
    )
        .into_response()
}

fn unavailable(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"outcome": "unavailable", "message": message})),
    )
        .into_response()
}

/// For a calendar (`….ics`) and the event stream (`/events/stream`) only: the token given as
/// `?token=ftk_…`, because calendar applications subscribing by URL and the browser's
/// `EventSource` cannot send an `Authorization` header. The URL is then a secret (as with any
/// calendar subscription link); give learners their own `learner` token.
fn calendar_token(path: &str, query: Option<&str>) -> Option<String> {
    if !path.ends_with(".ics") && path != "/events/stream" {
        return None;
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
}

/// For `GET /events/stream` only: the pages' sign-in cookie, so that a page's `EventSource`
/// follows the stream with the signed-in token (`SameSite=Strict` keeps other sites from
/// using it). No other API route accepts the cookie.
fn page_cookie(path: &str, method: &Method, headers: &axum::http::HeaderMap) -> Option<String> {
    (path == "/events/stream" && method == Method::GET)
        .then(|| crate::pages::session::token_from_cookie(headers))
        .flatten()
}

/// Authenticates the request (bearer token) and, for reads, checks the role table.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if PUBLIC_PATHS.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned)
        .or_else(|| calendar_token(&path, request.uri().query()))
        .or_else(|| page_cookie(&path, request.method(), request.headers()));
    let Some(token) = presented.as_deref() else {
        return unauthenticated("send an API token: Authorization: Bearer ftk_…");
    };
    let principal = match tokens::verify(&state.journal, token).await {
        Ok(Some(p)) => p,
        Ok(None) => return unauthenticated("the token is unknown, malformed or revoked"),
        Err(e) => return unavailable(format!("cannot check the token: {e}")),
    };
    if request.method() != Method::POST {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let allowed = match read_access(&state, &principal, &segments).await {
            Ok(allowed) => allowed,
            Err(e) => return unavailable(format!("cannot check the access: {e}")),
        };
        if !allowed {
            return forbidden(&principal, &format!("read {path}"));
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && segment.is_char_boundary(i + 1)
            && segment.is_char_boundary(i + 3)
        {
            if let Ok(b) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The access a read asks for, from its path segments.
async fn read_access(
    state: &AppState,
    who: &Principal,
    segments: &[String],
) -> anyhow::Result<bool> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let access = match s.as_slice() {
        ["cohorts", cohort, "timetable" | "timetable.ics"] => Access::Timetable { cohort },
        ["cohorts", cohort, "complaints"] => Access::Complaints { cohort },
        ["cohorts", cohort, "learners", learner, rest]
            if rest.starts_with("transcript") || rest.starts_with("clr") =>
        {
            Access::Transcript { cohort, learner }
        }
        ["cohorts", _cohort, "learners", _learner, "timetable.ics"] => {
            // A learner's own calendar: the staff's and auditors' business, and the learner's.
            return Ok(match who.role {
                Role::Learner => {
                    who.cohort.as_deref() == Some(s[1]) && who.learner.as_deref() == Some(s[3])
                }
                _ => allows(who, &Access::Timetable { cohort: s[1] }),
            });
        }
        ["field-studies", study, "history" | "xapi"] => {
            if matches!(who.role, Role::Staff | Role::Auditor) {
                return Ok(true);
            }
            let (cohort, member) = field_study_scope(state, study, who).await?;
            return Ok(allows(
                who,
                &Access::History {
                    cohort: cohort.as_deref(),
                    member,
                },
            ));
        }
        ["subjects", subject, "export"] => {
            // Subject access (RGPD article 15): staff, or the learner themself.
            return Ok(match who.role {
                Role::Staff => true,
                Role::Learner => who
                    .learner
                    .as_deref()
                    .is_some_and(|l| subject.strip_prefix("learner:") == Some(l)),
                _ => false,
            });
        }
        ["audit", ..] => Access::Audit,
        ["events", "stream"] => Access::EventStream,
        // One event in clear (what the bus carries sealed): staff and auditors.
        ["events", _, _, _] => Access::Audit,
        ["research", ..] => Access::Research,
        _ => Access::OtherRead,
    };
    Ok(allows(who, &access))
}

/// The cohort of a field study, and whether `who` (a learner) is or was one of its members.
pub async fn field_study_scope(
    state: &AppState,
    study: &str,
    who: &Principal,
) -> anyhow::Result<(Option<String>, bool)> {
    let events = state.journal.stream("field_study", study, 0).await?;
    let rows = events.iter().filter(|e| {
        matches!(
            e.event_type.as_str(),
            "field_study_formed" | "members_changed"
        )
    });
    let mut cohort = None;
    let mut member = false;
    let learner = who.learner.as_deref().unwrap_or("");
    for row in rows {
        let payload: &Value = &row.payload;
        if cohort.is_none() {
            cohort = payload["cohort_id"].as_str().map(str::to_owned);
        }
        let listed = |key: &str| {
            payload[key]
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m == learner))
        };
        member |= listed("members") || listed("join");
    }
    Ok((cohort, member))
}
