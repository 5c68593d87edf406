//! The HTTP API's OpenAPI 3.1 document, served at `/openapi.json` with a reference page at
//! `/docs` (server-rendered from the same document, no script and nothing loaded from
//! elsewhere: it works on an isolated network). The document is committed as `deploy/openapi.json`
//! and a test fails when it drifts from the code.
//!
//! Each route is described by a documentation-only function below (utoipa `path`), so the
//! handlers stay free of annotations; the command envelope's and the events' schemas come from
//! the domain's schemars types (`events/schema/`).

#![allow(dead_code)]

use serde_json::{json, Value};
use utoipa::OpenApi;

const JSON: &str = "application/json";

/// `POST /commands`
#[utoipa::path(post, path = "/commands", tag = "commands",
    request_body(content = Object, description = "One command envelope (FORMAT.md): command_id, command, at, actor, data. Schema: CommandEnvelope.", content_type = "application/json"),
    responses(
        (status = 200, description = "applied (events appended) or duplicate (command_id applied before; nothing appended): {outcome, command_id, stream, positions}"),
        (status = 401, description = "no valid token"), (status = 403, description = "outside the token's rights; nothing done"),
        (status = 404, description = "rejected: not_found"), (status = 409, description = "rejected: already_exists or conflict"),
        (status = 422, description = "rejected: invalid (message names the field)"), (status = 503, description = "the journal is unreachable")),
    security(("bearer" = [])))]
fn post_commands() {}

/// `GET /cohorts/{id}/timetable`
#[utoipa::path(get, path = "/cohorts/{id}/timetable", tag = "read models",
    params(("id" = String, Path, description = "cohort id"),
        ("as_of" = Option<String>, Query, description = "RFC 3339: as recorded by then (recorded_at)"),
        ("as_of_position" = Option<i64>, Query, description = "global position: as of that event"),
        ("as_of_occurred" = Option<String>, Query, description = "RFC 3339: what had happened by then (occurred_at)"),
        ("min_position" = Option<i64>, Query, description = "answer only once the read models include this global position (a command answer's `position`); also as the Fieldtrail-Position request header"),
        ("Fieldtrail-Position" = Option<i64>, Header, description = "as min_position")),
    responses((status = 200, description = "the timetable document (FORMAT.md) with a top-level `position` (integer): the global position the read models reflect, also in the Fieldtrail-Position header (as_of answers: the document only)"), (status = 403), (status = 404), (status = 422, description = "bad as_of or min_position value"),
        (status = 503, description = "the read models did not reach min_position within the bound (FIELDTRAIL_READ_WAIT_MS, default 2000): Retry-After, and the position reached in the body")),
    security(("bearer" = [])))]
fn timetable() {}

/// `GET /cohorts/{id}/learners/{learner}/transcript`
#[utoipa::path(get, path = "/cohorts/{id}/learners/{learner}/transcript", tag = "read models",
    params(("id" = String, Path), ("learner" = String, Path),
        ("as_of" = Option<String>, Query), ("as_of_position" = Option<i64>, Query), ("as_of_occurred" = Option<String>, Query),
        ("min_position" = Option<i64>, Query, description = "as for the timetable")),
    responses((status = 200, description = "the transcript document (FORMAT.md) with a top-level `position` and the Fieldtrail-Position header, as for the timetable"), (status = 403), (status = 404), (status = 422), (status = 503, description = "min_position not reached within the bound")),
    security(("bearer" = [])))]
fn transcript() {}

/// `GET /field-studies/{id}/history`
#[utoipa::path(get, path = "/field-studies/{id}/history", tag = "read models",
    params(("id" = String, Path), ("as_of" = Option<String>, Query), ("as_of_position" = Option<i64>, Query), ("as_of_occurred" = Option<String>, Query),
        ("min_position" = Option<i64>, Query, description = "as for the timetable"),
        ("consistency" = Option<String>, Query, description = "strong: folded from the field study's stream in the journal (every committed event), not read from the stored read model; eventual (default)")),
    responses((status = 200, description = "the evaluation history document (FORMAT.md) with a top-level `position` and the Fieldtrail-Position header, as for the timetable (with consistency=strong: the global position of the stream's last event)"), (status = 403), (status = 404), (status = 422), (status = 503, description = "min_position not reached within the bound")),
    security(("bearer" = [])))]
