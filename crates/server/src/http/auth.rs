//! Who is asking: login sessions (a cookie), `Authorization: Basic`, CSRF checks, the admin role.
//!
//! - `POST /api/login {address, password}` checks the password exactly as IMAP's LOGIN does
//!   ([`crate::auth::login`]: short user names, the password-checking pool and cache), under
//!   the same `auth_require_tls` policy. A failure is logged and delayed like every protocol's
//!   ([`crate::auth::note_failure`], doubling per failure from the client's address); after
//!   `10 × limits.max_auth_failures` failures from one address within
//!   `limits.auth_failure_window` logins from it get 429 without a check.
//! - The session: a random 256-bit id in the cookie `mailroom_session` (`HttpOnly`,
//!   `SameSite=Strict`, `Secure` over TLS, `Max-Age` = `[http] session_ttl`, sliding). It is
//!   kept in the store ([`mailroom_store::MailStore::session_create`]), so every node sharing
//!   the store knows it and a restart ends nobody's session; the store holds only the SHA-256
//!   of the id, the account id, a fingerprint of the account's password hash (a removed
//!   account or a changed password ends it), the CSRF token and the expiry. Expired sessions
//!   are pruned at each login; an account keeps at most
//!   [`mailroom_store::SESSIONS_PER_ACCOUNT`] (its oldest end first). The expiry slides at
//!   most once a minute per session (one store write a minute, not one per request).
//! - CSRF: a request other than GET/HEAD made with the cookie needs the session's token in
//!   `X-CSRF-Token` (returned at login) and an `Origin` (or, without one, a `Referer`) of this
//!   very host.
//! - `Authorization: Basic` (scripts, tests): checked on every request, no cookie, no CSRF
//!   token (a browser never sends it on its own to a cross-site request).

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use mailroom_store::{now_unix_ms, Account, WebSession, SESSIONS_PER_ACCOUNT};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{blocking, json_body, ApiError};
use super::Ctx;
use crate::auth::LoginError;

/// The session cookie's name.
pub const COOKIE: &str = "mailroom_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session's expiry is moved at most this often (a store write).
const SLIDE_EVERY_MS: i64 = 60_000;
/// Longest address or password read from a login.
const MAX_CREDENTIAL: usize = 1024;

/// State of the HTTP API shared by its requests. The login sessions are not here: they live
/// in the store, for every node sharing it (see the module documentation).
#[derive(Default)]
pub struct HttpShared {}

/// SHA-256 of `text`, in hex.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// What the store keeps of a password hash: enough to see that it changed.
fn fingerprint(password_hash: &str) -> String {
    sha256_hex(password_hash)
}

/// The store's key of a cookie's session id; `None` for what no login ever made (not 64
/// lowercase hex digits), which is then not looked up.
fn id_hash(id: &str) -> Option<String> {
    (id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| sha256_hex(id))
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The one who asks: an account, checked now, and whether it is an admin.
#[derive(Debug, Clone)]
pub struct User {
    pub account: Account,
    pub admin: bool,
}

#[derive(Deserialize)]
struct LoginBody {
    address: String,
    password: String,
}

fn too_many() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins from your address",
        "wait a few minutes, then log in with the right address and password",
    )
}

