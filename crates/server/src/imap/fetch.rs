//! FETCH (RFC 9051 §6.4.5, §7.5.2; BINARY RFC 3516, CONDSTORE RFC 7162): the command, which
//! sets `\Seen` where asked and picks the messages, and the responses, built as
//! [`Response`]s and encoded on a blocking thread against the store; the session queues the
//! encoded octets untraced.

use mailroom_proto::imap::response::{Response, Value};
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

/// A section's octets cut to a partial fetch's `<origin.count>` (RFC 9051 §6.4.5). The whole
/// section is taken as it is; a partial one is copied out, so the whole section's memory is
/// freed at once rather than held for the part.
fn partial_owned(data: Vec<u8>, partial: Option<(u32, u32)>) -> Vec<u8> {
    match partial {
        None => data,
        Some(_) => data[mailroom_proto::imap::mime::partial_range(data.len(), partial)].to_vec(),
    }
}

fn atom(name: &str) -> Value {
    Value::Atom(name.to_string())
}

/// `BODY[1.2]`, `BINARY[1]<0>`: a section item's name, with the origin of a partial fetch
/// (RFC 9051 §7.5.2).
fn section_name(item: &str, spec: &str, partial: Option<(u32, u32)>) -> Value {
    match partial {
        Some((origin, _)) => Value::Atom(format!("{item}[{spec}]<{origin}>")),
        None => Value::Atom(format!("{item}[{spec}]")),
    }
}

/// One message's `* seq FETCH (...)`, encoded. The items are [`Value`]s: section data as
/// literals (BINARY octets holding NUL as literal8), ENVELOPE, BODY and BODYSTRUCTURE as
/// the octets the MIME structure cached ([`Value::Encoded`]). A section's octets are copied
/// out of the message once and then once more, into the response's buffer.
fn fetch_one(
    l: &mut Loaded<'_>,
    seq: usize,
    job: &FetchJob,
    add_flags: bool,
) -> Result<Vec<u8>, FetchFail> {
    let msg = l.msg;
    let mut items: Vec<Value> = Vec::new();
    let wants_uid = job.items.contains(&FetchAtt::Uid);
    if job.uid && !wants_uid {
        // RFC 9051 §6.4.9: UID FETCH responses always include UID.
        items.extend([atom("UID"), Value::num(msg.uid)]);
    }
    let wants_flags = job.items.contains(&FetchAtt::Flags);
    for item in &job.items {
        match item {
            FetchAtt::Uid => items.extend([atom("UID"), Value::num(msg.uid)]),
            FetchAtt::Flags => items.extend([atom("FLAGS"), msg.flag_list()]),
            FetchAtt::InternalDate => {
                items.extend([atom("INTERNALDATE"), Value::date_time(msg.internal_date)])
            }
            FetchAtt::Rfc822Size => items.extend([atom("RFC822.SIZE"), Value::num(msg.size)]),
            FetchAtt::ModSeq => items.extend(msg.modseq_item()),
            FetchAtt::Envelope => {
                let envelope = l.mime()?.envelope.clone();
                items.extend([atom("ENVELOPE"), Value::Encoded(envelope)]);
            }
            FetchAtt::Body => {
                let body = l.mime()?.body.clone();
                items.extend([atom("BODY"), Value::Encoded(body)]);
            }
            FetchAtt::BodyStructure => {
                let structure = l.mime()?.bodystructure.clone();
                items.extend([atom("BODYSTRUCTURE"), Value::Encoded(structure)]);
            }
            FetchAtt::Rfc822 => {
                let data = l.data()?.to_vec();
                items.extend([atom("RFC822"), Value::Literal(data)]);
            }
            FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
                let mime = l.mime()?;
                let data = l.data()?;
                let (name, r) = if *item == FetchAtt::Rfc822Header {
                    ("RFC822.HEADER", mime.root.header.clone())
                } else {
                    ("RFC822.TEXT", mime.root.body.clone())
                };
                let part = data.get(r).unwrap_or_default().to_vec();
                items.extend([atom(name), Value::Literal(part)]);
            }
            FetchAtt::BodySection {
                section, partial, ..
            } => {
                let bytes = section_bytes(l, section)?.map(|b| encode_binary_part(section, b));
                items.push(section_name("BODY", &section.spec(), *partial));
                items.push(match bytes {
                    // RFC 9051 §6.4.5: a part that does not exist is sent as NIL.
                    None => Value::Nil,
                    Some(b) => Value::Literal(partial_owned(b, *partial)),
                });
            }
            FetchAtt::Binary { part, partial, .. } => {
                let decoded = binary(l, part)?;
                items.push(section_name("BINARY", &part_spec(part), *partial));
                items.push(match decoded {
                    None => Value::Nil,
                    Some(b) => {
                        let s = partial_owned(b, *partial);
                        // RFC 3516 §4.3: literal8 when the octets hold NUL.
                        if s.contains(&0) {
                            Value::Literal8(s)
                        } else {
                            Value::Literal(s)
                        }
                    }
                });
            }
            FetchAtt::BinarySize(part) => {
                let size = binary(l, part)?.map_or(0, |d| d.len());
                items.push(section_name("BINARY.SIZE", &part_spec(part), None));
                items.push(Value::num(size as u64));
            }
        }
    }
    if add_flags && !wants_flags {
        items.extend([atom("FLAGS"), msg.flag_list()]);
    }
    if add_flags && job.condstore && !job.items.contains(&FetchAtt::ModSeq) {
        items.extend(msg.modseq_item());
    }
    Ok(Response::fetch(seq as u32, items).to_bytes())
}

/// `1.2`: BINARY's part numbers.
fn part_spec(part: &[u32]) -> String {
    let spec: Vec<String> = part.iter().map(|n| n.to_string()).collect();
    spec.join(".")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial() {
        let hello = || b"hello".to_vec();
        assert_eq!(partial_owned(hello(), None), b"hello");
        assert_eq!(partial_owned(hello(), Some((1, 3))), b"ell");
        assert_eq!(partial_owned(hello(), Some((4, 100))), b"o");
        assert_eq!(partial_owned(hello(), Some((10, 1))), b"");
    }

    #[test]
    fn section_names() {
        assert_eq!(section_name("BODY", "1.MIME", None), atom("BODY[1.MIME]"));
        assert_eq!(
            section_name("BINARY", "", Some((5, 10))),
            atom("BINARY[]<5>")
        );
        assert_eq!(part_spec(&[1, 2]), "1.2");
    }
}