fn history() {}

/// `GET /cohorts/{id}/complaints`
#[utoipa::path(get, path = "/cohorts/{id}/complaints", tag = "read models",
    params(("id" = String, Path, description = "cohort id"),
        ("as_of" = Option<String>, Query), ("as_of_position" = Option<i64>, Query), ("as_of_occurred" = Option<String>, Query),
        ("min_position" = Option<i64>, Query, description = "as for the timetable")),
    responses((status = 200, description = "the complaints register (FORMAT.md, second vocabulary): {cohort_id, complaints: [{complaint_id, from, subject, filed_at, answered_at, status (open|answered), days_to_answer (Europe/Paris calendar days, null while open), answer, action}]} sorted by filed_at then complaint_id, with a top-level `position` and the Fieldtrail-Position header as for the timetable; empty for a cohort without complaints. Staff and auditors read every complaint; a learner of the cohort only those they filed (from = learner:<their id>)"),
        (status = 403, description = "not staff, an auditor or a learner of the cohort"), (status = 404, description = "no such cohort (then)"), (status = 422), (status = 503, description = "min_position not reached within the bound")),
    security(("bearer" = [])))]
fn complaints() {}

/// `GET /cohorts/{id}/timetable.ics`
#[utoipa::path(get, path = "/cohorts/{id}/timetable.ics", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, description = "iCalendar (RFC 5545), text/calendar"), (status = 403), (status = 404)), security(("bearer" = [])))]
fn cohort_calendar() {}

/// `GET /cohorts/{id}/learners/{learner}/timetable.ics`
#[utoipa::path(get, path = "/cohorts/{id}/learners/{learner}/timetable.ics", tag = "exports", params(("id" = String, Path), ("learner" = String, Path)),
    responses((status = 200, description = "the learner's calendar, text/calendar"), (status = 403), (status = 404)), security(("bearer" = [])))]
fn learner_calendar() {}

/// `GET /cohorts/{id}/learners/{learner}/transcript.clr`
#[utoipa::path(get, path = "/cohorts/{id}/learners/{learner}/transcript.clr", tag = "exports", params(("id" = String, Path), ("learner" = String, Path)),
    responses((status = 200, description = "1EdTech CLR 2.0 credential (the JSON document; its signed form is transcript.jwt), application/ld+json"), (status = 403), (status = 404)), security(("bearer" = [])))]
fn clr() {}

/// `GET /cohorts/{id}/learners/{learner}/transcript.jwt`
#[utoipa::path(get, path = "/cohorts/{id}/learners/{learner}/transcript.jwt", tag = "exports", params(("id" = String, Path), ("learner" = String, Path)),
    responses((status = 200, description = "the CLR 2.0 credential secured as a VC-JWT (JWS compact, EdDSA; header kid = the issuer's did:web URL of the key), application/vc+jwt", content_type = "application/vc+jwt"), (status = 403), (status = 404),
        (status = 503, description = "no signing key (fieldtrail keys init)")), security(("bearer" = [])))]
fn clr_jwt() {}

/// `GET /.well-known/jwks.json`
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "signing",
    responses((status = 200, description = "every trusted signing key ever used (the keys directory's, and those the journal keeps that a chain of endorsements leads to from it or from a pinned root, FIELDTRAIL_SIGNING_ROOT), as a JWK Set (RFC 7517; Ed25519, RFC 8037), application/jwk-set+json; no token needed"),
        (status = 503, description = "no signing key anywhere (fieldtrail keys init), or a damaged keys directory; never an empty set")))]
fn jwks() {}

