//! `GET /api/messages/{mailbox}/{id}/transcript`: the SMTP dialogue of the session that
//! delivered a message, as the store kept it with the message (`crate::transcript`): C:/S:
//! lines with passwords and SASL responses masked, the data as one `<message, N octets>` line.
//!
//! The shape is fixed (the web inbox renders it):
//! `{"lines": [{"dir": "C"|"S", "text": "..."}], "truncated": bool, "peer": "...",
//! "listener": "..."}`. A message that came another way (IMAP APPEND, a bounce, mail stored
//! before transcripts were kept) has none: 404. The message is found through the user's own
//! mailbox, so another account's id is 404 like a missing one.

use axum::extract::{Path, State};
use axum::Json;
use mailroom_store::MessageRef;
use serde::Serialize;

use crate::http::api::messages::message;
use crate::http::auth::User;
use crate::http::error::{blocking, ApiError};
use crate::http::Ctx;

#[derive(Serialize)]
pub struct Line {
    pub dir: &'static str,
    pub text: String,
}

#[derive(Serialize)]
pub struct TranscriptJson {
    pub lines: Vec<Line>,
    pub truncated: bool,
    pub peer: String,
    pub listener: String,
}

/// `GET /api/messages/{mailbox}/{id}/transcript`.
pub async fn get(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<TranscriptJson>, ApiError> {
    let (mb, uid) = message(&ctx, &user, &name, &id).await?;
    let store = ctx.shared.store.clone();
    let r = MessageRef::Mailbox {
        mailbox: mb.id,
        uid,
    };
    let t = blocking(move || store.message_transcript(r))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "no SMTP dialogue was kept for this message",
                "only messages accepted by an SMTP listener have one (not IMAP APPEND, bounces, or mail stored before transcripts were kept, or with [trace] record_smtp = false)",
            )
        })?;
    Ok(Json(TranscriptJson {
        lines: t
            .lines
            .into_iter()
            .map(|(d, text)| Line {
                dir: d.letter(),
                text,
            })
            .collect(),
        truncated: t.truncated,
        peer: t.peer,
        listener: t.listener,
    }))
}
