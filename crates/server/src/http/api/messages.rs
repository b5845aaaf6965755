//! Messages of the account's mailboxes: list and search (newest first), one message (headers,
//! text, HTML, attachments, MIME tree), its raw source, one part decoded, flags, move, delete.
//!
//! A message's id is `UIDVALIDITY.UID` (`"1733011200.7"`): a mailbox deleted and created again
//! gets a new UIDVALIDITY (RFC 9051 §2.3.1.1), so an old id never names a new message (DESIGN.md
//! principle 12). Mailboxes are looked up by (account, name): another account's mailbox is
//! never found, it is 404 like one that does not exist.
//!
//! The `search` parameter is an IMAP SEARCH key (RFC 9051 §6.4.4): it is parsed by proto's IMAP
//! command parser and run by the IMAP server's search code ([`crate::imap::run_search`]), so
//! the API and IMAP answer the same query the same way.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mail_parser::{MessageParser, MimeHeaders};
use mailroom_proto::imap::mime::{Mime, Part};
use mailroom_proto::imap::{parse_command, CommandBody};
use mailroom_store::{FlagOp, Flags, MailboxInfo, MessageMeta, MessageRef};
use serde::{Deserialize, Serialize};

use crate::http::auth::User;
use crate::http::error::{blocking, json_body, ApiError};
use crate::http::Ctx;
use crate::imap::{run_search, Msg, SearchJob};

/// Messages per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The largest page.
pub const MAX_LIMIT: usize = 500;
/// Longest `search` parameter.
const MAX_SEARCH: usize = 4096;
/// Octets of a message read for its summary in a listing (the header is in there).
const SUMMARY_OCTETS: usize = 64 * 1024;

/// A message id: UIDVALIDITY and UID.
fn parse_id(id: &str) -> Result<(u32, u32), ApiError> {
    let bad = || {
        ApiError::bad_request(
            format!("{id:?} is not a message id"),
            "a message id is UIDVALIDITY.UID as the message list gives it (\"id\")",
        )
    };
    let (v, u) = id.split_once('.').ok_or_else(bad)?;
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match (num(v), num(u)) {
        (Some(v), Some(u)) if u > 0 => Ok((v, u)),
        _ => Err(bad()),
    }
}

fn id_of(mb: &MailboxInfo, uid: u32) -> String {
    format!("{}.{}", mb.uidvalidity, uid)
}

fn no_mailbox(name: &str) -> ApiError {
    ApiError::not_found(
        format!("no mailbox {name:?}"),
        "GET /api/mailboxes lists yours (names are case-sensitive, except INBOX)",
    )
}

/// The user's mailbox `name` (never another account's).
async fn mailbox(ctx: &Ctx, user: &User, name: &str) -> Result<MailboxInfo, ApiError> {
    if name.is_empty() || name.len() > 1024 {
        return Err(no_mailbox(name));
    }
    let store = ctx.shared.store.clone();
    let account = user.account.id;
    let n = name.to_string();
    blocking(move || store.mailbox(account, &n))
        .await?
        .ok_or_else(|| no_mailbox(name))
}

/// The user's mailbox and the UID a message id names in it (404 when the id's UIDVALIDITY is
/// not the mailbox's: the id was of an earlier mailbox of that name).
pub(crate) async fn message(
    ctx: &Ctx,
    user: &User,
    name: &str,
    id: &str,
) -> Result<(MailboxInfo, u32), ApiError> {
    let (validity, uid) = parse_id(id)?;
    let mb = mailbox(ctx, user, name).await?;
    if mb.uidvalidity != validity {
        return Err(ApiError::no_message());
    }
    Ok((mb, uid))
}

/// A message of the user's mailbox with its octets: what every handler that shows a message
/// (or a part of it) starts from. One lookup for all of them: the id is checked against the
/// mailbox's UIDVALIDITY, then the octets are read (404 once expunged).
struct Loaded {
    mb: MailboxInfo,
    uid: u32,
    data: Vec<u8>,
}

async fn load(ctx: &Ctx, user: &User, name: &str, id: &str) -> Result<Loaded, ApiError> {
    let (mb, uid) = message(ctx, user, name, id).await?;
    let store = ctx.shared.store.clone();
    let r = MessageRef::Mailbox {
        mailbox: mb.id,
        uid,
    };
    let data = blocking(move || store.message_octets(r)).await?;
    Ok(Loaded { mb, uid, data })
}

