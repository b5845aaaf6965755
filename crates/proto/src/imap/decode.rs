//! Text decoding for BINARY (RFC 3516: base64 and quoted-printable bodies) and for SEARCH
//! (RFC 9051 §6.4.4): header values with their RFC 2047 encoded words decoded, and text parts
//! with their Content-Transfer-Encoding undone, both converted to UTF-8. Charsets are looked
//! up with mail-parser's table (encoding_rs behind it), so ISO-8859-x, windows-125x, KOI8,
//! the CJK charsets and the rest all decode.
//!
//! Everything here is lenient: whatever does not decode stays as it is, since the raw octets
//! are searched as well.
//!
//! SORT and THREAD (RFC 5256 §2.1 base subject, RFC 5957 display names) decode header values
//! with [`header_text`] too, so a subject sorts and threads as SEARCH matches it.

use super::mime::Part;

/// Base64 as found in mail: line breaks and other blanks ignored, padding optional.
pub fn decode_base64(s: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(&clean).ok()
}

/// How a charset label's octets are read: UTF-8 labels (and none at all) as UTF-8, US-ASCII
/// as UTF-8 when valid, else as windows-1252 (what mislabelled 8-bit text nearly always is).
enum Family {
    Utf8,
    Ascii,
    Other,
}

fn family(charset: &str) -> Family {
    match charset.trim().to_ascii_lowercase().as_str() {
        "" | "utf-8" | "utf8" => Family::Utf8,
        "us-ascii" | "ascii" | "ansi_x3.4-1968" => Family::Ascii,
        _ => Family::Other,
    }
}

/// Whether [`to_utf8`] would give the same text as reading the octets as UTF-8.
fn reads_as_utf8(bytes: &[u8], charset: &str) -> bool {
    match family(charset) {
        Family::Utf8 => true,
        Family::Ascii => std::str::from_utf8(bytes).is_ok(),
        Family::Other => false,
    }
}

/// `bytes` in `charset` as UTF-8 (invalid sequences replaced). Unknown charsets are read as
/// UTF-8.
pub fn to_utf8(bytes: &[u8], charset: &str) -> String {
    // RFC 2231 §5: `charset*language` in encoded words.
    let charset = charset.split('*').next().unwrap_or_default().trim();
    match family(charset) {
        Family::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Family::Ascii => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => convert(bytes, "windows-1252"),
        },
        Family::Other => convert(bytes, charset),
    }
}

