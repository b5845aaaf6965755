//! FETCH (RFC 9051 §6.4.5, §7.5.2; BINARY RFC 3516, CONDSTORE RFC 7162): the command, which
//! sets `\Seen` where asked and picks the messages, and the responses, built on a blocking
//! thread against the store.

use mailroom_proto::imap::encode::{internal_date, push_nstring};
use mailroom_proto::imap::{FetchAtt, Section};
use mailroom_store::{FlagOp, Flags, MailStore, MailboxId, StoreError};

use super::cache::{ImapShared, Loaded};
use super::error::ImapError;
use super::selected::Msg;
use super::{ok, Done, Session};
use mailroom_proto::imap::decode::{decode_base64, decode_qp};

impl Session {
    pub(super) async fn fetch(
        &mut self,
        uid: bool,
        set: &mailroom_proto::imap::SeqSet,
        mut items: Vec<FetchAtt>,
        changed_since: Option<u64>,
    ) -> Result<Done, ImapError> {
        // RFC 7162 §3.1.4: MODSEQ and CHANGEDSINCE enable CONDSTORE; CHANGEDSINCE implies
        // MODSEQ.
        if changed_since.is_some() && !items.contains(&FetchAtt::ModSeq) {
            items.push(FetchAtt::ModSeq);
        }
        if items.contains(&FetchAtt::ModSeq) {
            self.enable_condstore();
        }
        let condstore = self.condstore;
        // Bring in new messages first, so "1:*" covers what just arrived.
        self.sync(uid).await?;
        let sel = self.must_selected()?;
        let mut idx = sel.resolve(set, uid)?;
        if let Some(since) = changed_since {
            idx.retain(|&i| sel.msgs[i].modseq > since);
        }
        // RFC 9051 §6.4.5: BODY[...] (not PEEK), RFC822 and RFC822.TEXT set \Seen.
        let sets_seen = !sel.read_only
            && items.iter().any(|i| {
                matches!(
                    i,
                    FetchAtt::BodySection { peek: false, .. }
                        | FetchAtt::Binary { peek: false, .. }
                        | FetchAtt::Rfc822
                        | FetchAtt::Rfc822Text
                )
            });
        let mut newly_seen: Vec<u32> = Vec::new();
        if sets_seen {
            let unseen: Vec<u32> = idx
                .iter()
                .map(|&i| &sel.msgs[i])
                .filter(|m| !m.gone && !m.flags.contains(Flags::SEEN))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let id = sel.id;
                let (changed, _) = self
                    .store(move |s| s.store_flags(id, &unseen, FlagOp::Add, Flags::SEEN, &[], None))
                    .await?;
                if let Some(sel) = self.selected() {
                    for m in &changed {
                        sel.update(m);
                        newly_seen.push(m.uid);
                    }
                }
            }
        }
        let sel = self.must_selected()?;
        let job = FetchJob {
            mailbox: sel.id,
            items,
            msgs: idx
                .iter()
                .map(|&i| {
                    let m = sel.msgs[i].clone();
                    let add = newly_seen.contains(&m.uid);
                    (i + 1, m, add)
                })
                .filter(|(_, m, _)| !m.gone)
                .collect(),
            uid,
            condstore,
        };
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            run_fetch(shared.store.as_ref(), &shared.imap, &job)
        })
        .await;
        let responses = match res {
            Ok(Ok(r)) => r,
            Ok(Err(FetchFail::Store(e))) => return Err(ImapError::store(e)),
            Ok(Err(FetchFail::UnknownCte)) => {
                return Err(ImapError::no(
                    "UNKNOWN-CTE",
                    "a part has a Content-Transfer-Encoding this server cannot decode; fetch it with BODY[] instead",
                ))
            }
            Err(_) => return Err(ImapError::no("SERVERBUG", "internal error while fetching")),
        };
        let mut octets = 0usize;
        for r in &responses {
            octets += r.len();
            if self.conn.send_raw(r).await.is_err() {
                return Ok(Done::Close);
            }
        }
        self.conn.trace.server(
            format!(
                "<{} FETCH responses, {octets} octets, not traced>\r\n",
                responses.len()
            )
            .as_bytes(),
        );
        ok(if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        })
    }
}