/// The message's row (flags, size, arrival) as it is now; 404 once it is gone.
fn meta_now(
    store: &dyn mailroom_store::MailStore,
    mailbox: mailroom_store::MailboxId,
    uid: u32,
) -> Result<Option<MessageMeta>, mailroom_store::StoreError> {
    Ok(store
        .list_messages(mailbox)?
        .into_iter()
        .find(|m| m.uid == uid))
}

pub(crate) fn flags_json(m: &MessageMeta) -> Vec<String> {
    let mut out = Vec::new();
    for (bit, name) in [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ] {
        if m.flags.contains(bit) {
            out.push(name.to_string());
        }
    }
    out.extend(m.keywords.iter().cloned());
    out
}

#[derive(Serialize)]
struct AddrJson {
    name: Option<String>,
    address: Option<String>,
}

fn addrs(a: Option<&mail_parser::Address<'_>>) -> Vec<AddrJson> {
    a.map(|a| {
        a.iter()
            .map(|x| AddrJson {
                name: x.name.as_ref().map(|n| n.to_string()),
                address: x.address.as_ref().map(|n| n.to_string()),
            })
            .collect()
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct Summary {
    id: String,
    uid: u32,
    size: u64,
    flags: Vec<String>,
    /// Arrival (IMAP INTERNALDATE), Unix seconds.
    received: i64,
    subject: Option<String>,
    from: Vec<AddrJson>,
    to: Vec<AddrJson>,
    date: Option<String>,
}

#[derive(Serialize)]
struct ListJson {
    mailbox: String,
    uidvalidity: u32,
    /// Messages that match (all of them without `search`).
    total: usize,
    offset: usize,
    limit: usize,
    messages: Vec<Summary>,
}

/// Parses an IMAP SEARCH key with proto's command parser.
fn parse_search(text: &str) -> Result<mailroom_proto::imap::SearchKey, ApiError> {
    if text.len() > MAX_SEARCH || text.contains(['\r', '\n']) {
        return Err(ApiError::bad_request(
            "the search is too long or holds a line break",
            format!("a search is one line of at most {MAX_SEARCH} octets"),
        ));
    }
    let line = format!("s UID SEARCH CHARSET UTF-8 {text}");
    match parse_command(line.as_bytes()) {
        Ok(c) => match c.body {
            CommandBody::Search { key, ret: None, .. } => Ok(key),
            _ => Err(ApiError::bad_request(
                "the search is not a plain IMAP SEARCH key",
                "give search keys only, like: FROM alice UNSEEN SINCE 1-Jan-2026",
            )),
        },
        Err(e) => Err(ApiError::bad_request(
            format!("the search is not IMAP SEARCH syntax: {}", e.error),
            "use IMAP SEARCH keys (RFC 9051 §6.4.4), like: FROM alice, SUBJECT \"two words\", UNSEEN, SINCE 1-Jan-2026, OR FROM a FROM b",
        )),
    }
}

fn num_param(
    q: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::bad_request(
                format!("{name}={v:?} is not a number from 0 to {max}"),
                format!("give {name} as a whole number, at most {max}"),
            )),
        },
    }
}

