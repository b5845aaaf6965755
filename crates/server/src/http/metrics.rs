//! `GET /metrics`: the registry (`crate::metrics`) in the Prometheus text exposition format.
//!
//! Who may read it (docs/API.md): a client on a loopback address (a Prometheus or an agent on
//! the same machine) without more; from elsewhere, `Authorization: Bearer TOKEN` with
//! `[http] metrics_token`, or an admin's login (Basic or the session cookie). Anyone else gets
//! 403 (401 without any credentials). The numbers say how busy the server is and how many
//! logins fail, which is not for everyone who can reach the port.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::auth::{same, User};
use crate::http::error::ApiError;
use crate::http::Ctx;
use crate::metrics::{QueueGauges, Snapshot};

/// The content type of the text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn get(State(ctx): State<Ctx>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(token) = bearer {
        let right =
            matches!(&ctx.shared.config.http.metrics_token, Some(want) if same(token, want));
        if !right {
            return Err(ApiError::forbidden(
                "wrong metrics token",
                "send the [http] metrics_token of the server's config as Authorization: Bearer TOKEN",
            ));
        }
    } else if !ctx.peer.ip().is_loopback() {
        let user = User::from_request_parts(&mut parts, &ctx).await?;
        if !user.admin {
            return Err(ApiError::forbidden(
                "only admins may read the metrics from another machine",
                "log in as an account of [http] admins, or use [http] metrics_token",
            ));
        }
    }
    let store = ctx.shared.store.clone();
    let snap = tokio::task::spawn_blocking(move || {
        let queue = match store.queue_list() {
            Ok(entries) => Some(QueueGauges::of(&entries, mailroom_store::now_unix())),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot read the queue");
                None
            }
        };
        Snapshot {
            queue,
            writer: store.writer_stats(),
        }
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let body = ctx.shared.metrics.render(&snap);
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}
