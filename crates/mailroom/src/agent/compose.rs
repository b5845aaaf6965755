//! Building the message: RFC 5322 headers, MIME (RFC 2045-2049) with mail-builder.
//!
//! - Header text that is not ASCII (a subject, a display name) is encoded per RFC 2047 by
//!   mail-builder (`=?utf-8?...?=`); file names per RFC 2231.
//! - The text is `text/plain; charset="utf-8"`: 7bit when it is plain ASCII with short lines,
//!   else quoted-printable or base64, whichever is shorter (mail-builder's choice).
//! - With attachments the message is `multipart/mixed`: the text first, then each file
//!   (base64 for binary data; text files may be quoted-printable), with its name.
//! - Date (RFC 5322 §3.6.1) and Message-ID (§3.6.4) are always set; Bcc recipients are only
//!   in the envelope, never in a header (§3.6.3 allows either; we choose privacy).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mail_builder::headers::address::Address;
use mail_builder::MessageBuilder;

use super::failure::AgentError;

/// An address with an optional display name: `Alice <alice@example.test>` or
/// `alice@example.test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl Mailbox {
    /// Parses `addr`, `<addr>` or `Name <addr>` (a quoted name loses its quotes).
    pub fn parse(s: &str) -> Result<Mailbox, AgentError> {
        let s = s.trim();
        let (name, addr) = match (s.rfind('<'), s.ends_with('>')) {
            (Some(i), true) => {
                let name = s[..i].trim().trim_matches('"').trim();
                (
                    (!name.is_empty()).then(|| name.to_string()),
                    &s[i + 1..s.len() - 1],
                )
            }
            _ => (None, s),
        };
        let addr = addr.trim();
        let valid = match addr.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains(['@', '[', ']'])
                    && !addr
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "<>,;".contains(c))
            }
            None => false,
        };
        if !valid {
            return Err(AgentError::local(format!(
                "'{s}' is not an address like bob@example.test or \"Bob <bob@example.test>\""
            )));
        }
        Ok(Mailbox {
            name,
            address: addr.to_string(),
        })
    }

    /// Several addresses separated by commas (or one per call).
    pub fn parse_list(s: &str) -> Result<Vec<Mailbox>, AgentError> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Mailbox::parse)
            .collect()
    }

    fn to_builder(&self) -> Address<'static> {
        Address::new_address(self.name.clone(), self.address.clone())
    }
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

/// A file to attach.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

