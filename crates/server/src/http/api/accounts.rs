//! Accounts, for administrators: `GET /api/accounts` (each with its storage use and limit),
//! `POST /api/accounts {address, password, quota?}`, `PATCH /api/accounts/{address}
//! {password?, quota?}`, `DELETE /api/accounts/{address}` (the account and all its mail).
//! The same store calls as `mailroom user add|list|passwd|quota|remove`: the password is hashed
//! (argon2) by the store's `hash_password`, the address must be one SMTP accepts (RFC 5321
//! §4.1.2, so mail can reach it), and an account of the config's `[[accounts]]` is flagged as
//! the CLI does (the server applies those entries at every start).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailroom_store::{password, Account, MailStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::delivery::{quota_limit, QuotaSource};
use crate::http::auth::Admin;
use crate::http::error::{blocking, json_body, ApiError};
use crate::http::Ctx;

/// Longest password taken (as the login's limit).
const MAX_PASSWORD: usize = 1024;

#[derive(Serialize)]
pub struct AccountJson {
    pub address: String,
    /// Octets its messages take.
    pub used: u64,
    /// The limit that applies in octets (`null`: none).
    pub quota: Option<u64>,
    /// Where the limit comes from: "config" (`[[accounts]] quota`), "account" (set here or
    /// with `mailroom user quota`), "default" (`limits.account_quota`).
    pub quota_source: &'static str,
    /// The account is an `[[accounts]]` entry of the config (its password and quota there win
    /// at the next start).
    pub in_config: bool,
    pub admin: bool,
}

fn in_config(config: &Config, address: &str) -> bool {
    config
        .accounts
        .iter()
        .any(|c| c.address.trim().eq_ignore_ascii_case(address.trim()))
}

fn account_json(
    store: &dyn MailStore,
    config: &Config,
    a: &Account,
) -> Result<AccountJson, StoreError> {
    let (quota, source) = quota_limit(config, a);
    Ok(AccountJson {
        address: a.address.clone(),
        used: store.account_usage(a.id)?,
        quota,
        quota_source: match source {
            QuotaSource::Config => "config",
            QuotaSource::Store => "account",
            QuotaSource::Default => "default",
        },
        in_config: in_config(config, &a.address),
        admin: config.http.is_admin(&a.address),
    })
}

fn no_account(address: &str) -> ApiError {
    ApiError::not_found(
        format!("no account {address:?}"),
        "GET /api/accounts lists the accounts",
    )
}

/// A quota as JSON gives it: octets (a number), a size (`"10M"`, `"1G"`), or `null` / `"none"`
/// for the default (`limits.account_quota`). 0 means unlimited.
#[derive(Deserialize)]
#[serde(untagged)]
enum QuotaIn {
    Octets(u64),
    Text(String),
}

fn parse_quota(q: Option<QuotaIn>) -> Result<Option<u64>, ApiError> {
    match q {
        None => Ok(None),
        Some(QuotaIn::Octets(n)) => Ok(Some(n)),
        Some(QuotaIn::Text(t)) if t.trim().eq_ignore_ascii_case("none") => Ok(None),
        Some(QuotaIn::Text(t)) => crate::config::parse_size(&t).map(Some).map_err(|e| {
            ApiError::bad_request(
                format!("quota {t:?} is not a size: {e}"),
                "give octets (1048576), a size (\"10M\", \"1G\"), 0 for unlimited, or null for the default",
            )
        }),
    }
}

fn check_password(pw: &str) -> Result<(), ApiError> {
    if pw.is_empty() || pw.len() > MAX_PASSWORD || pw.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(
            "the password is empty, too long or holds control characters",
            format!("give a password of 1 to {MAX_PASSWORD} octets without line breaks"),
        ));
    }
    Ok(())
}

async fn hash(pw: String) -> Result<String, ApiError> {
    // Argon2 takes tens of milliseconds: off the async threads.
    blocking(move || password::hash_password(&pw)).await
}