/// `GET /.well-known/did.json`
#[utoipa::path(get, path = "/.well-known/did.json", tag = "signing",
    responses((status = 200, description = "the issuer's did:web DID document: every trusted key ever used (as the JWK Set) as a JsonWebKey2020 assertionMethod, a retired one marked `retired` (its time), application/did+json; no token needed"),
        (status = 503, description = "no signing key anywhere (fieldtrail keys init)")))]
fn did_document() {}

/// `GET /credentials/status/{cohort}`
#[utoipa::path(get, path = "/credentials/status/{cohort}", tag = "signing", params(("cohort" = String, Path)),
    responses((status = 200, description = "the cohort's revocation list: a BitstringStatusListCredential (W3C Bitstring Status List v1.0) as a VC-JWT, application/vc+jwt; no token needed", content_type = "application/vc+jwt"),
        (status = 404, description = "no such cohort"), (status = 503, description = "no signing key")))]
fn status_list() {}

/// `GET /audit/digests`
#[utoipa::path(get, path = "/audit/digests", tag = "audit",
    responses((status = 200, description = "{digests: [{digest_id, tx_id, position, events, digest, head_hash, signed_at, key_id, jws}]}: every signed digest of the journal's head kept, oldest first"), (status = 403)), security(("bearer" = [])))]
fn audit_digests() {}

/// `GET /audit/digests/{id}`
#[utoipa::path(get, path = "/audit/digests/{id}", tag = "audit", params(("id" = i64, Path)),
    responses((status = 200, description = "the signed digest as a JWS (application/jwt): the file `fieldtrail audit verify --digest` checks offline", content_type = "application/jwt"), (status = 403), (status = 404), (status = 422, description = "not a number")), security(("bearer" = [])))]
fn audit_digest() {}

/// `GET /subjects/{subject_id}/export`
#[utoipa::path(get, path = "/subjects/{subject_id}/export", tag = "personal data", params(("subject_id" = String, Path, description = "learner:<id>, field_study:<id>, jury:<field_study_id> or complaint:<cohort_id>:<complaint_id>")),
    responses((status = 200, description = "subject access (RGPD article 15): every personal datum of the subject and every event about it, decrypted ([effacé] once erased); staff, or the learner themself"), (status = 403), (status = 422, description = "not a subject id")), security(("bearer" = [])))]
fn subject_export() {}

/// `GET /events/{stream_type}/{stream_id}/{stream_version}`
#[utoipa::path(get, path = "/events/{stream_type}/{stream_id}/{stream_version}", tag = "personal data", params(("stream_type" = String, Path, description = "programme, cohort, field_study or subject"), ("stream_id" = String, Path), ("stream_version" = i64, Path, description = "1, 2, ...")),
    responses((status = 200, description = "one event, the body of its NATS message, its personal fields in clear ([effacé] once erased): how a subscriber reads what the bus carries sealed; staff and auditors"), (status = 403), (status = 404, description = "unknown stream type or event"), (status = 422, description = "not a positive version")), security(("bearer" = [])))]
fn event_in_clear() {}

/// `GET /cohorts/{id}/learners/{learner}/clr.json`
#[utoipa::path(get, path = "/cohorts/{id}/learners/{learner}/clr.json", tag = "exports", params(("id" = String, Path), ("learner" = String, Path)),
    responses((status = 200, description = "same as transcript.clr"), (status = 403), (status = 404)), security(("bearer" = [])))]
fn clr_json() {}

/// `GET /field-studies/{id}/xapi`
#[utoipa::path(get, path = "/field-studies/{id}/xapi", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, description = "xAPI 1.0.3 statements of the field study's evaluative events"), (status = 403), (status = 404)), security(("bearer" = [])))]
fn xapi() {}

/// `GET /audit/streams/{type}/{id}`
#[utoipa::path(get, path = "/audit/streams/{type}/{id}", tag = "audit", params(("type" = String, Path), ("id" = String, Path),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("actor" = Option<String>, Query)),
    responses((status = 200, description = "every event of the stream with its full envelope"), (status = 403), (status = 404), (status = 422)), security(("bearer" = [])))]