/// Checks a password as IMAP LOGIN does; failures are logged, counted and delayed.
async fn check_password(ctx: &Ctx, name: &str, password: &str) -> Result<Account, ApiError> {
    let shared = &ctx.shared;
    if !shared
        .config
        .auth_require_tls
        .allows(ctx.tls, ctx.peer.ip())
    {
        return Err(ApiError::forbidden(
            "passwords are only accepted over TLS here",
            "use the https listener",
        ));
    }
    if name.len() > MAX_CREDENTIAL || password.len() > MAX_CREDENTIAL {
        return Err(ApiError::bad_request(
            "address or password too long",
            format!("each is at most {MAX_CREDENTIAL} octets"),
        ));
    }
    let max = shared.config.limits.max_auth_failures.max(1) * 10;
    if shared.auth_failures.count(ctx.peer.ip()).await >= max {
        return Err(too_many());
    }
    match crate::auth::login(shared, name, password).await {
        Ok(a) => Ok(a),
        Err(LoginError::Unavailable) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "password checks are temporarily unavailable",
            "try again in a moment",
        )),
        Err(failure) => {
            let user = crate::auth::full_address(shared, name).await;
            let delay = crate::auth::note_failure(shared, "http", ctx.peer, &user, 1).await;
            tokio::time::sleep(delay).await;
            Err(match failure {
                LoginError::Ambiguous { name } => ApiError::unauthorized(
                    format!("the user name {name} is not unique here"),
                    format!("log in with your full address, like {name}@your.domain"),
                ),
                _ => {
                    ApiError::unauthorized("wrong address or password", "check both and try again")
                }
            })
        }
    }
}

fn user_of(ctx: &Ctx, account: Account) -> User {
    let admin = ctx.shared.config.http.is_admin(&account.address);
    User { account, admin }
}

