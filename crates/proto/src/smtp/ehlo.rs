//! EHLO extensions (RFC 5321 §4.1.1.1, §2.4): what a client learns from the server's EHLO
//! reply. The server sends the keywords as the lines after the first of a multi-line 250
//! [`Reply`] (`250-PIPELINING`, `250-SIZE 26214400`, `250 AUTH PLAIN LOGIN`);
//! [`Extensions::from_ehlo`] reads them back.
//!
//! ```text
//! ehlo-ok-rsp = "250" SP Domain [ SP ehlo-greet ] CRLF                       ; RFC 5321 §4.1.1.1
//!             / "250" "-" Domain [ SP ehlo-greet ] CRLF
//!               *( "250" "-" ehlo-line CRLF ) "250" SP ehlo-line CRLF
//! ehlo-line   = ehlo-keyword *( SP ehlo-param )
//! ```

use super::reply::Reply;

/// What the server offered in its EHLO reply (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub pipelining: bool,
    /// `SIZE n` (RFC 1870 §4); `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    pub starttls: bool,
    pub enhanced_codes: bool,
    /// AUTH mechanisms in upper case, in the server's order (RFC 4954 §3).
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the extension keywords of an EHLO reply (every line after the first, as received;
    /// keywords are case-insensitive, RFC 5321 §2.4). Unknown keywords are ignored.
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.texts().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eightbitmime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "CHUNKING" => ext.chunking = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_codes = true,
                "AUTH" => push_mechanisms(&mut ext.auth, words),
                // Pre-RFC 4954 servers (and Outlook-era clients) use "AUTH=LOGIN PLAIN".
                k if k.starts_with("AUTH=") => {
                    let first = line.split_whitespace().next().unwrap_or("");
                    let first = first.get(5..).unwrap_or("");
                    push_mechanisms(&mut ext.auth, std::iter::once(first).chain(words));
                }
                _ => {}
            }
        }
        ext
    }

    /// Whether the server offers an AUTH mechanism (case-insensitive).
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

fn push_mechanisms<'a>(list: &mut Vec<String>, words: impl Iterator<Item = &'a str>) {
    for w in words {
        let m = w.to_ascii_uppercase();
        if !m.is_empty() && !list.contains(&m) {
            list.push(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply::received(code, lines.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn extensions_from_ehlo() {
        let r = reply(
            250,
            &[
                "mx.example.test Hello pc1",
                "PIPELINING",
                "SIZE 26214400",
                "8BITMIME",
                "smtputf8",
                "ENHANCEDSTATUSCODES",
                "CHUNKING",
                "STARTTLS",
                "HELP",
                "AUTH PLAIN LOGIN",
                "AUTH=LOGIN CRAM-MD5",
            ],
        );
        let e = Extensions::from_ehlo(&r);
        assert!(
            e.pipelining
                && e.eightbitmime
                && e.smtputf8
                && e.enhanced_codes
                && e.chunking
                && e.starttls
        );
        assert_eq!(e.size, Some(26_214_400));
        assert_eq!(e.auth, vec!["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(e.offers_auth("plain"));
        // The first line is the greeting, never a keyword.
        let e = Extensions::from_ehlo(&reply(250, &["PIPELINING"]));
        assert!(!e.pipelining);
        let e = Extensions::from_ehlo(&reply(250, &["x", "SIZE", "", "SIZE nonsense"]));
        assert_eq!(e.size, Some(0));
    }

    #[test]
    fn reads_what_the_server_builds() {
        // The shape of mailroom's own EHLO reply (server/src/smtp): no enhanced codes.
        let built = Reply::multiline(
            250,
            "",
            vec![
                "mx.example.test Hello pc1 [127.0.0.1]".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
                "8BITMIME".into(),
                "AUTH PLAIN LOGIN".into(),
            ],
        );
        let e = Extensions::from_ehlo(&built);
        assert!(e.pipelining && e.eightbitmime && !e.smtputf8);
        assert_eq!(e.size, Some(1000));
        assert_eq!(e.auth, vec!["PLAIN", "LOGIN"]);
    }
}