fn audit_stream() {}

/// `GET /audit/actors/{actor}`
#[utoipa::path(get, path = "/audit/actors/{actor}", tag = "audit", params(("actor" = String, Path)),
    responses((status = 200, description = "what one actor did"), (status = 403)), security(("bearer" = [])))]
fn audit_actor() {}

/// `GET /audit/cohorts/{id}/attendance`
#[utoipa::path(get, path = "/audit/cohorts/{id}/attendance", tag = "audit", params(("id" = String, Path), ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "attendance register with corrections and anomaly flags"), (status = 403), (status = 404)), security(("bearer" = [])))]
fn audit_attendance() {}

/// `GET /research/trajectories`
#[utoipa::path(get, path = "/research/trajectories", tag = "research",
    params(("format" = Option<String>, Query, description = "csv, jsonl or parquet"), ("shape" = Option<String>, Query, description = "long, wide or summary"), ("cohort" = Option<String>, Query)),
    responses((status = 200, description = "pseudonymised trajectories"), (status = 403), (status = 409, description = "cohort below the minimum size"), (status = 503, description = "no pseudonym key configured")), security(("bearer" = [])))]
fn research() {}

/// `GET /research/trajectories/dictionary`
#[utoipa::path(get, path = "/research/trajectories/dictionary", tag = "research",
    responses((status = 200, description = "the data dictionary: column, type, unit, meaning"), (status = 403)), security(("bearer" = [])))]
fn research_dictionary() {}

/// `GET /events/stream`
#[utoipa::path(get, path = "/events/stream", tag = "events",
    params(
        ("after" = Option<i64>, Query, description = "global position to resume after (default 0: from the first event); the Last-Event-ID header wins over it"),
        ("Last-Event-ID" = Option<i64>, Header, description = "sent by a reconnecting EventSource: the id (global position) of the last event received"),
        ("stream_type" = Option<String>, Query, description = "comma-separated stream types (programme, cohort, field_study)"),
        ("event_type" = Option<String>, Query, description = "comma-separated event types, e.g. session_held,attendance_recorded"),
        ("token" = Option<String>, Query, description = "the API token, for EventSource (which cannot send Authorization)")),
    responses(
        (status = 200, description = "text/event-stream: one message per event in global-log order, `id:` its global position, `data:` the event envelope as on NATS (AsyncAPI: channel /events/stream); a keep-alive comment every 15 s", content_type = "text/event-stream"),
        (status = 403, description = "not a staff, auditor or dashboard token"),
        (status = 422, description = "a parameter is not a position or a known stream type")),
    security(("bearer" = [])))]
fn event_stream() {}

/// `GET /healthz`
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive; postgres, nats, projector and relay roles")))]
fn healthz() {}

/// `GET /readyz`
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready: the body says what is wrong")))]
fn readyz() {}

/// `GET /metrics`
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition")))]
fn metrics() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldtrail",
        description = "The system of record of a training certificate: commands in, read models, exports and audit out. Every route but /healthz, /readyz, /metrics, /.well-known/jwks.json, /.well-known/did.json and /credentials/status/{cohort} needs `Authorization: Bearer ftk_…` (README: roles)."
    ),
    paths(
        post_commands,
        timetable,
        transcript,
        history,
        complaints,
        cohort_calendar,
        learner_calendar,
        clr,
        clr_json,
        clr_jwt,
        xapi,
        audit_stream,
        audit_actor,
        audit_attendance,
        audit_digests,
        audit_digest,
        subject_export,
        event_in_clear,
        jwks,
        did_document,
        status_list,
        research,
        research_dictionary,
        event_stream,
        healthz,
        readyz,
        metrics
    )
)]
struct Api;

