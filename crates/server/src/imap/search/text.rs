//! What SEARCH's text keys match against (RFC 9051 §6.4.4: case-insensitive substrings):
//! a message's header fields, raw and with their encoded words decoded, address fields as
//! parsed addresses, and its body, raw and with text parts decoded; each lower-cased, computed
//! at most once per message and only when a key needs it.

use std::sync::Arc;

use mailroom_store::StoreError;

use crate::imap::cache::Loaded;
use mailroom_proto::imap::decode;

/// The lower-cased texts SEARCH matches against, each computed at most once per message and
/// only when a key needs it.
#[derive(Default)]
pub(in crate::imap) struct SearchText {
    /// The top-level header fields (shared through [`ImapShared`](crate::imap::ImapShared)).
    pub(super) fields: Option<Arc<Fields>>,
    /// `fields` were parsed from the message by this search (not found in a cache or in the
    /// store's copy), so the search keeps them in the store.
    pub(super) fields_parsed: bool,
    /// The whole message, raw (TEXT).
    pub(super) raw: Option<String>,
    /// The top-level body, raw (BODY).
    pub(super) raw_body: Option<String>,
    /// The decoded text parts that differ from their raw octets (see [`decode::body_texts`]).
    pub(super) body_texts: Option<Vec<String>>,
}

/// One header field for SEARCH, lower-cased, as parsed from a message (then kept as
/// [`Fields`]).
#[derive(Debug, PartialEq, Eq)]
pub(in crate::imap) struct Field {
    name: String,
    /// The unfolded value as sent.
    raw: String,
    /// The value with encoded words decoded and blanks collapsed, when that differs.
    decoded: Option<String>,
    /// Address fields: the parsed addresses as `name <mailbox@host>, ...` (comments and
    /// folding gone, names decoded), so `FROM user@domain` finds `<user (c)@ (c) domain>`.
    addresses: Option<String>,
}

#[cfg(test)]
impl Field {
    pub(in crate::imap) fn for_test(name: &str, raw: &str) -> Field {
        Field {
            name: name.into(),
            raw: raw.into(),
            decoded: None,
            addresses: None,
        }
    }
}

/// A message's SEARCH header fields in the form the store keeps ([`encode_fields`]): one
/// buffer, read in place. A search of a mailbox too large for the cache reads one such row
/// per message; taking each apart into strings cost more than the search itself.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::imap) struct Fields(Vec<u8>);

/// One field of [`Fields`], borrowed.
pub(in crate::imap) struct FieldRef<'a> {
    name: &'a str,
    raw: &'a str,
    decoded: Option<&'a str>,
    addresses: Option<&'a str>,
}

impl Fields {
    /// The record, if it is one [`encode_fields`] wrote (a truncated or foreign one is
    /// refused, never misread).
    pub(in crate::imap) fn from_record(data: Vec<u8>) -> Option<Fields> {
        let mut r = Reader(&data);
        while !r.0.is_empty() {
            r.field()?;
        }
        Some(Fields(data))
    }

    pub(in crate::imap) fn new(fields: &[Field]) -> Fields {
        Fields(encode_fields(fields))
    }

    /// The stored form.
    pub(in crate::imap) fn record(&self) -> &[u8] {
        &self.0
    }

    pub(in crate::imap) fn iter(&self) -> impl Iterator<Item = FieldRef<'_>> {
        let mut r = Reader(&self.0);
        std::iter::from_fn(move || r.field())
    }
}

/// Reads [`encode_fields`]' form.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A length-prefixed string (`Some(None)`: absent); `None` when malformed.
    fn string(&mut self) -> Option<Option<&'a str>> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len);
        if len == u32::MAX {
            self.0 = rest;
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let s = std::str::from_utf8(rest.get(..len)?).ok()?;
        self.0 = &rest[len..];
        Some(Some(s))
    }

    /// The next field; `None` at the end or when malformed.
    fn field(&mut self) -> Option<FieldRef<'a>> {
        Some(FieldRef {
            name: self.string()??,
            raw: self.string()??,
            decoded: self.string()?,
            addresses: self.string()?,
        })
    }
}

/// Header fields whose value is an address list (RFC 5322 §3.6.2, §3.6.3).
const ADDRESS_FIELDS: &[&str] = &["from", "sender", "reply-to", "to", "cc", "bcc"];

/// The addresses of an address field as SEARCH matches them, lower-cased.
fn address_text(value: &[u8]) -> String {
    use mailroom_proto::imap::mime::{parse_addresses, Addr};
    let mut out: Vec<String> = Vec::new();
    for a in parse_addresses(value) {
        if let Addr::Mailbox {
            name,
            mailbox,
            host,
            ..
        } = a
        {
            let spec = format!(
                "{}@{}",
                String::from_utf8_lossy(&mailbox),
                String::from_utf8_lossy(&host)
            );
            out.push(match name {
                Some(n) => {
                    let n = decode::header_text(&n)
                        .unwrap_or_else(|| String::from_utf8_lossy(&n).into_owned());
                    format!("{n} <{spec}>")
                }
                None => spec,
            });
        }
    }
    out.join(", ").to_lowercase()
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_lowercase()
}

/// Substring match, case-insensitive by Unicode lower-casing (RFC 9051 §6.4.4); `hay` is
/// already lower-cased.
fn has(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.contains(needle)
}