/// One FETCH request for the blocking thread.
pub struct FetchJob {
    pub mailbox: MailboxId,
    pub items: Vec<FetchAtt>,
    /// (sequence number, message, whether FLAGS must be added because \Seen was just set).
    pub msgs: Vec<(usize, Msg, bool)>,
    pub uid: bool,
    /// CONDSTORE is on: a FETCH that set \Seen also reports MODSEQ (RFC 7162 §3.1).
    pub condstore: bool,
}

/// Why a whole FETCH failed.
pub enum FetchFail {
    Store(StoreError),
    /// BINARY on a part whose Content-Transfer-Encoding we cannot decode (RFC 3516).
    UnknownCte,
}

impl From<StoreError> for FetchFail {
    fn from(e: StoreError) -> Self {
        FetchFail::Store(e)
    }
}

/// The untagged FETCH responses, one per message still present.
pub fn run_fetch(
    store: &dyn MailStore,
    cache: &ImapShared,
    job: &FetchJob,
) -> Result<Vec<Vec<u8>>, FetchFail> {
    let mut out = Vec::with_capacity(job.msgs.len());
    for (seq, msg, add_flags) in &job.msgs {
        let mut l = Loaded::new(store, cache, job.mailbox, msg);
        match fetch_one(&mut l, *seq, job, *add_flags) {
            Ok(r) => out.push(r),
            // Expunged by another session meanwhile: RFC 9051 §7.5.1 lets us leave it out.
            Err(FetchFail::Store(StoreError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn push_literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

fn partial_slice(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    &data[mailroom_proto::imap::mime::partial_range(data.len(), partial)]
}

fn fetch_one(
    l: &mut Loaded<'_>,
    seq: usize,
    job: &FetchJob,
    add_flags: bool,
) -> Result<Vec<u8>, FetchFail> {
    let msg = l.msg;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let wants_uid = job.items.contains(&FetchAtt::Uid);
    if job.uid && !wants_uid {
        // RFC 9051 §6.4.9: UID FETCH responses always include UID.
        parts.push(format!("UID {}", msg.uid).into_bytes());
    }
    let wants_flags = job.items.contains(&FetchAtt::Flags);
    for item in &job.items {
        let mut p = Vec::new();
        match item {
            FetchAtt::Uid => p.extend_from_slice(format!("UID {}", msg.uid).as_bytes()),
            FetchAtt::Flags => p.extend_from_slice(format!("FLAGS {}", msg.flag_list()).as_bytes()),
            FetchAtt::InternalDate => p.extend_from_slice(
                format!("INTERNALDATE {}", internal_date(msg.internal_date)).as_bytes(),
            ),
            FetchAtt::Rfc822Size => {
                p.extend_from_slice(format!("RFC822.SIZE {}", msg.size).as_bytes())
            }
            FetchAtt::ModSeq => p.extend_from_slice(format!("MODSEQ ({})", msg.modseq).as_bytes()),
            FetchAtt::Envelope => {
                p.extend_from_slice(b"ENVELOPE ");
                p.extend_from_slice(&l.mime()?.envelope);
            }
            FetchAtt::Body => {
                p.extend_from_slice(b"BODY ");
                p.extend_from_slice(&l.mime()?.body);
            }
            FetchAtt::BodyStructure => {
                p.extend_from_slice(b"BODYSTRUCTURE ");
                p.extend_from_slice(&l.mime()?.bodystructure);
            }
            FetchAtt::Rfc822 => {
                p.extend_from_slice(b"RFC822 ");
                push_literal(&mut p, l.data()?);
            }
            FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
                let mime = l.mime()?;
                let data = l.data()?;
                let (name, r) = if *item == FetchAtt::Rfc822Header {
                    ("RFC822.HEADER ", mime.root.header.clone())
                } else {
                    ("RFC822.TEXT ", mime.root.body.clone())
                };
                p.extend_from_slice(name.as_bytes());
                push_literal(&mut p, data.get(r).unwrap_or_default());
            }
            FetchAtt::BodySection {
                section, partial, ..
            } => {
                let bytes = section_bytes(l, section)?.map(|b| encode_binary_part(section, b));
                p.extend_from_slice(format!("BODY[{}]", section.spec()).as_bytes());
                if let Some((o, _)) = partial {
                    p.extend_from_slice(format!("<{o}>").as_bytes());
                }
                p.push(b' ');
                match bytes {
                    // RFC 9051 §6.4.5: a part that does not exist is sent as NIL.
                    None => p.extend_from_slice(b"NIL"),
                    Some(b) => push_literal(&mut p, partial_slice(&b, *partial)),
                }
            }
            FetchAtt::Binary { part, partial, .. } => {
                let decoded = binary(l, part)?;
                let spec: Vec<String> = part.iter().map(|n| n.to_string()).collect();
                p.extend_from_slice(format!("BINARY[{}]", spec.join(".")).as_bytes());
                if let Some((o, _)) = partial {
                    p.extend_from_slice(format!("<{o}>").as_bytes());
                }
                p.push(b' ');
                match decoded {
                    None => p.extend_from_slice(b"NIL"),
                    Some(b) => {
                        let s = partial_slice(&b, *partial);
                        // RFC 3516 §4.3: literal8 when the octets hold NUL.
                        if s.contains(&0) {
                            p.push(b'~');
                        }
                        push_literal(&mut p, s);
                    }
                }
            }
            FetchAtt::BinarySize(part) => {
                let decoded = binary(l, part)?;
                let spec: Vec<String> = part.iter().map(|n| n.to_string()).collect();
                p.extend_from_slice(
                    format!(
                        "BINARY.SIZE[{}] {}",
                        spec.join("."),
                        decoded.map_or(0, |d| d.len())
                    )
                    .as_bytes(),
                );
            }
        }
        parts.push(p);
    }
    if add_flags && !wants_flags {
        parts.push(format!("FLAGS {}", msg.flag_list()).into_bytes());
    }
    if add_flags && job.condstore && !job.items.contains(&FetchAtt::ModSeq) {
        parts.push(format!("MODSEQ ({})", msg.modseq).into_bytes());
    }
    let mut out = format!("* {seq} FETCH (").into_bytes();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b")\r\n");
    Ok(out)
}

fn section_bytes(l: &mut Loaded<'_>, section: &Section) -> Result<Option<Vec<u8>>, StoreError> {
    if section.part.is_empty() && section.text.is_none() {
        return Ok(Some(l.data()?.to_vec()));
    }
    let mime = l.mime()?;
    let data = l.data()?;
    Ok(mime.section(data, section))
}

/// A part's body that holds NUL octets (appended as binary with a literal8, RFC 3516 §4.4)
/// cannot travel in a BODY[n] literal (RFC 9051 §4.3: no NUL): it is sent base64-encoded in
/// 76-character lines, as Dovecot does; BINARY[n] gives the octets themselves.
fn encode_binary_part(section: &Section, bytes: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
    if section.part.is_empty() || section.text.is_some() || !bytes.contains(&0) {
        return bytes;
    }
    let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let mut out = Vec::with_capacity(text.len() + text.len() / 38 + 2);
    for line in text.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// BINARY[part]: the part's body with its transfer encoding undone (RFC 3516).
fn binary(l: &mut Loaded<'_>, part: &[u32]) -> Result<Option<Vec<u8>>, FetchFail> {
    if part.is_empty() {
        return Ok(Some(l.data()?.to_vec()));
    }
    let mime = l.mime()?;
    let data = l.data()?;
    let Some(p) = mime.part(part) else {
        return Ok(None);
    };
    let body = data.get(p.body.clone()).unwrap_or_default();
    let cte = p
        .encoding
        .as_deref()
        .map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase())
        .unwrap_or_default();
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(Some(body.to_vec())),
        "base64" => decode_base64(body).map(Some).ok_or(FetchFail::UnknownCte),
        "quoted-printable" => Ok(Some(decode_qp(body))),
        _ => Err(FetchFail::UnknownCte),
    }
}

/// `nstring` helper re-exported for the session's responses.
pub fn nstring(s: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::new();
    push_nstring(&mut v, s);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial() {
        assert_eq!(partial_slice(b"hello", Some((1, 3))), b"ell");
        assert_eq!(partial_slice(b"hello", Some((4, 100))), b"o");
        assert_eq!(partial_slice(b"hello", Some((10, 1))), b"");
    }
}