/// `POST /api/login`.
pub async fn login(State(ctx): State<Ctx>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: LoginBody = json_body(&body)?;
    let account = check_password(&ctx, b.address.trim(), &b.password).await?;
    let id = random_hex();
    let csrf = random_hex();
    let ttl = ctx.shared.config.http.session_ttl;
    let now = now_unix_ms();
    let session = WebSession {
        id_hash: sha256_hex(&id),
        account: account.id,
        password_fp: fingerprint(&account.password_hash),
        csrf: csrf.clone(),
        created_ms: now,
        expires_ms: now.saturating_add(ttl_ms(ttl)),
    };
    let store = ctx.shared.store.clone();
    blocking(move || store.session_create(&session, SESSIONS_PER_ACCOUNT)).await?;
    tracing::info!(peer = %ctx.peer, user = %account.address, "http login");
    let secure = if ctx.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        ttl.as_secs()
    );
    let user = user_of(&ctx, account);
    let mut resp = Json(serde_json::json!({
        "address": user.account.address,
        "admin": user.admin,
        "csrf_token": csrf,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /api/logout`: ends the cookie's session (CSRF-checked like any change).
pub async fn logout(State(ctx): State<Ctx>, user: User, headers: HeaderMap) -> Response {
    let _ = user;
    if let Some(hash) = cookie_of(&headers).as_deref().and_then(id_hash) {
        let store = ctx.shared.store.clone();
        if let Err(e) = blocking(move || store.session_remove(&hash)).await {
            return e.into_response();
        }
    }
    let secure = if ctx.tls { "; Secure" } else { "" };
    let mut resp = Json(serde_json::json!({"logged_out": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /api/me`: who the session is.
pub async fn me(user: User) -> Json<serde_json::Value> {
    Json(serde_json::json!({"address": user.account.address, "admin": user.admin}))
}

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn ttl_ms(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

fn not_logged_in() -> ApiError {
    ApiError::unauthorized(
        "not logged in",
        "log in with POST /api/login {\"address\": ..., \"password\": ...}, or send Authorization: Basic",
    )
}

/// Constant-time comparison of two tokens.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The request's Origin (or Referer) names this very host.
fn same_origin(parts: &Parts, tls: bool) -> bool {
    let Some(host) = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let scheme = if tls { "https" } else { "http" };
    let want = format!("{scheme}://{host}");
    if let Some(o) = parts.headers.get(header::ORIGIN) {
        return o.to_str().is_ok_and(|o| o == want);
    }
    if let Some(r) = parts.headers.get(header::REFERER) {
        return r
            .to_str()
            .is_ok_and(|r| r == want || r.starts_with(&format!("{want}/")));
    }
    false
}

impl FromRequestParts<Ctx> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<User, ApiError> {
        if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
            let v = v.to_str().unwrap_or_default();
            let Some(b64) = v
                .strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
            else {
                return Err(ApiError::unauthorized(
                    "only Basic authorization is accepted",
                    "send Authorization: Basic base64(address:password), or log in with POST /api/login",
                ));
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(ApiError::bad_request(
                    "the Authorization header is not base64 of address:password",
                    "curl -u address:password builds it",
                ));
            };
            let account = check_password(ctx, name, password).await?;
            return Ok(user_of(ctx, account));
        }
        let Some(id) = cookie_of(&parts.headers) else {
            return Err(not_logged_in());
        };
        let Some(key) = id_hash(&id) else {
            return Err(not_logged_in());
        };
        let store = ctx.shared.store.clone();
        let lookup = key.clone();
        let Some(session) = blocking(move || store.session_get(&lookup)).await? else {
            return Err(not_logged_in());
        };
        let now = now_unix_ms();
        if session.expires_ms <= now {
            let store = ctx.shared.store.clone();
            blocking(move || store.session_remove(&key)).await?;
            return Err(ApiError::unauthorized(
                "your session has expired",
                "log in again",
            ));
        }
        let csrf = session.csrf.clone();
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let token = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !same(token, &csrf) {
                return Err(ApiError::forbidden(
                    "missing or wrong CSRF token",
                    "send the csrf_token that POST /api/login returned in the X-CSRF-Token header",
                ));
            }
            if !same_origin(parts, ctx.tls) {
                return Err(ApiError::forbidden(
                    "the request comes from another site (Origin/Referer is not this server)",
                    "send the request from the web inbox of this server, or use Authorization: Basic",
                ));
            }
        }
        let store = ctx.shared.store.clone();
        let account_id = session.account;
        let account = blocking(move || store.account_by_id(account_id)).await?;
        match account {
            Some(a) if same(&fingerprint(&a.password_hash), &session.password_fp) => {
                // Sliding: a session used again lasts `session_ttl` from now; the store is
                // written when the expiry would move by more than SLIDE_EVERY_MS.
                let ttl = ttl_ms(ctx.shared.config.http.session_ttl);
                let expires = now.saturating_add(ttl);
                if expires.saturating_sub(session.expires_ms) > SLIDE_EVERY_MS.min(ttl / 2) {
                    let store = ctx.shared.store.clone();
                    blocking(move || store.session_touch(&key, expires)).await?;
                }
                Ok(user_of(ctx, a))
            }
            _ => {
                let store = ctx.shared.store.clone();
                blocking(move || store.session_remove(&key)).await?;
                Err(ApiError::unauthorized(
                    "your session has ended (the account was removed or its password changed)",
                    "log in again",
                ))
            }
        }
    }
}

/// A [`User`] with the admin role (`[http] admins`); anyone else gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<Ctx> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Admin, ApiError> {
        let user = User::from_request_parts(parts, ctx).await?;
        if !user.admin {
            return Err(ApiError::forbidden(
                format!("{} is not an administrator", user.account.address),
                "this endpoint is for the accounts listed in [http] admins of the server's config",
            ));
        }
        Ok(Admin(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_a_login_could_have_made_are_looked_up_and_never_as_given() {
        let id = random_hex();
        let key = id_hash(&id).expect("a login's id");
        assert_eq!(key.len(), 64);
        assert_ne!(key, id, "the store sees the hash, not the cookie");
        assert_eq!(id_hash(&id), Some(key));
        for bad in [
            "",
            "abc",
            "../../etc/passwd",
            &"A".repeat(64),
            &"a".repeat(65),
            &"g".repeat(64),
        ] {
            assert_eq!(id_hash(bad), None, "{bad}");
        }
        assert_ne!(fingerprint("$argon2id$a"), fingerprint("$argon2id$b"));
        assert!(!fingerprint("$argon2id$a").contains("argon2"));
    }
}