/// `GET /api/mailboxes/{name}/messages?search=&offset=&limit=`: newest first.
pub async fn list(
    State(ctx): State<Ctx>,
    user: User,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let offset = num_param(&q, "offset", 0, usize::MAX)?;
    let limit = num_param(&q, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let key = match q.get("search").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_search(s)?),
        None => None,
    };
    let mb = mailbox(&ctx, &user, &name).await?;
    let shared = ctx.shared.clone();
    let mbi = mb.clone();
    let (total, page) = blocking(move || {
        let store = shared.store.as_ref();
        let metas = store.list_messages(mbi.id)?;
        let mut chosen: Vec<MessageMeta> = match key {
            None => metas,
            Some(key) => {
                let job = SearchJob {
                    mailbox: mbi.id,
                    key,
                    msgs: std::sync::Arc::new(metas.iter().map(Msg::from_meta).collect()),
                };
                let hits = run_search(store, &shared.imap, &job)?;
                hits.into_iter()
                    .filter_map(|seq| metas.get(seq - 1).cloned())
                    .collect()
            }
        };
        chosen.reverse();
        let total = chosen.len();
        let mut page = Vec::new();
        for m in chosen.into_iter().skip(offset).take(limit) {
            let r = MessageRef::Mailbox {
                mailbox: mbi.id,
                uid: m.uid,
            };
            let mut buf = vec![0u8; (m.size as usize).min(SUMMARY_OCTETS)];
            let n = match store.read_message_at(r, 0, &mut buf) {
                Ok(n) => n,
                // Expunged meanwhile: left out.
                Err(mailroom_store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            buf.truncate(n);
            let parsed = MessageParser::new().parse_headers(&buf);
            let (subject, from, to, date) = match &parsed {
                Some(p) => (
                    p.subject().map(str::to_string),
                    addrs(p.from()),
                    addrs(p.to()),
                    p.date().map(|d| d.to_rfc3339()),
                ),
                None => (None, Vec::new(), Vec::new(), None),
            };
            page.push(Summary {
                id: id_of(&mbi, m.uid),
                uid: m.uid,
                size: m.size,
                flags: flags_json(&m),
                received: m.internal_date,
                subject,
                from,
                to,
                date,
            });
        }
        Ok((total, page))
    })
    .await?;
    let out = ListJson {
        mailbox: mb.name,
        uidvalidity: mb.uidvalidity,
        total,
        offset,
        limit,
        messages: page,
    };
    serde_json::to_value(out)
        .map(Json)
        .map_err(|_| ApiError::internal())
}

#[derive(Serialize)]
struct PartJson {
    /// The IMAP section number (`1.2`); empty for the message itself.
    section: String,
    content_type: String,
    filename: Option<String>,
    disposition: Option<String>,
    encoding: Option<String>,
    /// Octets of the body as stored (still encoded).
    size: usize,
    parts: Vec<PartJson>,
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn part_json(p: &Part, section: String) -> PartJson {
    let filename = p
        .disposition
        .as_ref()
        .and_then(|(_, ps)| param(ps, "filename"))
        .or_else(|| param(&p.params, "name"))
        .map(str::to_string);
    let join = |n: usize| {
        if section.is_empty() {
            n.to_string()
        } else {
            format!("{section}.{n}")
        }
    };
    let mut parts: Vec<PartJson> = p
        .children
        .iter()
        .enumerate()
        .map(|(i, c)| part_json(c, join(i + 1)))
        .collect();
    if let Some(m) = &p.message {
        // A message/rfc822 part: its message's parts are numbered below this part.
        if m.children.is_empty() {
            parts.push(part_json(m, join(1)));
        } else {
            parts.extend(
                m.children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| part_json(c, join(i + 1))),
            );
        }
    }
    PartJson {
        content_type: format!("{}/{}", p.mtype, p.subtype),
        filename,
        disposition: p.disposition.as_ref().map(|(d, _)| d.clone()),
        encoding: p
            .encoding
            .as_ref()
            .map(|e| String::from_utf8_lossy(e).to_ascii_lowercase()),
        size: p.body.len(),
        section,
        parts,
    }
}

/// `GET /api/messages/{mailbox}/{id}`.
pub async fn get_one(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Loaded { mb, uid, data } = load(&ctx, &user, &name, &id).await?;
    let store = ctx.shared.store.clone();
    let mbid = mb.id;
    let meta = blocking(move || meta_now(store.as_ref(), mbid, uid))
        .await?
        .ok_or_else(ApiError::no_message)?;
    let mime = Mime::parse(&data);
    let parsed = MessageParser::new().parse(&data);
    let mut out = serde_json::json!({
        "id": id_of(&mb, uid),
        "mailbox": mb.name,
        "uid": uid,
        "size": meta.size,
        "flags": flags_json(&meta),
        "received": meta.internal_date,
        "mime": part_json(&mime.root, String::new()),
    });
    if let Some(p) = parsed {
        let headers: Vec<serde_json::Value> = p
            .headers_raw()
            .map(|(k, v)| serde_json::json!([k, v.trim()]))
            .collect();
        let attachments: Vec<serde_json::Value> = p
            .attachments()
            .map(|a| {
                serde_json::json!({
                    "filename": a.attachment_name(),
                    "content_type": a.content_type().map(|c| match c.subtype() {
                        Some(s) => format!("{}/{}", c.ctype(), s),
                        None => c.ctype().to_string(),
                    }),
                    "size": a.len(),
                })
            })
            .collect();
        let extra = serde_json::json!({
            "subject": p.subject(),
            "from": addrs(p.from()),
            "to": addrs(p.to()),
            "cc": addrs(p.cc()),
            "date": p.date().map(|d| d.to_rfc3339()),
            "message_id": p.message_id(),
            "headers": headers,
            "text": p.body_text(0),
            "html": p.body_html(0),
            "attachments": attachments,
        });
        if let (Some(o), serde_json::Value::Object(e)) = (out.as_object_mut(), extra) {
            o.extend(e);
        }
    }
    Ok(Json(out))
}

/// `GET /api/messages/{mailbox}/{id}/raw`: the message as stored, `message/rfc822`.
pub async fn raw(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Loaded { data, .. } = load(&ctx, &user, &name, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        data,
    )
        .into_response())
}

