//! `GET /api/mailboxes`: the account's mailboxes with their counts.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::http::auth::User;
use crate::http::error::{blocking, ApiError};
use crate::http::Ctx;

#[derive(Serialize)]
pub struct MailboxJson {
    pub name: String,
    pub uidvalidity: u32,
    pub special_use: Option<String>,
    pub messages: u64,
    pub unseen: u64,
    pub size: u64,
}

/// `GET /api/mailboxes`.
pub async fn list(State(ctx): State<Ctx>, user: User) -> Result<Json<Vec<MailboxJson>>, ApiError> {
    let store = ctx.shared.store.clone();
    let account = user.account.id;
    let out = blocking(move || {
        let mut out = Vec::new();
        for mb in store.list_mailboxes(account)? {
            let c = store.mailbox_counts(mb.id)?;
            out.push(MailboxJson {
                name: mb.name,
                uidvalidity: mb.uidvalidity,
                special_use: mb.special_use,
                messages: c.messages,
                unseen: c.unseen,
                size: c.size,
            });
        }
        Ok(out)
    })
    .await?;
    Ok(Json(out))
}
