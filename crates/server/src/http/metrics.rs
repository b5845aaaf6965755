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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Harness;
    use axum::body::Body;
    use base64::Engine;

    const TOKEN: &str = "a-long-enough-metrics-token";

    /// The status of `GET /metrics` from `peer` (a value only: nothing is sent anywhere),
    /// over TLS (so Basic passwords are allowed from any address) with `auth`.
    async fn status(h: &Harness, peer: &str, auth: Option<String>) -> StatusCode {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let ctx = Ctx {
            shared: h.shared.clone(),
            peer: peer.parse().unwrap(),
            tls: true,
            shutdown: rx,
        };
        let mut req = Request::builder().uri("/metrics");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        match get(State(ctx), req.body(Body::empty()).unwrap()).await {
            Ok(r) => r.status(),
            Err(e) => e.into_response().status(),
        }
    }

    fn basic(user: &str, pass: &str) -> Option<String> {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        Some(format!("Basic {b}"))
    }

    #[tokio::test]
    async fn loopback_is_open_elsewhere_a_token_or_an_admin_is_needed() {
        let h = Harness::new(|c| {
            c.http.admins = vec!["alice@example.test".into()];
            c.http.metrics_token = Some(TOKEN.into());
        });
        // 192.0.2.0/24 is the documentation range (RFC 5737): "another machine".
        let far = "192.0.2.7:40000";
        assert_eq!(status(&h, "127.0.0.1:40000", None).await, StatusCode::OK);
        assert_eq!(status(&h, "[::1]:40000", None).await, StatusCode::OK);
        assert_eq!(status(&h, far, None).await, StatusCode::UNAUTHORIZED);
        let bearer = |t: &str| Some(format!("Bearer {t}"));
        assert_eq!(status(&h, far, bearer(TOKEN)).await, StatusCode::OK);
        assert_eq!(
            status(&h, far, bearer("a-long-enough-metrics-tokeX")).await,
            StatusCode::FORBIDDEN
        );
        // A wrong token is refused on loopback too: it was meant for something.
        assert_eq!(
            status(&h, "127.0.0.1:40000", bearer("nope")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&h, far, basic("alice@example.test", "alice-secret")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&h, far, basic("bob@example.test", "bob-secret")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&h, far, basic("alice@example.test", "wrong")).await,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn without_a_configured_token_every_bearer_is_refused() {
        let h = Harness::new(|_| {});
        assert_eq!(
            status(
                &h,
                "192.0.2.7:1",
                Some("Bearer anything-at-all-here".into())
            )
            .await,
            StatusCode::FORBIDDEN
        );
    }
}