/// The OpenAPI document as JSON: the routes above, the bearer scheme, and the schemas of the
/// command envelope, every command's data and every event (from the domain's types).
pub fn document() -> Value {
    let mut doc = serde_json::to_value(Api::openapi()).unwrap_or_else(|_| json!({}));
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let mut schemas = serde_json::Map::new();
    schemas.insert(
        "CommandEnvelope".into(),
        schemars::schema_for!(fieldtrail_domain::CommandEnvelope).to_value(),
    );
    for (name, schema) in fieldtrail_domain::schema::event_schemas() {
        schemas.insert(name.trim_end_matches(".json").replace('.', "_"), schema);
    }
    doc["components"]["schemas"] = Value::Object(schemas);
    doc["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer", "description": "an API token ftk_… (fieldtrail token create)"}});
    doc
}

/// The `/docs` page: every route of the OpenAPI document (method, path, summary, description),
/// rendered on the server in French, with a link to `/openapi.json` for tools.
pub fn docs_page() -> String {
    let doc = document();
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    maud::html! {
        (maud::DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                title { "fieldtrail — référence de l'API HTTP" }
            }
            body {
                main {
                    h1 { "fieldtrail — référence de l'API HTTP" }
                    p {
                        "Version " (text(&doc["info"]["version"])) ". Le document OpenAPI complet (schémas compris) : "
                        a href="/openapi.json" { "/openapi.json" } "."
                    }
                    @for (path, item) in paths {
                        @for (method, operation) in item.as_object().unwrap_or(&empty) {
                            section {
                                h2 { code { (method.to_uppercase()) " " (path) } }
                                @let summary = text(&operation["summary"]);
                                @if !summary.is_empty() { p { strong { (summary) } } }
                                @let description = text(&operation["description"]);
                                @if !description.is_empty() { p { (description) } }
                            }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The AsyncAPI 2.6 document of the event stream (committed as `deploy/asyncapi.json`): the
/// JetStream stream, the subject hierarchy `fieldtrail.<stream type>.<stream id>.<event type>`,
/// the headers, and one message per event type whose payload is the envelope with that event's
/// schema (`events/schema/<event_type>.v<version>.json`).
pub fn asyncapi() -> Value {
    let schemas = fieldtrail_domain::schema::event_schemas();
    let mut messages = serde_json::Map::new();
    let mut refs = Vec::new();
    for (file, schema) in &schemas {
        if file == "envelope.json" {
            continue;
        }
        let event_type = schema["title"].as_str().unwrap_or_default().to_owned();
        let stream_type = schema["x-stream-type"].as_str().unwrap_or_default();
        let version = schema["x-event-version"].as_str().unwrap_or_default();
        messages.insert(
            event_type.clone(),
            json!({
                "name": event_type,
                "title": event_type,
                "summary": schema["description"],
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/headers"},
                "payload": {"allOf": [
                    {"$ref": "../events/schema/envelope.json"},
                    {"properties": {
                        "stream_type": {"const": stream_type},
                        "event_type": {"const": event_type},
                        "event_version": {"const": version},
                        "payload": {"$ref": format!("../events/schema/{file}")}
                    }}
                ]},
                "x-subject": format!("fieldtrail.{stream_type}.{{stream_id}}.{event_type}")
            }),
        );
        refs.push(json!({"$ref": format!("#/components/messages/{event_type}")}));
    }
    let header = |d: &str| json!({"type": "string", "description": d});
    json!({
        "asyncapi": "2.6.0",
        "info": {
            "title": "fieldtrail events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every committed event, published once it is committed (at least once; deduplicate by event id or by stream and stream version). Order is the journal's within each stream."
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {"url": "nats://127.0.0.1:4222", "protocol": "nats", "description": "NATS with JetStream; stream FIELDTRAIL on subjects fieldtrail.>, duplicate window 2 minutes."},
            "http": {"url": "http://127.0.0.1:8080", "protocol": "http", "description": "fieldtrail serve: Server-Sent Events on GET /events/stream, on both backends and without NATS."}
        },
        "channels": {
            "/events/stream": {
                "description": "Server-Sent Events (text/event-stream): every event in global-log order, exactly once per connection; `id:` is its global position, so a reconnecting EventSource resumes with Last-Event-ID. `data:` is the same envelope as the NATS message body. Query: after=<position>, stream_type=<list>, event_type=<list>, token=<API token>. Staff, auditor and dashboard tokens.",
                "servers": ["http"],
                "subscribe": {"operationId": "followEventStream", "message": {"oneOf": refs.clone()}},
                "bindings": {"http": {"type": "request", "method": "GET", "bindingVersion": "0.1.0"}}
            },
            "fieldtrail.{stream_type}.{stream_id}.{event_type}": {
                "description": "One subject per event: the stream it belongs to and its type. Subscribe to fieldtrail.> for everything, fieldtrail.cohort.<id>.> for one cohort.",
                "parameters": {
                    "stream_type": {"schema": {"enum": ["programme", "cohort", "field_study"]}},
                    "stream_id": {"schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}},
                    "event_type": {"schema": {"type": "string"}}
                },
                "servers": ["nats"],
                "subscribe": {"operationId": "receiveEvent", "message": {"oneOf": refs}},
                "bindings": {"nats": {"bindingVersion": "0.1.0"}}
            }
        },
        "components": {
            "messages": messages,
            "schemas": {"headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": header("the event id (JetStream deduplication)"),
                    "ce-specversion": header("1.0"),
                    "ce-id": header("the event id"),
                    "ce-source": header("/fieldtrail/<subject prefix>"),
                    "ce-type": header("org.fieldtrail.<event type>.v<version>"),
                    "ce-time": header("occurred_at, RFC 3339 UTC with microseconds"),
                    "ce-subject": header("<stream type>/<stream id>"),
                    "ce-datacontenttype": header("application/json"),
                    "Fieldtrail-Recorded-At": header("recorded_at, RFC 3339 UTC with microseconds"),
                    "Fieldtrail-Position": header("global position"),
                    "Fieldtrail-Stream-Version": header("version within the stream"),
                    "Fieldtrail-Event-Type": header("event type"),
                    "Fieldtrail-Event-Version": header("event version")
                }
            }}
        }
    })
}

#[cfg(test)]
mod drift {
    //! `deploy/openapi.json` and `deploy/asyncapi.json` must equal what the code describes.
    //! After a deliberate change: `FIELDTRAIL_UPDATE_SCHEMAS=1 cargo test -p fieldtrail openapi`.

    use std::path::PathBuf;

    fn check(name: &str, generated: serde_json::Value) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(name);
        if std::env::var("FIELDTRAIL_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&generated).unwrap() + "\n",
            )
            .unwrap();
        }
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            committed == generated,
            "{name} drifted: regenerate with FIELDTRAIL_UPDATE_SCHEMAS=1"
        );
    }

    #[test]
    fn committed_openapi_equals_the_code() {
        check("openapi.json", super::document());
    }

    #[test]
    fn committed_asyncapi_equals_the_code_and_names_every_event() {
        let doc = super::asyncapi();
        let messages = doc["components"]["messages"].as_object().unwrap();
        assert_eq!(
            messages.len(),
            fieldtrail_domain::schema::event_schemas().len() - 1
        );
        check("asyncapi.json", doc);
    }

    #[test]
    fn every_route_is_described() {
        let doc = super::document();
        for path in [
            "/commands",
            "/cohorts/{id}/timetable",
            "/cohorts/{id}/complaints",
            "/audit/streams/{type}/{id}",
            "/research/trajectories",
            "/metrics",
            "/events/stream",
            "/cohorts/{id}/learners/{learner}/transcript.jwt",
            "/.well-known/jwks.json",
            "/.well-known/did.json",
            "/credentials/status/{cohort}",
            "/audit/digests",
            "/audit/digests/{id}",
            "/subjects/{subject_id}/export",
            "/events/{stream_type}/{stream_id}/{stream_version}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path}");
        }
    }
}
