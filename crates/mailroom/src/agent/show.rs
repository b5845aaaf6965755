//! Reading a message for a person: headers decoded from RFC 2047, the text decoded from
//! base64 / quoted-printable in its charset (mail-parser), attachments listed by name and
//! size and saved on request. Control characters from the message are escaped before they
//! reach the terminal.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use mail_parser::{Address, Message, MessageParser, MimeHeaders};
use mailroom_client::trace::printable;

use super::failure::AgentError;

fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// `Name <addr>, addr2` from a parsed address header.
fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else { return String::new() };
    a.iter()
        .map(|m| match (m.name(), m.address()) {
            (Some(n), Some(ad)) => format!("{n} <{ad}>"),
            (None, Some(ad)) => ad.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Safe to print: control characters other than TAB and line ends escaped.
fn clean(s: &str) -> String {
    s.split('\n')
        .map(|l| printable(l.strip_suffix('\r').unwrap_or(l).as_bytes()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The header fields a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub date: String,
    pub message_id: String,
}

/// Decodes the listing fields from a message or just its header (TOP n 0).
pub fn summary(raw: &[u8]) -> Summary {
    let Some(m) = parse(raw) else {
        return Summary::default();
    };
    Summary {
        from: clean(&addresses(m.from())),
        to: clean(&addresses(m.to())),
        subject: clean(m.subject().unwrap_or("")),
        date: m.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        message_id: clean(m.message_id().unwrap_or("")),
    }
}

/// One attachment, decoded.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

fn attachments_of(m: &Message<'_>) -> Vec<Part> {
    m.attachments()
        .enumerate()
        .map(|(i, p)| {
            let content_type = p
                .content_type()
                .map(|c| match c.subtype() {
                    Some(s) => format!("{}/{}", c.ctype(), s),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = p
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            Part {
                name,
                content_type,
                data: p.contents().to_vec(),
            }
        })
        .collect()
}

/// The message as a person reads it: From/To/Cc/Date/Subject, the text, the attachments.
pub fn render(raw: &[u8]) -> String {
    let Some(m) = parse(raw) else {
        return format!(
            "(this is not a message mail-parser can read; here it is raw)\n{}",
            clean(&String::from_utf8_lossy(raw))
        );
    };
    let mut out = String::new();
    let mut field = |name: &str, value: String| {
        if !value.is_empty() {
            out.push_str(&format!("{name}: {}\n", clean(&value)));
        }
    };
    field("From", addresses(m.from()));
    field("To", addresses(m.to()));
    field("Cc", addresses(m.cc()));
    field("Date", m.date().map(|d| d.to_rfc822()).unwrap_or_default());
    field("Subject", m.subject().unwrap_or("").to_string());
    out.push('\n');
    let mut texts: Vec<Cow<'_, str>> = Vec::new();
    for i in 0..m.text_body_count() {
        if let Some(t) = m.body_text(i) {
            texts.push(t);
        }
    }
    if texts.is_empty() {
        out.push_str("(no text)\n");
    }
    for t in texts {
        let t = clean(&t);
        out.push_str(&t);
        if !t.ends_with('\n') {
            out.push('\n');
        }
    }
    let parts = attachments_of(&m);
    if !parts.is_empty() {
        out.push_str(&format!("\nAttachments ({}):\n", parts.len()));
        for (i, p) in parts.iter().enumerate() {
            out.push_str(&format!(
                "  {}. {} ({}, {} bytes)\n",
                i + 1,
                clean(&p.name),
                p.content_type,
                p.data.len()
            ));
        }
    }
    out
}

/// Decoded attachments of a message.
pub fn attachments(raw: &[u8]) -> Vec<Part> {
    parse(raw).map(|m| attachments_of(&m)).unwrap_or_default()
}

/// A file name that cannot escape `dir`: the last path component, no control characters,
/// not hidden, not empty.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || c == ':' { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "attachment".to_string()
    } else {
        cleaned
    }
}

/// Writes each attachment into `dir` (created if missing), never overwriting: `a.pdf`,
/// then `a-1.pdf`, ... Returns what was written.
pub fn save_attachments(raw: &[u8], dir: &Path) -> Result<Vec<(PathBuf, usize)>, AgentError> {
    let parts = attachments(raw);
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| AgentError::local(format!("cannot create {}: {e}", dir.display())))?;
    let mut saved = Vec::new();
    for p in parts {
        let name = safe_file_name(&p.name);
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
            _ => (name.clone(), String::new()),
        };
        let mut path = dir.join(&name);
        let mut n = 1;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(&p.data).map_err(|e| {
                        AgentError::local(format!("cannot write {}: {e}", path.display()))
                    })?;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    path = dir.join(format!("{stem}-{n}{ext}"));
                    n += 1;
                }
                Err(e) => {
                    return Err(AgentError::local(format!(
                        "cannot write {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        saved.push((path, p.data.len()));
    }
    Ok(saved)
}

/// A JSON string literal (RFC 8259 §7).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `N` for a message without `\Seen`, then `D` (\Deleted), `F` (\Flagged), `A` (\Answered):
/// the compact flags column of mail readers.
pub fn flag_letters(flags: &[String]) -> String {
    let has = |f: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let mut s = String::new();
    s.push(if has("\\Seen") { ' ' } else { 'N' });
    for (flag, letter) in [("\\Deleted", 'D'), ("\\Flagged", 'F'), ("\\Answered", 'A')] {
        if has(flag) {
            s.push(letter);
        }
    }
    s
}

/// `s` cut to `n` characters, the last one an ellipsis when anything was cut (a column of a
/// listing).
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.test>\r\nTo: bob@example.test\r\nSubject: =?utf-8?b?R3LDvMOfZQ==?=\r\nDate: Sun, 22 Nov 2026 01:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSch=F6n =\r\nhier\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../etc/x.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--b--\r\n";

    #[test]
    fn renders_decoded() {
        let r = render(MSG.as_bytes());
        assert!(r.contains("From: Jörg <jorg@example.test>\n"), "{r}");
        assert!(r.contains("Subject: Grüße\n"), "{r}");
        assert!(r.contains("Schön hier"), "{r}");
        assert!(
            r.contains("1. ../../etc/x.bin (application/octet-stream, 4 bytes)"),
            "{r}"
        );
        let s = summary(MSG.as_bytes());
        assert_eq!(s.subject, "Grüße");
        assert_eq!(s.from, "Jörg <jorg@example.test>");
    }

    #[test]
    fn saves_safely() {
        let dir = tempfile::tempdir().unwrap();
        let saved = save_attachments(MSG.as_bytes(), dir.path()).unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].0, dir.path().join("x.bin"));
        assert_eq!(std::fs::read(&saved[0].0).unwrap(), vec![0, 1, 2, 255]);
        let again = save_attachments(MSG.as_bytes(), dir.path()).unwrap();
        assert_eq!(again[0].0, dir.path().join("x-1.bin"));
        assert_eq!(safe_file_name(".."), "attachment");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("a\u{1b}b"), "a_b");
    }

    #[test]
    fn escapes_terminal_controls() {
        let r = render(b"Subject: a\x1b[2Jb\r\n\r\nbody\x07\r\n");
        assert!(!r.contains('\x1b') && !r.contains('\x07'), "{r:?}");
    }

    #[test]
    fn flag_letters_column() {
        let f = |v: &[&str]| flag_letters(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(f(&[]), "N");
        assert_eq!(f(&["\\Seen"]), " ");
        assert_eq!(f(&["\\Seen", "\\Deleted", "\\Answered"]), " DA");
        assert_eq!(f(&["\\Flagged"]), "NF");
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