impl Loaded<'_> {
    fn search_fields(&mut self) -> Result<&Fields, StoreError> {
        if self.search.fields.is_none() {
            let fields = match self.cache.fields.get(self.key) {
                Some(f) => f,
                None => {
                    let mime = self.mime()?;
                    let data = self.data()?;
                    let fields: Vec<Field> =
                        mailroom_proto::imap::mime::fields(data, &mime.root.header)
                            .into_iter()
                            .map(|(name, value)| {
                                let name = name.to_lowercase();
                                let addresses = ADDRESS_FIELDS
                                    .contains(&name.as_str())
                                    .then(|| address_text(&value));
                                Field {
                                    raw: lower(&value),
                                    decoded: decode::header_text(&value).map(|t| t.to_lowercase()),
                                    addresses,
                                    name,
                                }
                            })
                            .collect();
                    let fields = Arc::new(Fields::new(&fields));
                    self.cache.fields.put(self.key, fields.clone());
                    self.search.fields_parsed = true;
                    fields
                }
            };
            self.search.fields = Some(fields);
        }
        Ok(self
            .search
            .fields
            .get_or_insert_with(|| Arc::new(Fields(Vec::new()))))
    }

    fn search_raw(&mut self) -> Result<&str, StoreError> {
        if self.search.raw.is_none() {
            self.search.raw = Some(lower(self.data()?));
        }
        Ok(self.search.raw.as_deref().unwrap_or_default())
    }

    fn search_raw_body(&mut self) -> Result<&str, StoreError> {
        if self.search.raw_body.is_none() {
            let mime = self.mime()?;
            let data = self.data()?;
            self.search.raw_body =
                Some(lower(data.get(mime.root.body.clone()).unwrap_or_default()));
        }
        Ok(self.search.raw_body.as_deref().unwrap_or_default())
    }

    fn search_body_texts(&mut self) -> Result<&[String], StoreError> {
        if self.search.body_texts.is_none() {
            let mime = self.mime()?;
            let data = self.data()?;
            let mut texts = Vec::new();
            decode::body_texts(data, &mime.root, &mut texts);
            for t in &mut texts {
                *t = t.to_lowercase();
            }
            self.search.body_texts = Some(texts);
        }
        Ok(self.search.body_texts.as_deref().unwrap_or_default())
    }
}

/// The format of [`encode_fields`] (the store keeps it with the data, so a later change of
/// the format makes old rows be parsed again rather than misread).
pub(super) const FIELDS_FORMAT: u32 = 1;

/// A message's SEARCH fields as kept in the store (`message_search`): per field its name,
/// raw value, decoded value and address text, each a u32 length (little-endian; `u32::MAX`
/// for none) and its UTF-8.
fn encode_fields(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |s: Option<&str>| match s {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    };
    for f in fields {
        put(Some(&f.name));
        put(Some(&f.raw));
        put(f.decoded.as_deref());
        put(f.addresses.as_deref());
    }
    out
}

pub(super) fn header_contains(
    l: &mut Loaded<'_>,
    field: &str,
    needle: &str,
) -> Result<bool, StoreError> {
    let n = needle.to_lowercase();
    let field = field.to_lowercase();
    // RFC 9051 §6.4.4 HEADER with an empty string matches every message with the field.
    Ok(l.search_fields()?.iter().any(|f| {
        f.name == field
            && (has(f.raw, &n)
                || f.decoded.is_some_and(|d| has(d, &n))
                || f.addresses.is_some_and(|a| has(a, &n)))
    }))
}

/// BODY: the needle in the raw body or in the decoded text of a text part.
pub(super) fn body_contains(l: &mut Loaded<'_>, needle: &str) -> Result<bool, StoreError> {
    let n = needle.to_lowercase();
    if has(l.search_raw_body()?, &n) {
        return Ok(true);
    }
    Ok(l.search_body_texts()?.iter().any(|t| has(t, &n)))
}

/// TEXT: the needle in the raw message, a decoded header field (`name: value`) or the
/// decoded text of a text part.
pub(super) fn text_contains(l: &mut Loaded<'_>, needle: &str) -> Result<bool, StoreError> {
    let n = needle.to_lowercase();
    if has(l.search_raw()?, &n) {
        return Ok(true);
    }
    let in_header = l.search_fields()?.iter().any(|f| {
        f.decoded.is_some_and(|d| {
            has(d, &n) || (n.contains(':') && has(&format!("{}: {d}", f.name), &n))
        })
    });
    if in_header {
        return Ok(true);
    }
    Ok(l.search_body_texts()?.iter().any(|t| has(t, &n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_the_store_format() {
        let fields = vec![
            Field {
                name: "subject".into(),
                raw: "=?utf-8?q?gr=c3=bc=c3=9fe?=".into(),
                decoded: Some("grüße".into()),
                addresses: None,
            },
            Field {
                name: "from".into(),
                raw: "a <a@b.test>".into(),
                decoded: None,
                addresses: Some("a <a@b.test>".into()),
            },
            Field {
                name: "x-empty".into(),
                raw: String::new(),
                decoded: None,
                addresses: None,
            },
        ];
        let data = encode_fields(&fields);
        let read = Fields::from_record(data.clone()).expect("a record");
        let back: Vec<Field> = read
            .iter()
            .map(|f| Field {
                name: f.name.into(),
                raw: f.raw.into(),
                decoded: f.decoded.map(Into::into),
                addresses: f.addresses.map(Into::into),
            })
            .collect();
        assert_eq!(back, fields);
        assert_eq!(read.record(), data.as_slice());
        assert_eq!(
            Fields::from_record(vec![]).map(|f| f.iter().count()),
            Some(0)
        );
        // Truncated or foreign records are refused, never misread.
        assert_eq!(Fields::from_record(data[..data.len() - 1].to_vec()), None);
        assert_eq!(Fields::from_record(b"\x05\x00\x00\x00ab".to_vec()), None);
        assert_eq!(Fields::from_record(vec![0xff, 0xff, 0xff, 0xff]), None);
        // A name must be present; a field cut after its name is refused.
        assert_eq!(Fields::from_record(data[..8].to_vec()), None);
    }
}