fn convert(bytes: &[u8], charset: &str) -> String {
    match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// One parsed encoded word (RFC 2047 §2): its charset and the decoded octets.
struct Word {
    charset: String,
    bytes: Vec<u8>,
}

/// Parses `=?charset?enc?text?=` at the start of `s`; returns the word and its length.
fn encoded_word(s: &[u8]) -> Option<(Word, usize)> {
    let rest = s.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    let token = |b: &u8| b.is_ascii_graphic() && !matches!(b, b'?' | b'=');
    if charset.is_empty() || !charset.iter().all(token) {
        return None;
    }
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest[text_start..].windows(2).position(|w| w == b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    // Encoded text holds no blanks (RFC 2047 §5); this also stops at the end of the field.
    if text.iter().any(|b| !b.is_ascii_graphic()) {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => decode_base64(text)?,
        b'Q' | b'q' => {
            let t: Vec<u8> = text
                .iter()
                .map(|&b| if b == b'_' { b' ' } else { b })
                .collect();
            decode_qp(&t)
        }
        _ => return None,
    };
    let word = Word {
        charset: String::from_utf8_lossy(charset).into_owned(),
        bytes,
    };
    Some((word, 2 + text_start + text_len + 2))
}

/// A header value (already unfolded) with its RFC 2047 encoded words decoded and every run of
/// blanks made one space; `None` when that changes nothing, so callers need not search twice.
///
/// Blanks between two encoded words are dropped (RFC 2047 §6.2), and adjacent encoded words
/// in the same charset are joined before conversion, so a character split across two words
/// (common, though not allowed) still comes out whole. 8-bit octets outside encoded words
/// are read as UTF-8 (RFC 6532).
pub fn header_text(value: &[u8]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    // Encoded words waiting to be converted, and the blanks seen since the last of them.
    let mut pending: Option<Word> = None;
    let mut blanks: Vec<u8> = Vec::new();
    let flush = |pending: &mut Option<Word>, out: &mut Vec<u8>| {
        if let Some(w) = pending.take() {
            out.extend_from_slice(to_utf8(&w.bytes, &w.charset).as_bytes());
        }
    };
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b' ' || b == b'\t' {
            blanks.push(b);
            i += 1;
            continue;
        }
        if b == b'=' && value.get(i + 1) == Some(&b'?') {
            if let Some((w, len)) = encoded_word(&value[i..]) {
                match &mut pending {
                    Some(p) if p.charset.eq_ignore_ascii_case(&w.charset) => {
                        p.bytes.extend_from_slice(&w.bytes)
                    }
                    Some(_) => {
                        flush(&mut pending, &mut out);
                        pending = Some(w);
                    }
                    None => {
                        out.append(&mut blanks);
                        pending = Some(w);
                    }
                }
                blanks.clear();
                i += len;
                continue;
            }
        }
        flush(&mut pending, &mut out);
        out.append(&mut blanks);
        out.push(b);
        i += 1;
    }
    flush(&mut pending, &mut out);
    out.append(&mut blanks);
    let decoded = String::from_utf8_lossy(&out);
    let collapsed = decoded.split([' ', '\t']).filter(|w| !w.is_empty());
    let mut text = String::with_capacity(decoded.len());
    for (n, w) in collapsed.enumerate() {
        if n > 0 {
            text.push(' ');
        }
        text.push_str(w);
    }
    if text.as_bytes() == value {
        None
    } else {
        Some(text)
    }
}

/// The decoded text of every text/* part under `part` (multiparts and embedded messages are
/// walked; embedded messages also give their decoded header fields), pushed onto `out`. Parts
/// whose decoded text is their raw octets (no transfer encoding, UTF-8 or ASCII) are left
/// out, since the raw search covers them.
pub fn body_texts(data: &[u8], part: &Part, out: &mut Vec<String>) {
    if let Some(m) = &part.message {
        for (name, value) in super::mime::fields(data, &m.header) {
            if let Some(v) = header_text(&value) {
                out.push(format!("{name}: {v}"));
            }
        }
        body_texts(data, m, out);
        return;
    }
    if !part.children.is_empty() {
        for c in &part.children {
            body_texts(data, c, out);
        }
        return;
    }
    if part.mtype != "text" {
        return;
    }
    let body = data.get(part.body.clone()).unwrap_or_default();
    let cte = part
        .encoding
        .as_deref()
        .map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let charset = part
        .params
        .iter()
        .find(|(k, _)| k == "charset")
        .map_or("", |(_, v)| v.as_str());
    let decoded = match cte.as_str() {
        "base64" => match decode_base64(body) {
            Some(d) => d,
            None => return,
        },
        "quoted-printable" => decode_qp(body),
        _ if reads_as_utf8(body, charset) => return,
        _ => body.to_vec(),
    };
    out.push(to_utf8(&decoded, charset));
}

/// Quoted-printable (RFC 2045 §6.7), leniently: bad escapes stay as they are. Line by line:
/// whitespace at the end of an encoded line is transport padding and goes (rule 3); a line
/// that then ends in `=` is a soft line break (rule 5, also `= ` + padding); every other line
/// ends in CRLF (a bare LF counts as a line end too).
pub fn decode_qp(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut lines = s.split(|b| *b == b'\n').peekable();
    while let Some(raw) = lines.next() {
        let last = lines.peek().is_none();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let line = &line[..end];
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'=' {
                if let (Some(h), Some(l)) = (
                    line.get(i + 1).copied().and_then(hex),
                    line.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        if !soft && !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp() {
        assert_eq!(decode_qp(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
        // imaptest's fetch-binary-mime-qp: padding stripped, soft breaks with padding after
        // the `=`, bare LF lines.
        let body = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        let want = b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n";
        assert_eq!(
            String::from_utf8_lossy(&decode_qp(body)),
            String::from_utf8_lossy(want)
        );
        assert_eq!(decode_qp(b"a\nb"), b"a\r\nb");
        assert_eq!(decode_qp(b"no end="), b"no end");
    }
    use crate::imap::mime::Mime;

    fn h(s: &str) -> Option<String> {
        header_text(s.as_bytes())
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            h("=?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=").as_deref(),
            Some("Grüße aus Köln")
        );
        assert_eq!(
            h("=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=").as_deref(),
            Some("Grüße aus Köln")
        );
        assert_eq!(
            h("=?windows-1252?q?=80_5?=").as_deref(),
            Some("€ 5"),
            "windows-1252"
        );
        // Lower-case encoding letter, RFC 2231 language suffix.
        assert_eq!(h("=?UTF-8*de?b?S8O2bG4=?=").as_deref(), Some("Köln"));
        // Text around encoded words keeps its blanks; blanks between words go.
        assert_eq!(
            h("Re: =?utf-8?q?K=C3=B6ln?= und  =?utf-8?q?Bonn?=!").as_deref(),
            Some("Re: Köln und Bonn!")
        );
        assert_eq!(
            h("=?utf-8?q?Gr=C3=BC=C3=9Fe?=   =?utf-8?q?_aus?= \t=?utf-8?q?_K=C3=B6ln?=").as_deref(),
            Some("Grüße aus Köln")
        );
        // A character split across two words, and words in different charsets.
        assert_eq!(
            h("=?utf-8?B?S8M=?= =?utf-8?B?tmxu?=").as_deref(),
            Some("Köln")
        );
        assert_eq!(
            h("=?iso-8859-1?q?K=F6ln?= =?utf-8?q?_M=C3=BCnchen?=").as_deref(),
            Some("Köln München")
        );
    }

    #[test]
    fn plain_and_broken_values() {
        assert_eq!(h("plain subject"), None);
        assert_eq!(h(""), None);
        // Blanks are collapsed (a fold with a tab, double spaces).
        assert_eq!(h("a long\tsubject").as_deref(), Some("a long subject"));
        assert_eq!(h(" a  b ").as_deref(), Some("a b"));
        // Not encoded words: left as they are.
        for s in [
            "=?utf-8?x?abc?=",
            "=?utf-8?q?no end",
            "=??q?abc?=",
            "=?utf-8?q?has space?=",
            "a =? b",
            "=?",
            "=?utf-8?B?!!!!?=",
        ] {
            assert_eq!(h(s), None, "{s}");
        }
        // Raw UTF-8 outside encoded words (RFC 6532) survives next to a decoded word.
        assert_eq!(h("Grüße =?utf-8?q?aus?=").as_deref(), Some("Grüße aus"));
        // Unknown charset: the octets are read as UTF-8.
        assert_eq!(h("=?x-nonsense?q?abc?=").as_deref(), Some("abc"));
    }

    #[test]
    fn charsets() {
        assert_eq!(to_utf8(b"K\xf6ln", "iso-8859-1"), "Köln");
        assert_eq!(to_utf8(b"\x80", "windows-1252"), "€");
        assert_eq!(to_utf8(b"\xbf\xe0\xd8\xd2\xd5\xe2", "iso-8859-5"), "Привет");
        assert_eq!(to_utf8("Köln".as_bytes(), "UTF-8"), "Köln");
        assert_eq!(to_utf8(b"K\xf6ln", "us-ascii"), "Köln");
        assert_eq!(to_utf8(b"K\xf6ln", ""), "K\u{fffd}ln");
    }

    #[test]
    fn text_parts() {
        let data = [
            &b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"[..],
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZSBhdXMg\r\nS8O2bG4=\r\n",
            b"--b\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>M=FCnchen ist=\r\n sch=F6n</p>\r\n",
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nalready plain\r\n",
            b"--b\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n",
            b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nK\xf6ln\r\n",
            b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nS8O2bG4=\r\n",
            b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?utf-8?q?inner_K=C3=B6ln?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nDom=C3=A4ne\r\n",
            b"--b--\r\n",
        ]
        .concat();
        let mime = Mime::parse(&data);
        let mut out = Vec::new();
        body_texts(&data, &mime.root, &mut out);
        assert_eq!(
            out,
            vec![
                "Grüße aus Köln".to_string(),
                "<p>München ist schön</p>".to_string(),
                "Привет".to_string(),
                "Köln".to_string(),
                "Subject: inner Köln".to_string(),
                "Domäne".to_string(),
            ]
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in [
            &b"=?"[..],
            b"=?=?=?=?",
            b"=?a?b?",
            b"=?a?q?=",
            b"=?a?q??=",
            b"=?a?b??=",
            b"=?utf-8?q?=\xff=?=",
            b"\xff\xfe=?utf-8?b?\xff?=",
            b"=?utf-16?b?2D3d?=",
        ] {
            let _ = header_text(s);
        }
    }
}
