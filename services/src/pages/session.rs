//! Signing in and out of the pages, and the authentication of every page.
//!
//! - `GET /sign-in` shows the form; `POST /sign-in` (fields `token`, `next`) checks the token
//!   and sets the cookie [`COOKIE`] (`HttpOnly`, `SameSite=Strict`, `Path=/`), then redirects
//!   to `next`.
//! - `GET /sign-in?token=ftk_…&next=/path` (a sign-in link) does the same. A link followed
//!   from another site (`Sec-Fetch-Site: cross-site`) gets a short page that moves on to
//!   `next` itself: a browser does not send a `SameSite=Strict` cookie on a redirect that
//!   began on another site, so a plain redirect would land on the sign-in page again.
//! - `next` must be a local path ([`local_path`]): `//host`, `http:…`, backslashes and
//!   control characters are refused and replaced by `/`.
//! - `POST /sign-out` clears the cookie.
//!
//! [`require`] authenticates the pages: the cookie, or an `Authorization: Bearer` header;
//! without a valid token, a redirect to the sign-in page that comes back to the page asked.

use super::{layout, param, params, PageError};
use crate::auth::tokens;
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;

/// The cookie holding the token.
pub const COOKIE: &str = "fieldtrail_token";

/// The token in the request's [`COOKIE`], if any.
pub fn token_from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
}

/// `next` if it is a local path (`/…`, not `//…`, no backslash, no control character, no
/// scheme), else `/`.
pub fn local_path(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/".to_owned();
    };
    let safe = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next
            .parse::<Uri>()
            .is_ok_and(|u| u.scheme().is_none() && u.authority().is_none());
    if safe {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

fn redirect(to: &str, set_cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

/// The pages' authentication layer: inserts the [`crate::auth::Principal`], or redirects to
/// the sign-in page.
pub async fn require(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let token = bearer(request.headers()).or_else(|| token_from_cookie(request.headers()));
    let back = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let to_sign_in = || redirect(&format!("/sign-in?next={}", encode(&back)), None);
    let Some(token) = token else {
        return to_sign_in();
    };
    match tokens::verify(&state.journal, &token).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => to_sign_in(),
        Err(e) => PageError::journal(e).into_response(),
    }
}

fn form(next: &str, error: Option<&str>) -> maud::Markup {
    html! {
        h1 { "Connexion" }
        p { "Collez le jeton d'accès que l'équipe de formation vous a remis (il commence par " code { "ftk_" } ")." }
        @if let Some(error) = error {
            p.error role="alert" { strong { "Connexion refusée : " } (error) }
        }
        form method="post" action="/sign-in" {
            input type="hidden" name="next" value=(next);
            p {
                label for="token" { "Jeton d'accès" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
            }
            p { button type="submit" { "Se connecter" } }
        }
    }
}

/// `GET /sign-in`: the form; with `?token=`, a sign-in link.
pub async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let params = params(&uri);
    let next = local_path(param(&params, "next"));
    match param(&params, "token") {
        None => layout::page("Connexion", None, form(&next, None)).into_response(),
        Some(token) => {
            let cross_site = headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == "cross-site");
            sign_in(&state, token, &next, cross_site).await
        }
    }
}

/// `POST /sign-in` (form fields `token`, `next`).
pub async fn sign_in_form(
    State(state): State<AppState>,
    body: Result<axum::Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let fields = body.map(|f| f.0).unwrap_or_default();
    let next = local_path(param(&fields, "next"));
    match param(&fields, "token") {
        Some(token) => sign_in(&state, token, &next, false).await,
        None => (
            StatusCode::UNAUTHORIZED,
            layout::page(
                "Connexion",
                None,
                form(&next, Some("aucun jeton n'a été saisi.")),
            ),
        )
            .into_response(),
    }
}

async fn sign_in(state: &AppState, token: &str, next: &str, cross_site: bool) -> Response {
    match tokens::verify(&state.journal, token).await {
        Ok(Some(_)) if cross_site => {
            let body = html! {
                h1 { "Connexion réussie" }
                p { a href=(next) { "Continuer vers la page demandée" } }
            };
            let mut response = layout::page("Connexion", None, body).into_response();
            if let Ok(c) = HeaderValue::from_str(&cookie(token)) {
                response.headers_mut().insert(header::SET_COOKIE, c);
            }
            if let Ok(refresh) = HeaderValue::from_str(&format!("0; url={next}")) {
                response.headers_mut().insert("refresh", refresh);
            }
            response
        }
        Ok(Some(_)) => redirect(next, Some(cookie(token))),
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            layout::page(
                "Connexion",
                None,
                form(next, Some("ce jeton est inconnu, mal formé ou révoqué.")),
            ),
        )
            .into_response(),
        Err(e) => PageError::journal(e).into_response(),
    }
}

/// `POST /sign-out`: clears the cookie and goes back to the sign-in page.
pub async fn sign_out() -> Response {
    redirect(
        "/sign-in",
        Some(format!(
            "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        let cases = [
            (Some("/cohorts/cohort-2025"), "/cohorts/cohort-2025"),
            (
                Some("/field-studies/fs25-a?position=90"),
                "/field-studies/fs25-a?position=90",
            ),
            (Some("//evil.example/x"), "/"),
            (Some("http://evil.example/"), "/"),
            (Some("https:/evil"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some("cohorts"), "/"),
            (Some("/a\nb"), "/"),
            (Some(""), "/"),
            (None, "/"),
        ];
        for (next, expected) in cases {
            assert_eq!(local_path(next), expected, "{next:?}");
        }
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; fieldtrail_token=ftk_x_y; b=2"),
        );
        assert_eq!(token_from_cookie(&headers).as_deref(), Some("ftk_x_y"));
        assert_eq!(token_from_cookie(&HeaderMap::new()), None);
    }
}
