//! `GET /history/{stream_type}/{stream_id}`: a stream's full history (actor, both clocks,
//! command id, hashes) and the result of verifying the journal's hash chains, with the first
//! broken link of this stream if any. Access: the audit routes' ([`Access::Audit`]).

use super::{check, fr, layout, PageError};
use crate::auth::{Access, Principal};
use crate::http::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use fieldtrail_journal::audit::EventFilter;
use fieldtrail_journal::HistoryOf;
use maud::html;

/// `GET /history/{stream_type}/{stream_id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    stream: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let result = match super::path_or_404(stream) {
        Ok((stream_type, stream_id)) => render(&state, &who, &stream_type, &stream_id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render(
    state: &AppState,
    who: &Principal,
    stream_type: &str,
    stream_id: &str,
) -> Result<Response, PageError> {
    check(who, &Access::Audit, "l'historique d'audit")?;
    let unknown = || {
        PageError::NotFound(format!(
            "Aucun fait dans le flux {stream_type}/{stream_id}."
        ))
    };
    crate::audit::check_stream_type(stream_type).map_err(|_| unknown())?;
    let events = state
        .journal
        .history(
            HistoryOf::Stream {
                stream_type,
                stream_id,
            },
            &EventFilter::default(),
        )
        .await
        .map_err(PageError::journal)?;
    if events.is_empty() {
        return Err(unknown());
    }
    let started = std::time::Instant::now();
    let report = state
        .journal
        .verify(None)
        .await
        .map_err(PageError::journal)?;
    let seconds = started.elapsed().as_secs_f64();
    let name = format!("{stream_type}/{stream_id}");
    let mine: Vec<_> = report.breaks.iter().filter(|b| b.stream == name).collect();
    let title = format!("Historique de {name}");
    let body = html! {
        h1 { (title) }
        section aria-labelledby="verification" {
            h2 #verification { "Vérification de la chaîne de hachage" }
            @if mine.is_empty() {
                p.verified role="status" { strong { "✔ Chaîne intacte pour ce flux." } " " }
            } @else {
                @for b in &mine {
                    p.broken role="alert" { strong { "✘ Chaîne rompue : " } "premier maillon rompu à la version " (b.version)
                        @if let Some(p) = b.position { " (position " (p) ")" } " — " (b.reason) }
                }
            }
            p { "Journal entier : " (report.events) " faits dans " (report.streams) " flux, position de tête " (report.head_position) ", "
                @if report.intact() { "toutes les chaînes intactes" } @else { (report.breaks.len()) " flux rompu(s)" }
                " (vérifié en " (format!("{seconds:.2}")) " s)." }
            p { "Empreinte du journal (racine de Merkle RFC 6962 des têtes de flux, SHA-256) : " code { (report.digest) } }
        }
        section aria-labelledby="faits" {
            h2 #faits { "Tous les faits du flux (" (events.len()) ")" }
            table.audit {
                thead { tr {
                    th scope="col" { "Version" }
                    th scope="col" { "Position" }
                    th scope="col" { "Fait" }
                    th scope="col" { "Auteur" }
                    th scope="col" { "Survenu (Paris)" }
                    th scope="col" { "Enregistré (Paris)" }
                    th scope="col" { "Commande" }
                    th scope="col" { "Empreinte" }
                } }
                tbody {
                    @for e in &events {
                        tr data-version=(e.stream_version) {
                            td { (e.stream_version) }
                            td { (e.position) }
                            td { (fr::event(&e.event_type)) " " small { "(" (e.event_type) " v" (e.event_version) ")" } }
                            td { (e.actor) @if let Some(r) = &e.reported_actor { br; small { "déclaré : " (r) } } }
                            td { (fr::datetime_short(&e.occurred_at)) }
                            td { (fr::datetime_short(&e.recorded_at)) }
                            td { code { (e.command_id) } }
                            td { code title=(e.hash.clone().unwrap_or_default()) { (e.hash.as_deref().map_or("—", |h| &h[..h.len().min(12)])) "…" } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&title, Some(who), body).into_response())
}
