//! The HTTP listener and its JSON REST API (docs/API.md): one HTTP/1.1 connection per accepted
//! socket, served by axum's router over hyper, inside the same accept loop, connection limits,
//! TLS and shutdown as every other listener (`crate::accept_loop`, `crate::run_session`).
//!
//! - [`auth`]: login (`POST /api/login`, checked like IMAP's LOGIN), the session cookie, CSRF
//!   checks, `Authorization: Basic`, the admin role.
//! - [`api`]: one module per resource (mailboxes, messages).
//! - [`metrics`]: `GET /metrics`, who may read it.
//! - [`ui`]: the web inbox (`GET /`, `/ui/...`), a page of this API compiled into the binary.
//! - [`error`]: [`ApiError`], the one place an error becomes an HTTP reply
//!   (`{"error": "...", "hint": "..."}` with its status).
//!
//! Every handler acts through a [`auth::User`], which carries its account; mailboxes are looked
//! up by (account, name), so nothing of one account is reachable from another (DESIGN.md
//! principle 12).

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, patch, post};
use axum::Router;
use tokio::sync::watch;

pub use auth::HttpShared;
pub use error::ApiError;

use crate::{conn, ListenerKind, Shared};

/// What every request of one connection can reach.
#[derive(Clone)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    /// The connection runs over TLS (the `https` listener): cookies get `Secure`.
    pub tls: bool,
    /// Becomes true when the server shuts down (ends event streams).
    pub shutdown: watch::Receiver<bool>,
}

/// The API's routes.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/mailboxes", get(api::mailboxes::list))
        .route("/api/mailboxes/{name}/messages", get(api::messages::list))
        .route(
            "/api/messages/{mailbox}/{id}",
            get(api::messages::get_one)
                .delete(api::messages::delete)
                .patch(api::messages::patch),
        )
        .route("/api/messages/{mailbox}/{id}/raw", get(api::messages::raw))
        .route(
            "/api/messages/{mailbox}/{id}/parts/{section}",
            get(api::messages::part),
        )
        .route(
            "/api/messages/{mailbox}/{id}/move",
            post(api::messages::move_to),
        )
        .route("/api/events", get(api::events::events))
        .route("/api/queue", get(api::queue::list))
        .route("/api/queue/{id}", delete(api::queue::remove))
        .route("/api/queue/{id}/retry", post(api::queue::retry))
        .route(
            "/api/accounts",
            get(api::accounts::list).post(api::accounts::add),
        )
        .route(
            "/api/accounts/{address}",
            patch(api::accounts::change).delete(api::accounts::remove),
        )
        .route("/api/send", api::send::route(&ctx.shared.config))
        .route(
            "/api/messages/{mailbox}/{id}/html",
            get(api::messages::html),
        )
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        // Issue 17: the Prometheus metrics and the recorded SMTP dialogue of a message.
        .route("/metrics", get(metrics::get))
        .route(
            "/api/messages/{mailbox}/{id}/transcript",
            get(api::transcript::get),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(ctx)
}

/// The largest request body (JSON requests are small; sending with attachments will get its
/// own limit from `limits.max_message_size`).
pub const MAX_BODY: usize = 1024 * 1024;

/// Errors made by axum itself rather than a handler (a body over [`MAX_BODY`], a path that is
/// not UTF-8) come as text; they are turned into the API's JSON errors here.
async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        return resp;
    }
    let (error, hint) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            format!("the request body is larger than {MAX_BODY} octets"),
            "send less".to_string(),
        ),
        s => (
            s.canonical_reason().unwrap_or("bad request").to_lowercase(),
            "see docs/API.md for what each endpoint takes".to_string(),
        ),
    };
    ApiError::new(status, error, hint).into_response()
}

/// `GET /healthz`: the process answers and the store is open.
async fn healthz(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
) -> Result<&'static str, ApiError> {
    let store = ctx.shared.store.clone();
    tokio::task::spawn_blocking(move || store.list_domains())
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(ApiError::from)?;
    Ok("ok\n")
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint", "see docs/API.md for the endpoints")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method",
        "see docs/API.md for the methods of each endpoint",
    )
}

/// Serves one accepted connection (TLS already done for `https`) until the client closes it,
/// it stays idle past the header timeout, or the server shuts down (then the request under
/// way finishes and the connection closes: graceful).
pub async fn run_connection(
    kind: ListenerKind,
    stream: conn::Stream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A client must send its request head within this time, also between keep-alive
    // requests (a slow-loris one holds a connection slot only this long).
    let head_timeout = shared
        .config
        .limits
        .idle_timeout
        .min(Duration::from_secs(60));
    let ctx = Ctx {
        shared,
        peer,
        tls: kind.implicit_tls(),
        shutdown: shutdown.clone(),
    };
    let service = hyper_util::service::TowerToHyperService::new(router(ctx));
    let io = hyper_util::rt::TokioIo::new(stream);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(64 * 1024)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
        }
    }
}