/// `GET /api/accounts`.
pub async fn list(
    State(ctx): State<Ctx>,
    _admin: Admin,
) -> Result<Json<Vec<AccountJson>>, ApiError> {
    let shared = ctx.shared.clone();
    let out = blocking(move || {
        let store = shared.store.as_ref();
        store
            .list_accounts()?
            .iter()
            .map(|a| account_json(store, &shared.config, a))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    address: String,
    password: String,
    #[serde(default)]
    quota: Option<QuotaIn>,
}

/// `POST /api/accounts {address, password, quota?}`: 201 with the account.
pub async fn add(
    State(ctx): State<Ctx>,
    Admin(admin): Admin,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: NewAccount = json_body(&body)?;
    let address = b.address.trim().to_string();
    // RFC 5321 §4.1.2: an address SMTP takes, or mail could never reach the account.
    if let Err(e) = mailroom_proto::smtp::Address::parse(&address) {
        return Err(ApiError::bad_request(
            format!("{address:?} is not an address: {e}"),
            "give an address like alice@example.test",
        ));
    }
    if address.starts_with('"') || address.contains('[') {
        return Err(ApiError::bad_request(
            format!("{address:?} is not an address an account can have"),
            "give a plain address like alice@example.test (no quoted local part, no address literal)",
        ));
    }
    check_password(&b.password)?;
    let quota = parse_quota(b.quota)?;
    let hashed = hash(b.password).await?;
    let shared = ctx.shared.clone();
    let a = address.clone();
    let out = blocking(move || {
        let store = shared.store.as_ref();
        if store.find_account(&a)?.is_some() {
            return Err(StoreError::Exists(format!("account {a}")));
        }
        store.add_account(&a, &hashed)?;
        if quota.is_some() {
            store.set_quota(&a, quota)?;
        }
        let acct = store
            .find_account(&a)?
            .ok_or_else(|| StoreError::NotFound(a.clone()))?;
        account_json(store, &shared.config, &acct)
    })
    .await
    .map_err(|e| {
        if e.status == StatusCode::CONFLICT {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("{address} already exists"),
                "change its password with PATCH /api/accounts/{address} {\"password\": ...}",
            )
        } else {
            e
        }
    })?;
    tracing::info!(admin = %admin.account.address, account = %out.address, "http: account added");
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeAccount {
    #[serde(default)]
    password: Option<String>,
    /// Absent: unchanged; `null` or "none": back to the default.
    #[serde(default, deserialize_with = "some_quota")]
    quota: Option<Option<QuotaIn>>,
}

/// Tells a `"quota": null` (back to the default) from no `quota` at all (unchanged).
fn some_quota<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<QuotaIn>>, D::Error> {
    Option::<QuotaIn>::deserialize(d).map(Some)
}

/// `PATCH /api/accounts/{address} {password?, quota?}`.
pub async fn change(
    State(ctx): State<Ctx>,
    Admin(admin): Admin,
    Path(address): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: ChangeAccount = json_body(&body)?;
    if b.password.is_none() && b.quota.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change",
            "give \"password\", \"quota\" or both",
        ));
    }
    if let Some(pw) = &b.password {
        check_password(pw)?;
    }
    let quota = b.quota.map(parse_quota).transpose()?;
    let shared = ctx.shared.clone();
    let a = address.clone();
    let account = blocking(move || shared.store.find_account(&a))
        .await?
        .ok_or_else(|| no_account(&address))?;
    let configured = ctx
        .shared
        .config
        .accounts
        .iter()
        .find(|c| c.address.trim().eq_ignore_ascii_case(&account.address));
    if quota.is_some() {
        if let Some(q) = configured.and_then(|c| c.quota) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} has quota = {q} in its [[accounts]] entry of the config, which wins",
                    account.address
                ),
                "change it in the server's config file (nothing changed)",
            ));
        }
    }
    let mut warnings = Vec::new();
    if b.password.is_some() && configured.is_some() {
        warnings.push(format!(
            "{} has its password in its [[accounts]] entry of the config: the server sets that password again at its next start unless it is changed there too",
            account.address
        ));
    }
    let hashed = match b.password {
        Some(pw) => Some(hash(pw).await?),
        None => None,
    };
    let shared = ctx.shared.clone();
    let addr = account.address.clone();
    let out = blocking(move || {
        let store = shared.store.as_ref();
        if let Some(h) = &hashed {
            store.set_password(&addr, h)?;
        }
        if let Some(q) = quota {
            store.set_quota(&addr, q)?;
        }
        let acct = store
            .find_account(&addr)?
            .ok_or_else(|| StoreError::NotFound(addr.clone()))?;
        account_json(store, &shared.config, &acct)
    })
    .await
    .map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            no_account(&account.address)
        } else {
            e
        }
    })?;
    tracing::info!(admin = %admin.account.address, account = %out.address, "http: account changed");
    let mut v = serde_json::to_value(out).map_err(|_| ApiError::internal())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("warnings".into(), serde_json::json!(warnings));
    }
    Ok(Json(v))
}

/// `DELETE /api/accounts/{address}`: the account and all its mail. An administrator cannot
/// remove the account they are logged in with (409), so the last way in is not cut by a slip.
pub async fn remove(
    State(ctx): State<Ctx>,
    Admin(admin): Admin,
    Path(address): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if address.trim().eq_ignore_ascii_case(&admin.account.address) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "you cannot remove the account you are logged in with",
            "log in as another administrator to remove it, or use `mailroom user remove`",
        ));
    }
    let shared = ctx.shared.clone();
    let a = address.clone();
    let removed = blocking(move || {
        let store = shared.store.as_ref();
        let Some(acct) = store.find_account(&a)? else {
            return Ok(None);
        };
        store.remove_account(&acct.address)?;
        Ok(Some(acct.address))
    })
    .await?
    .ok_or_else(|| no_account(&address))?;
    tracing::info!(admin = %admin.account.address, account = %removed, "http: account removed");
    let mut warnings = Vec::new();
    if in_config(&ctx.shared.config, &removed) {
        warnings.push(format!(
            "{removed} is an [[accounts]] entry of the config: the server creates it again (empty) at its next start unless the entry goes too"
        ));
    }
    Ok(Json(
        serde_json::json!({"removed": removed, "warnings": warnings}),
    ))
}
