//! `POST /api/send`: a message written in the web inbox (or by a script), submitted as the
//! logged-in user exactly as the submission listener would take it (RFC 6409): the same
//! recipient routing (local accounts, aliases, the outbound queue for other domains), the same
//! limits (`limits.max_message_size`, `limits.max_recipients`, each local recipient's quota,
//! the memory budget for incoming messages) and the same one durable commit
//! ([`delivery::store_accepted`]). `From:` and the envelope sender are the user's own address
//! (RFC 6409 §6.1: the MSA may enforce the submitter's identity); `Bcc` recipients get the
//! message but are not in its header.
//!
//! The body is JSON: `{"to": [...], "cc": [...], "bcc": [...], "subject": "...", "text":
//! "...", "html": "...", "attachments": [{"name", "type", "data" (base64)}]}`; each address
//! is `bob@example.test` or `Bob <bob@example.test>`, and `to`/`cc`/`bcc` may be one string.
//! Unlike SMTP, where each RCPT gets its own answer, a send is all or nothing: one recipient
//! that cannot take the message refuses the whole request, naming it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use mail_builder::headers::address::Address as BAddress;
use mail_builder::MessageBuilder;
use mailroom_store::StoreError;
use serde::Deserialize;

use crate::delivery::{self, Accepted, Route, Target};
use crate::http::auth::User;
use crate::http::error::{json_body, ApiError};
use crate::http::Ctx;

/// The request body's limit for this endpoint: a message of `max_message_size` octets with
/// its attachments in base64 (4/3 larger) and the JSON around it.
pub fn body_limit(max_message_size: u64) -> usize {
    let m = usize::try_from(max_message_size).unwrap_or(usize::MAX / 2);
    m.saturating_add(m / 3).saturating_add(64 * 1024)
}

/// The route, with its own body limit; a body over it gets a JSON 413 that names the limit.
pub fn route(config: &crate::config::Config) -> axum::routing::MethodRouter<Ctx> {
    let max = config.limits.max_message_size;
    axum::routing::post(send)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit(max)))
        .layer(axum::middleware::map_response(
            move |resp: axum::response::Response| async move {
                if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
                    && !resp
                        .headers()
                        .get(axum::http::header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
                {
                    return too_large(max).into_response();
                }
                resp
            },
        ))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentIn {
    name: String,
    #[serde(rename = "type", default)]
    content_type: Option<String>,
    /// Base64 of the file.
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    #[serde(default)]
    to: Option<OneOrMany>,
    #[serde(default)]
    cc: Option<OneOrMany>,
    #[serde(default)]
    bcc: Option<OneOrMany>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

/// One recipient as given: an optional display name and the address.
#[derive(Debug, Clone)]
struct Rcpt {
    name: Option<String>,
    address: String,
}

fn bad_address(given: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        format!("{given:?} is not an address: {why}"),
        "give each recipient as bob@example.test or \"Bob <bob@example.test>\"",
    )
}

/// `bob@example.test`, `<bob@example.test>` or `Bob <bob@example.test>`; the address must be
/// one SMTP would take in RCPT TO (RFC 5321 §4.1.2).
fn parse_rcpt(given: &str) -> Result<Rcpt, ApiError> {
    let s = given.trim();
    if s.chars().any(char::is_control) {
        return Err(bad_address(given, "it holds a control character"));
    }
    let (name, addr) = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(i), Some(inner)) => {
            let name = s[..i].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_string()),
                &inner[i + 1..],
            )
        }
        _ => (None, s),
    };
    let addr = addr.trim();
    mailroom_proto::smtp::Address::parse(addr).map_err(|e| bad_address(given, e))?;
    if name.as_deref().is_some_and(|n| n.contains(['<', '>', '"'])) {
        return Err(bad_address(given, "the name holds < > or \""));
    }
    Ok(Rcpt {
        name,
        address: addr.to_string(),
    })
}

fn builder_list(r: &[Rcpt]) -> BAddress<'static> {
    let one = |r: &Rcpt| BAddress::new_address(r.name.clone(), r.address.clone());
    if let [only] = r {
        return one(only);
    }
    BAddress::new_list(r.iter().map(one).collect())
}

