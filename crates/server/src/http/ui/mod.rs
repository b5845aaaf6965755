//! The web inbox: one page (`GET /`) and its assets (`GET /ui/{file}`), plain HTML, CSS and
//! JavaScript compiled into the binary (no build step, no CDN). The page is a client of the
//! JSON API (docs/API.md), logged in with the session cookie and sending the CSRF token
//! header on every change.
//!
//! Every answer here carries a strict Content-Security-Policy: scripts only from this server
//! (`script-src 'self'`, no inline script, no `eval`), styles only from this server, no
//! plugin, no framing by another site. Mail HTML is never part of this page: it is shown in a
//! sandboxed iframe (no `allow-scripts`, no `allow-same-origin`) that loads
//! `/api/messages/{mailbox}/{id}/html`, served under its own policy
//! ([`crate::http::api::messages::MAIL_HTML_CSP`]) that allows neither script nor remote
//! content. The page builds its DOM with `textContent`, never with mail text as HTML.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The page's policy: everything from this server only; frames only of this server (the
/// mail HTML view); no `<base>`, no form posts elsewhere, not framed by anyone.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");
const ICON: &str = include_str!("icon.svg");

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with no-referrer a browser sends `Origin: null` on the
    // page's own POSTs, and the CSRF check wants this server's origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /`: the web inbox.
pub async fn index() -> Response {
    page(INDEX, "text/html; charset=utf-8")
}

/// `GET /ui/{file}`: the page's script, style sheet and icon.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    Ok(match file.as_str() {
        "app.js" => page(APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => page(APP_CSS, "text/css; charset=utf-8"),
        "icon.svg" => page(ICON, "image/svg+xml"),
        _ => {
            return Err(ApiError::not_found(
                format!("no file {file:?} in the web inbox"),
                "open / for the web inbox",
            ))
        }
    })
}
