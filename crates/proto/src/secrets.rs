//! What the session trace must not show: one masking rule for the client lines of SMTP, POP3
//! and IMAP (used by mailroom-server's trace), and for the few replies that repeat a word the
//! client sent (an unknown command name).

use std::borrow::Cow;

/// What replaces a secret in the trace: `C: AUTH PLAIN ****`, `C: a1 LOGIN alice ****`.
pub const MASK: &str = "****";

/// Words that announce a credential wherever they stand in a client line (case-insensitive):
/// IMAP `LOGIN` and `AUTHENTICATE`, POP3 `PASS` and `APOP` (and the SASL mechanism LOGIN).
const SECRET_WORDS: [&str; 4] = ["AUTHENTICATE", "LOGIN", "PASS", "APOP"];

/// SASL mechanism names, kept after `AUTH`/`AUTHENTICATE` in a masked line. Any other word
/// there stays masked: it might be a password typed in the wrong place.
const MECHANISMS: [&str; 12] = [
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "XOAUTH2",
    "OAUTHBEARER",
    "EXTERNAL",
    "ANONYMOUS",
    "GSSAPI",
    "NTLM",
];

/// The one masking rule for the client lines of every protocol's trace, applied whether the
/// command parsed or not: a line that starts with `AUTH` (SMTP, POP3) or contains `LOGIN`,
/// `AUTHENTICATE`, `PASS` or `APOP` anywhere (any case) is cut after the first such word
/// (after the SASL mechanism, if a known one follows `AUTH`/`AUTHENTICATE`) and the rest is
/// replaced by [`MASK`]. What comes before the word (an IMAP tag) is kept. A line with nothing
/// after the word (`AUTH LOGIN`, `a1 AUTHENTICATE PLAIN`) is shown whole.
///
/// It works on text alone, so it never needs the command to parse: a malformed `AUTH PLAIN
/// <base64> x`, a LOGIN behind a long tag or with unbalanced quotes are masked like good ones.
/// It can mask more than needed (`RCPT TO:<bob@compass.example>` shows as
/// `RCPT TO:<bob@compass ****`): the trace never shows a secret, at the price of an address.
pub fn mask_secrets(line: &str) -> Cow<'_, str> {
    // ASCII upper-casing keeps every byte offset, so offsets in `upper` are offsets in `line`
    // and always at character boundaries (the words are ASCII).
    let upper = line.to_ascii_uppercase();
    let lead = line.len() - line.trim_start_matches([' ', '\t']).len();
    let mut found: Option<(usize, usize)> = upper[lead..].starts_with("AUTH").then_some((lead, 4));
    for word in SECRET_WORDS {
        if let Some(at) = upper.find(word) {
            // The earliest word wins; at the same offset the longer (AUTHENTICATE over AUTH).
            if found.is_none_or(|(a, len)| at < a || (at == a && word.len() > len)) {
                found = Some((at, word.len()));
            }
        }
    }
    let Some((at, len)) = found else {
        return Cow::Borrowed(line);
    };
    let mut end = at + len;
    if upper[at..end].starts_with("AUTH") {
        let after = &line[end..];
        let next = after.trim_start_matches([' ', '\t']);
        let gap = after.len() - next.len();
        let word = next.find([' ', '\t', '\r', '\n']).unwrap_or(next.len());
        if gap > 0
            && MECHANISMS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&next[..word]))
        {
            end += gap + word;
        }
    }
    let shown = &line[..end];
    if line[end..].trim().is_empty() {
        Cow::Borrowed(shown)
    } else {
        Cow::Owned(format!("{shown} {MASK}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_secrets_table() {
        let long_tag = "t".repeat(100);
        let behind_long_tag = format!("{long_tag} LOGIN ****");
        let cases: Vec<(String, &str)> = vec![
            // Nothing secret: shown as sent.
            ("EHLO pc1".into(), "EHLO pc1"),
            (
                "MAIL FROM:<a@b.test> AUTH=<>".into(),
                "MAIL FROM:<a@b.test> AUTH=<>",
            ),
            ("a1 SELECT INBOX".into(), "a1 SELECT INBOX"),
            ("****".into(), "****"),
            ("USER alice".into(), "USER alice"),
            // SMTP / POP3 AUTH, parsed or not.
            ("AUTH PLAIN AGFsaWNlAHNlY3JldA==".into(), "AUTH PLAIN ****"),
            (
                "AUTH PLAIN AGFsaWNlAHNlY3JldA== x".into(),
                "AUTH PLAIN ****",
            ),
            ("AUTH LOGIN YWxpY2U= extra junk".into(), "AUTH LOGIN ****"),
            ("auth plain garbage here".into(), "auth plain ****"),
            ("  AUTH\tPLAIN\tc2VjcmV0".into(), "  AUTH\tPLAIN ****"),
            ("AUTH LOGIN".into(), "AUTH LOGIN"),
            ("AUTH".into(), "AUTH"),
            ("AUTH hunter2".into(), "AUTH ****"),
            ("AUTHPLAIN c2VjcmV0".into(), "AUTH ****"),
            ("AUTH PLAINc2VjcmV0".into(), "AUTH ****"),
            // POP3.
            ("PASS hunter2".into(), "PASS ****"),
            ("PASS my secret with spaces".into(), "PASS ****"),
            ("pass hunter2".into(), "pass ****"),
            ("PASShunter2".into(), "PASS ****"),
            ("APOP alice".into(), "APOP ****"),
            (
                "APOP alice c4c9334bac560ecc979e58001b3e22fb extra".into(),
                "APOP ****",
            ),
            // IMAP.
            ("a1 LOGIN alice secret".into(), "a1 LOGIN ****"),
            ("a1 login \"alice\" \"sec ret".into(), "a1 login ****"),
            ("a1 LOGIN alice {6}\r\nsecret".into(), "a1 LOGIN ****"),
            (
                format!("{long_tag} LOGIN alice secret extra"),
                &behind_long_tag,
            ),
            (
                "a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==".into(),
                "a2 AUTHENTICATE PLAIN ****",
            ),
            ("a2 AUTHENTICATE PLAIN".into(), "a2 AUTHENTICATE PLAIN"),
            ("a2 AUTHENTICATE hunter2".into(), "a2 AUTHENTICATE ****"),
            (
                "AUTHENTICATE PLAIN c2VjcmV0".into(),
                "AUTHENTICATE PLAIN ****",
            ),
            ("LOGIN alice secret".into(), "LOGIN ****"),
            // The word anywhere: more is masked than needed, never less.
            (
                "RCPT TO:<bob@compass.example>".into(),
                "RCPT TO:<bob@compass ****",
            ),
            // Non-ASCII before the word does not upset the offsets.
            ("ä€ LOGIN x".into(), "ä€ LOGIN ****"),
        ];
        for (line, want) in &cases {
            let got = mask_secrets(line);
            assert_eq!(got, *want, "{line:?}");
            // Masking what is already masked changes nothing.
            assert_eq!(mask_secrets(&got), got, "{line:?}");
        }
    }

    #[test]
    fn masked_lines_never_hold_the_secret() {
        for secret in ["hunter2", "c2VjcmV0", "s3cr3t"] {
            for line in [
                format!("AUTH PLAIN {secret}"),
                format!("AUTH {secret}"),
                format!("x LOGIN alice {secret}"),
                format!("x LOGIN alice \"{secret}"),
                format!("PASS {secret}"),
                format!("APOP alice {secret}"),
                format!("a AUTHENTICATE PLAIN {secret} more"),
            ] {
                assert!(!mask_secrets(&line).contains(secret), "{line}");
            }
        }
    }
}