/// Keeps a MIME type word safe (`type/subtype`, token characters only).
fn content_type(given: Option<&str>) -> Result<String, ApiError> {
    let t = given.unwrap_or("application/octet-stream").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match t.split_once('/') {
        Some((a, b)) if token(a) && token(b) && t.len() <= 127 => Ok(t.to_ascii_lowercase()),
        _ => Err(ApiError::bad_request(
            format!("{t:?} is not a MIME type"),
            "give an attachment's \"type\" as type/subtype, like application/pdf (or leave it out)",
        )),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the message is larger than this server's limit of {limit} octets (limits.max_message_size)"),
        "send smaller attachments, or several messages",
    )
}

/// What the store said no to, per recipient.
enum Refused {
    Unknown(String),
    Full(String),
}

/// `POST /api/send`.
pub async fn send(
    State(ctx): State<Ctx>,
    user: User,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let limits = &ctx.shared.config.limits;
    let b: SendBody = json_body(&body)?;
    drop(body);
    let list = |v: Option<OneOrMany>| -> Result<Vec<Rcpt>, ApiError> {
        v.map(OneOrMany::items)
            .unwrap_or_default()
            .iter()
            .map(|s| parse_rcpt(s))
            .collect()
    };
    let (to, cc, bcc) = (list(b.to)?, list(b.cc)?, list(b.bcc)?);
    let mut envelope: Vec<String> = Vec::new();
    for r in to.iter().chain(&cc).chain(&bcc) {
        if !envelope.iter().any(|e| e.eq_ignore_ascii_case(&r.address)) {
            envelope.push(r.address.clone());
        }
    }
    if envelope.is_empty() {
        return Err(ApiError::bad_request(
            "the message has no recipient",
            "give at least one address in \"to\", \"cc\" or \"bcc\"",
        ));
    }
    // RFC 5321 §4.5.3.1.8, as RCPT counts them on the submission listener.
    if envelope.len() > limits.max_recipients {
        return Err(ApiError::bad_request(
            format!(
                "{} recipients are more than this server takes in one message ({}, limits.max_recipients)",
                envelope.len(),
                limits.max_recipients
            ),
            "send the message in several parts",
        ));
    }
    if b.subject.chars().any(|c| c.is_control() && c != '\t') || b.subject.len() > 998 {
        return Err(ApiError::bad_request(
            "the subject holds a line break or is longer than 998 octets",
            "give the subject as one line (RFC 5322 §2.1.1)",
        ));
    }
    let mut files = Vec::new();
    for a in b.attachments {
        let data = base64::engine::general_purpose::STANDARD
            .decode(a.data.trim())
            .map_err(|e| {
                ApiError::bad_request(
                    format!("attachment {:?} is not base64: {e}", a.name),
                    "give each attachment's \"data\" as standard base64 (with padding)",
                )
            })?;
        if a.name.is_empty() || a.name.len() > 255 || a.name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "an attachment's name is empty, too long or holds a control character",
                "give each attachment a file name of at most 255 octets",
            ));
        }
        files.push((content_type(a.content_type.as_deref())?, a.name, data));
    }
    let id = delivery::new_id();
    let hostname = ctx.shared.config.hostname.clone();
    let mut m = MessageBuilder::new()
        .from(BAddress::new_address(
            None::<String>,
            user.account.address.clone(),
        ))
        .subject(b.subject)
        .date(mail_builder::headers::date::Date::now())
        .message_id(format!(
            "{}.{}@{}",
            id.to_ascii_lowercase(),
            mailroom_store::now_unix(),
            hostname
        ));
    if !to.is_empty() {
        m = m.to(builder_list(&to));
    }
    if !cc.is_empty() {
        m = m.cc(builder_list(&cc));
    }
    m = m.text_body(b.text);
    if let Some(h) = b.html {
        m = m.html_body(h);
    }
    for (t, name, data) in files {
        m = m.attachment(t, name, data);
    }
    let message = m.write_to_vec().map_err(|_| ApiError::internal())?;
    let max = limits.max_message_size;
    if max > 0 && message.len() as u64 > max {
        return Err(too_large(max));
    }
    // Held in memory until stored: its share of the budget every listener shares.
    let mut held = ctx.shared.incoming.reserve();
    if !held.grow_to(message.len() as u64) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is receiving too many messages at once",
            "try again in a moment",
        ));
    }
    let size = message.len() as u64;
    let shared = ctx.shared.clone();
    let sender = user.account.address.clone();
    let peer = ctx.peer;
    let with = if ctx.tls { "HTTPS" } else { "HTTP" };
    let rcpts = envelope.clone();
    let result = tokio::task::spawn_blocking(move || {
        let store = &shared.store;
        let mut local = Vec::new();
        let mut remote = Vec::new();
        let mut refused = Vec::new();
        for r in &rcpts {
            match delivery::resolve(store, r)? {
                Route::UnknownUser => refused.push(Refused::Unknown(r.clone())),
                Route::Remote { address } => remote.push(address),
                Route::Local(targets) => {
                    // RFC 5321 §4.2.5 452 at RCPT: the same quota check, with the size known.
                    if let Some(full) =
                        delivery::full_target(store.as_ref(), &shared.config, &targets, Some(size))?
                    {
                        refused.push(Refused::Full(full));
                        continue;
                    }
                    for t in targets {
                        match t {
                            Target::Account { account, .. } => local.push(account),
                            Target::Remote { address } => remote.push(address),
                        }
                    }
                }
            }
        }
        if !refused.is_empty() {
            return Ok(Err(refused));
        }
        let single = (rcpts.len() == 1).then(|| rcpts[0].as_str());
        let received = delivery::received_header(&delivery::Trace {
            helo: "web-inbox",
            peer,
            hostname: &shared.config.hostname,
            with,
            id: &id,
            single_recipient: single,
        });
        let prefix = delivery::message_prefix(
            received,
            Some(delivery::Submitted {
                hostname: &shared.config.hostname,
                id: &id,
                sender: Some(&sender),
            }),
            &message,
        );
        let receipt = delivery::store_accepted(
            store,
            Accepted {
                sender,
                local,
                remote,
                prefix,
                body: message,
                // Sent through the API: no SMTP dialogue to keep.
                transcript: None,
            },
        )?;
        Ok::<_, StoreError>(Ok((id, receipt)))
    })
    .await
    .map_err(|_| ApiError::internal())?;
    drop(held);
    let (id, receipt) = match result.map_err(ApiError::from)? {
        Ok(r) => r,
        Err(refused) => {
            let mut unknown = Vec::new();
            let mut full = Vec::new();
            for r in refused {
                match r {
                    Refused::Unknown(a) => unknown.push(a),
                    Refused::Full(a) => full.push(a),
                }
            }
            let (error, hint) = if !unknown.is_empty() {
                (
                    format!("no such recipient here: {} (nothing was sent)", unknown.join(", ")),
                    "check the spelling of the address; the domain is local, but it has no such account or alias",
                )
            } else {
                (
                    format!(
                        "the mailbox of {} is full (nothing was sent)",
                        full.join(", ")
                    ),
                    "try again later, when its owner has made room, or leave that recipient out",
                )
            };
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error, hint));
        }
    };
    if receipt.queued.is_some() {
        ctx.shared.queue_notify.notify_one();
    }
    tracing::info!(user = %user.account.address, id = %id, recipients = envelope.len(), local = receipt.local.len(), queued = receipt.queued.map(|q| q.0), "http: message sent");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": id,
            "size": size,
            "recipients": envelope,
            "delivered_locally": receipt.local.len(),
            "queued": receipt.queued.map(|q| q.0),
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_parsed_like_rcpt_to() {
        let r = parse_rcpt("Bob <bob@example.test>").unwrap();
        assert_eq!(
            (r.name.as_deref(), r.address.as_str()),
            (Some("Bob"), "bob@example.test")
        );
        let r = parse_rcpt(" <bob@example.test> ").unwrap();
        assert_eq!((r.name, r.address.as_str()), (None, "bob@example.test"));
        for bad in [
            "",
            "bob",
            "bob@",
            "bob@example.test\r\nBcc: x@y.test",
            "a b@example.test",
            "\"Bo>b\" <bob@example.test>",
        ] {
            assert!(parse_rcpt(bad).is_err(), "{bad:?} taken");
        }
    }

    #[test]
    fn content_types_are_tokens() {
        assert_eq!(content_type(None).unwrap(), "application/octet-stream");
        assert_eq!(content_type(Some("Image/PNG")).unwrap(), "image/png");
        assert!(content_type(Some("text/html\r\nX: y")).is_err());
        assert!(content_type(Some("text")).is_err());
    }
}
