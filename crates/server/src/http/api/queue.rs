//! The outbound queue, for administrators: `GET /api/queue` (each waiting message, its
//! recipients with their state, attempts, last error and next retry), `POST
//! /api/queue/{id}/retry` (its pending recipients are due now, and the queue runner is woken),
//! `DELETE /api/queue/{id}` (dropped without delivering or bouncing). The same store calls as
//! `mailroom queue list|flush|remove`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailroom_store::{QueueEntry, QueueId};
use serde::Serialize;

use crate::http::auth::Admin;
use crate::http::error::{blocking, ApiError};
use crate::http::Ctx;

#[derive(Serialize)]
pub struct RecipientJson {
    pub address: String,
    /// "pending", "delivered" or "failed".
    pub state: String,
    pub attempts: u32,
    /// Unix seconds of the next attempt (pending recipients).
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

#[derive(Serialize)]
pub struct EntryJson {
    pub id: i64,
    /// The envelope sender; "" for the null sender `<>` (a bounce).
    pub sender: String,
    /// Unix seconds it was queued.
    pub created: i64,
    /// Seconds since it was queued.
    pub age: i64,
    /// Attempts made so far (the most any recipient had).
    pub attempts: u32,
    /// The latest error any pending recipient got.
    pub last_error: Option<String>,
    /// The earliest next attempt of a pending recipient (Unix seconds).
    pub next_retry: Option<i64>,
    pub recipients: Vec<RecipientJson>,
}

fn entry_json(e: QueueEntry, now: i64) -> EntryJson {
    let pending = || e.recipients.iter().filter(|r| r.status == "pending");
    let next_retry = pending().map(|r| r.next_attempt).min();
    let last_error = pending()
        .chain(e.recipients.iter())
        .find_map(|r| r.last_error.clone());
    let attempts = e.recipients.iter().map(|r| r.attempts).max().unwrap_or(0);
    EntryJson {
        id: e.id.0,
        sender: e.sender,
        created: e.created,
        age: now.saturating_sub(e.created).max(0),
        attempts,
        last_error,
        next_retry,
        recipients: e
            .recipients
            .into_iter()
            .map(|r| RecipientJson {
                address: r.recipient,
                state: r.status,
                attempts: r.attempts,
                next_attempt: r.next_attempt,
                last_error: r.last_error,
            })
            .collect(),
    }
}

fn parse_queue_id(id: &str) -> Result<QueueId, ApiError> {
    match id.parse::<i64>() {
        Ok(n) if n > 0 && id.bytes().all(|b| b.is_ascii_digit()) => Ok(QueueId(n)),
        _ => Err(ApiError::bad_request(
            format!("{id:?} is not a queue entry id"),
            "a queue entry id is the number GET /api/queue gives as \"id\"",
        )),
    }
}

fn no_entry(id: QueueId) -> ApiError {
    ApiError::not_found(
        format!("no queue entry {}", id.0),
        "it may have been delivered, bounced or removed meanwhile; GET /api/queue lists what waits",
    )
}

fn map_missing(id: QueueId) -> impl Fn(ApiError) -> ApiError {
    move |e| {
        if e.status == StatusCode::NOT_FOUND {
            no_entry(id)
        } else {
            e
        }
    }
}

/// `GET /api/queue`: oldest first.
pub async fn list(State(ctx): State<Ctx>, _admin: Admin) -> Result<Json<Vec<EntryJson>>, ApiError> {
    let store = ctx.shared.store.clone();
    let mut entries = blocking(move || store.queue_list()).await?;
    entries.sort_by_key(|e| (e.created, e.id.0));
    let now = mailroom_store::now_unix();
    Ok(Json(
        entries.into_iter().map(|e| entry_json(e, now)).collect(),
    ))
}

/// `POST /api/queue/{id}/retry`: the entry's pending recipients are tried now.
pub async fn retry(
    State(ctx): State<Ctx>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_queue_id(&id)?;
    let store = ctx.shared.store.clone();
    let n = blocking(move || store.queue_retry(id))
        .await
        .map_err(map_missing(id))?;
    ctx.shared.queue_notify.notify_one();
    tracing::info!(user = %admin.account.address, entry = id.0, recipients = n, "http: queue entry retried");
    Ok(Json(serde_json::json!({"id": id.0, "retrying": n})))
}

/// `DELETE /api/queue/{id}`: drops the entry without delivering or bouncing it.
pub async fn remove(
    State(ctx): State<Ctx>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_queue_id(&id)?;
    let store = ctx.shared.store.clone();
    blocking(move || store.queue_remove(id))
        .await
        .map_err(map_missing(id))?;
    tracing::info!(user = %admin.account.address, entry = id.0, "http: queue entry removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