/// A section number (`1`, `2.1`): digits and dots only, each number from 1.
fn parse_section(s: &str) -> Result<Vec<u32>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            format!("{s:?} is not a part number"),
            "a part is named by its section as the message's \"mime\" tree gives it, like 1 or 2.1",
        )
    };
    if s.is_empty() || s.len() > 100 {
        return Err(bad());
    }
    s.split('.')
        .map(|n| {
            if n.is_empty() || n.len() > 5 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match n.parse::<u32>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// A file name safe in a header: letters, digits, `.`, `-`, `_`, `+`; the rest becomes `_`.
fn safe_filename(name: &str) -> String {
    let s: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() {
        "part".into()
    } else {
        s
    }
}

/// `GET /api/messages/{mailbox}/{id}/parts/{section}`: one part's body, transfer encoding
/// undone, with its content type; always `Content-Disposition: attachment` (a browser saves it
/// instead of rendering it as this site's page) and a CSP that forbids everything.
pub async fn part(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id, section)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let path = parse_section(&section)?;
    let Loaded { data, .. } = load(&ctx, &user, &name, &id).await?;
    let mime = Mime::parse(&data);
    let Some(p) = mime.part(&path) else {
        return Err(ApiError::not_found(
            format!("the message has no part {section}"),
            "the message's \"mime\" tree lists its parts",
        ));
    };
    let body = data.get(p.body.clone()).unwrap_or_default();
    let enc = p
        .encoding
        .as_ref()
        .map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase());
    use mailroom_proto::imap::decode::{decode_base64, decode_qp};
    let decoded = match enc.as_deref() {
        Some("base64") => decode_base64(body).unwrap_or_else(|| body.to_vec()),
        Some("quoted-printable") => decode_qp(body),
        _ => body.to_vec(),
    };
    let mut ctype = format!("{}/{}", p.mtype, p.subtype);
    if p.mtype == "text" {
        if let Some(cs) = param(&p.params, "charset") {
            if cs
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                ctype.push_str(&format!("; charset={cs}"));
            }
        }
    }
    let filename = p
        .disposition
        .as_ref()
        .and_then(|(_, ps)| param(ps, "filename"))
        .or_else(|| param(&p.params, "name"))
        .map(safe_filename)
        .unwrap_or_else(|| format!("part-{section}"));
    let mut resp = decoded.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ctype)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}

