//! [`ApiError`]: the API's one error-to-reply place. Every error is JSON
//! `{"error": "...", "hint": "..."}` with its status: 400 bad input, 401 not logged in, 403
//! not allowed (CSRF, not admin), 404, 409, 413, 429 too many failed logins, 503 store full or
//! unavailable.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailroom_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub hint: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, hint: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            hint: hint.into(),
        }
    }
    pub fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, hint)
    }
    pub fn not_found(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error, hint)
    }
    pub fn unauthorized(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error, hint)
    }
    pub fn forbidden(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error, hint)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            "try again; if it persists, see the server log",
        )
    }
    /// The message id named nothing (or no longer names anything) in this mailbox.
    pub fn no_message() -> Self {
        Self::not_found(
            "no such message",
            "list the mailbox again (GET /api/mailboxes/{name}/messages): it may have been moved or deleted",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_storage_full() {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server's storage is full",
                "try again later, or delete messages to free space",
            );
        }
        match e {
            StoreError::NotFound(_) => ApiError::no_message(),
            StoreError::Exists(what) => ApiError::new(
                StatusCode::CONFLICT,
                format!("{what} already exists"),
                "choose another name",
            ),
            StoreError::Invalid(what) => ApiError::bad_request(what, "check the request"),
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
                "try again in a moment",
            ),
            other => {
                tracing::warn!(error = %other, "http: store error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the mail store is unavailable",
                    "try again later; if it persists, see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "hint": self.hint});
        (self.status, axum::Json(body)).into_response()
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(ApiError::from)
}

/// Parses a JSON body, with a JSON error that says what was wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("the request body is not the JSON this endpoint takes: {e}"),
            "see docs/API.md for the fields (and send Content-Type: application/json)",
        )
    })
}