impl Attachment {
    /// Reads a file; the name is the file's own name, the type comes from its extension.
    pub fn from_path(path: &Path) -> Result<Attachment, AgentError> {
        let data = std::fs::read(path)
            .map_err(|e| AgentError::local(format!("cannot attach {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".to_string());
        Ok(Attachment {
            content_type: content_type_for(&name).to_string(),
            name,
            data,
        })
    }
}

/// A MIME type from the file name's extension (the common ones; else octet-stream).
pub fn content_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "text" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

/// Everything a message is made of.
#[derive(Debug, Clone)]
pub struct Draft {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

impl Draft {
    /// The envelope recipients (RCPT TO): To, Cc and Bcc, each address once.
    pub fn recipients(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.to.iter().chain(&self.cc).chain(&self.bcc) {
            if !out.iter().any(|a| a.eq_ignore_ascii_case(&m.address)) {
                out.push(m.address.clone());
            }
        }
        out
    }

    /// The message octets, CRLF line ends.
    pub fn build(&self) -> Result<Vec<u8>, AgentError> {
        let mut body = self.body.replace("\r\n", "\n").replace('\r', "\n");
        if !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        let body = body.replace('\n', "\r\n");
        let mut b = MessageBuilder::new()
            .from(self.from.to_builder())
            .subject(self.subject.clone())
            .message_id(message_id(&self.from.address))
            .date(mail_builder::headers::date::Date::now());
        if !self.to.is_empty() {
            b = b.to(list(&self.to));
        }
        if !self.cc.is_empty() {
            b = b.cc(list(&self.cc));
        }
        b = b.text_body(body);
        for a in &self.attachments {
            b = b.attachment(a.content_type.clone(), a.name.clone(), a.data.clone());
        }
        b.write_to_vec()
            .map_err(|e| AgentError::local(format!("cannot build the message: {e}")))
    }
}

fn list(m: &[Mailbox]) -> Address<'static> {
    if m.len() == 1 {
        return m[0].to_builder();
    }
    Address::new_list(m.iter().map(Mailbox::to_builder).collect())
}

/// `<time.pid.counter@domain-of-sender>` (RFC 5322 §3.6.4: unique, the right side a domain
/// the sender controls).
fn message_id(from: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    format!(
        "{:x}.{:x}.{:x}.{}@{domain}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads the attachments named on the command line or at the prompt.
pub fn read_attachments(paths: &[PathBuf]) -> Result<Vec<Attachment>, AgentError> {
    paths.iter().map(|p| Attachment::from_path(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        let m = Mailbox::parse("bob@example.test").unwrap();
        assert_eq!((m.name, m.address.as_str()), (None, "bob@example.test"));
        let m = Mailbox::parse("  Bob Smith <bob@example.test> ").unwrap();
        assert_eq!(
            (m.name.as_deref(), m.address.as_str()),
            (Some("Bob Smith"), "bob@example.test")
        );
        let m = Mailbox::parse("\"Jörg\" <jörg@example.test>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Jörg"));
        assert_eq!(Mailbox::parse("<a@b>").unwrap().address, "a@b");
        for bad in [
            "",
            "bob",
            "@example.test",
            "bob@",
            "a b@c",
            "a@b>",
            "a@b\r\nRCPT",
            "a@b,c@d",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?}");
        }
        let l = Mailbox::parse_list("a@b, C <c@d>,").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].to_string(), "C <c@d>");
    }

    #[test]
    fn recipients_are_unique_and_include_bcc() {
        let m = |s: &str| Mailbox::parse(s).unwrap();
        let d = Draft {
            from: m("a@x"),
            to: vec![m("b@x"), m("B@x")],
            cc: vec![m("c@x")],
            bcc: vec![m("d@x"), m("b@x")],
            subject: "s".into(),
            body: "hi".into(),
            attachments: vec![],
        };
        assert_eq!(d.recipients(), vec!["b@x", "c@x", "d@x"]);
        let msg = String::from_utf8(d.build().unwrap()).unwrap();
        assert!(
            !msg.contains("d@x"),
            "Bcc must not be in the header:\n{msg}"
        );
        assert!(msg.contains("Message-ID: <"), "{msg}");
        assert!(msg.contains("@x>\r\n"), "{msg}");
        assert!(msg.contains("Date: "), "{msg}");
        assert!(msg.ends_with("hi\r\n"), "{msg}");
        assert!(
            !msg.replace("\r\n", "").contains('\n'),
            "bare LF in:\n{msg}"
        );
    }

    #[test]
    fn non_ascii_subject_is_encoded() {
        let m = |s: &str| Mailbox::parse(s).unwrap();
        let d = Draft {
            from: m("Jörg <a@x>"),
            to: vec![m("b@x")],
            cc: vec![],
            bcc: vec![],
            subject: "Grüße aus Köln".into(),
            body: "Schöne Grüße\n".into(),
            attachments: vec![Attachment {
                name: "daten.bin".into(),
                content_type: "application/octet-stream".into(),
                data: vec![0, 1, 2, 255],
            }],
        };
        let msg = d.build().unwrap();
        assert!(msg.is_ascii(), "{}", String::from_utf8_lossy(&msg));
        let text = String::from_utf8(msg).unwrap();
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(
            text.contains("charset=\"utf-8\"") || text.contains("charset=utf-8"),
            "{text}"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_for("a.PDF"), "application/pdf");
        assert_eq!(content_type_for("notes.txt"), "text/plain");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }
}