/// `DELETE /api/messages/{mailbox}/{id}`: expunges the message.
pub async fn delete(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (mb, uid) = message(&ctx, &user, &name, &id).await?;
    let store = ctx.shared.store.clone();
    let gone = blocking(move || store.expunge(mb.id, &[uid])).await?;
    if gone.is_empty() {
        return Err(ApiError::no_message());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsBody {
    seen: Option<bool>,
    flagged: Option<bool>,
    answered: Option<bool>,
    draft: Option<bool>,
    deleted: Option<bool>,
}

/// `PATCH /api/messages/{mailbox}/{id}` `{seen, flagged, answered, draft, deleted}`.
pub async fn patch(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: FlagsBody = json_body(&body)?;
    let (mb, uid) = message(&ctx, &user, &name, &id).await?;
    let mut add = Flags::default();
    let mut remove = Flags::default();
    for (v, bit) in [
        (b.seen, Flags::SEEN),
        (b.flagged, Flags::FLAGGED),
        (b.answered, Flags::ANSWERED),
        (b.draft, Flags::DRAFT),
        (b.deleted, Flags::DELETED),
    ] {
        match v {
            Some(true) => add = add.union(bit),
            Some(false) => remove = remove.union(bit),
            None => {}
        }
    }
    let store = ctx.shared.store.clone();
    let mbid = mb.id;
    let meta = blocking(move || {
        if add != Flags::default() {
            store.store_flags(mbid, &[uid], FlagOp::Add, add, &[], None)?;
        }
        if remove != Flags::default() {
            store.store_flags(mbid, &[uid], FlagOp::Remove, remove, &[], None)?;
        }
        meta_now(store.as_ref(), mbid, uid)
    })
    .await?
    .ok_or_else(ApiError::no_message)?;
    Ok(Json(serde_json::json!({
        "id": id_of(&mb, uid),
        "flags": flags_json(&meta),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to: String,
}

/// `POST /api/messages/{mailbox}/{id}/move` `{to}`: moves the message (one transaction, like
/// IMAP MOVE, RFC 6851); answers its id in the target mailbox.
pub async fn move_to(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: MoveBody = json_body(&body)?;
    let (mb, uid) = message(&ctx, &user, &name, &id).await?;
    let target = mailbox(&ctx, &user, &b.to).await?;
    if target.id == mb.id {
        return Err(ApiError::bad_request(
            "the message is already in that mailbox",
            "give another mailbox in \"to\"",
        ));
    }
    let store = ctx.shared.store.clone();
    let (from, to) = (mb.id, target.id);
    let (validity, pairs) = blocking(move || store.copy_messages(from, &[uid], to, true)).await?;
    let Some(&(_, new_uid)) = pairs.first() else {
        return Err(ApiError::no_message());
    };
    Ok(Json(serde_json::json!({
        "mailbox": target.name,
        "id": format!("{validity}.{new_uid}"),
        "uid": new_uid,
    })))
}

/// What a message's HTML may do where it is shown: nothing but inline styles and `data:`
/// images. No script, no remote content (no tracking pixel, no remote font or style), no
/// forms, no frames; `sandbox` puts the document in an opaque origin even when it is opened
/// on its own, outside the web inbox's sandboxed iframe.
pub const MAIL_HTML_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

/// Elements a browser may open a connection for before (or regardless of) the page's CSP:
/// Chromium connects to an `<iframe src>`'s host although `frame-src` forbids the frame, and
/// CSP does not govern `<link rel=preconnect|dns-prefetch>` hints. A connection that opens
/// when the mail is shown tells its sender the mail was read, so these are renamed
/// (`<x-iframe ...>`, `</x-iframe>`): inert unknown elements, their content still shown.
const INERT: &[&str] = &[
    "link",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "portal",
    "fencedframe",
    "base",
];

/// Renames the [`INERT`] elements' tags in mail HTML (ASCII case-insensitive; `<` or `</`,
/// the name, then a character that cannot continue a tag name).
pub fn defang_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tag = &rest[i + 1..];
        let (slash, name_at) = match tag.strip_prefix('/') {
            Some(t) => ("/", t),
            None => ("", tag),
        };
        let hit = INERT.iter().find(|n| {
            name_at.len() >= n.len()
                && name_at.as_bytes()[..n.len()].eq_ignore_ascii_case(n.as_bytes())
                && name_at[n.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_ascii_whitespace() || c == '/' || c == '>')
        });
        out.push('<');
        out.push_str(slash);
        if hit.is_some() {
            out.push_str("x-");
        }
        rest = name_at;
    }
    out.push_str(rest);
    out
}

/// `GET /api/messages/{mailbox}/{id}/html`: the message's HTML body (or its text made HTML)
/// as a document of its own, under [`MAIL_HTML_CSP`] and with [`defang_html`] applied: what
/// the web inbox shows in its sandboxed iframe.
pub async fn html(
    State(ctx): State<Ctx>,
    user: User,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Loaded { data, .. } = load(&ctx, &user, &name, &id).await?;
    let body = MessageParser::new()
        .parse(&data)
        .and_then(|p| p.body_html(0).map(|h| defang_html(&h)))
        .unwrap_or_default();
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(MAIL_HTML_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::defang_html;

    #[test]
    fn elements_that_open_connections_are_made_inert() {
        for (given, want) in [
            (
                "<iframe src=\"http://x/\"></iframe>",
                "<x-iframe src=\"http://x/\"></x-iframe>",
            ),
            (
                "<LINK rel=preconnect href=//x><Link/>",
                "<x-LINK rel=preconnect href=//x><x-Link/>",
            ),
            (
                "<object\ndata=x>a</OBJECT >",
                "<x-object\ndata=x>a</x-OBJECT >",
            ),
            (
                "<embed src=x><base href=x><frameset>",
                "<x-embed src=x><x-base href=x><x-frameset>",
            ),
            // Other elements, and names that only begin like these, stay.
            (
                "<p>a < b</p><linked><iframes><img src=data:x><b>",
                "<p>a < b</p><linked><iframes><img src=data:x><b>",
            ),
            ("text <", "text <"),
            ("<iframe", "<x-iframe"),
            ("", ""),
        ] {
            assert_eq!(defang_html(given), want, "{given:?}");
        }
    }
}
