//! Modified UTF-7 for IMAP4rev1 mailbox names (RFC 3501 §5.1.3), sans-IO.
//!
//! ```text
//!   printable US-ASCII (0x20-0x7e) except "&"  ─▶ itself          "Sent" ─▶ Sent
//!   "&"                                        ─▶ "&-"            "R&D"  ─▶ R&-D
//!   a run of anything else                     ─▶ "&" BASE64 "-"  "ü"    ─▶ &APw-
//!        (UTF-16 big-endian, BASE64 with "," for "/", no "=" padding, zero fill bits)
//! ```
//!
//! [`decode`] is strict: it accepts exactly the strings [`encode`] produces, so every name
//! has one spelling on the wire (`encode(&decode(b)?) == b`). Refused, with the offset of the
//! problem (RFC 3501 §5.1.3 forbids each):
//!
//! - octets outside printable US-ASCII (raw UTF-8 or Latin-1, control characters);
//! - a run not ended by `-` (`&Jjo!`: there is no implicit shift back to ASCII);
//! - a run whose bits do not make whole UTF-16 units, or whose fill bits are not zero;
//! - an unpaired UTF-16 surrogate;
//! - a printable ASCII character inside a run (`&AGE-` for "a": it must stand for itself);
//! - two runs in a row (`&AMA-&AMA-`, a "null shift"): they must be one run (`&AMAAwA-`).
//!
//! For the refusals a client can fix by respelling (raw UTF-8, the last three above, a
//! missing final `-`, a printable character ending a run without `-`), [`DecodeError`]
//! carries the canonical spelling of what the client most likely meant, so a server can
//! say how to write it.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a name is not valid modified UTF-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An octet outside printable US-ASCII: 8-bit (raw UTF-8, Latin-1, ...) or a control
    /// character.
    NotAscii(u8),
    /// `&` starts a BASE64 run that the name does not end with `-`.
    Unterminated,
    /// An octet inside a run that is neither modified BASE64 nor the closing `-`.
    BadBase64(u8),
    /// The run's bits do not make whole UTF-16 units, or its fill bits are not zero.
    PartialUnit,
    /// A UTF-16 surrogate without its partner (in the same run).
    LoneSurrogate,
    /// A printable US-ASCII character encoded in a run; it must stand for itself (`&` as `&-`).
    EncodedAscii(char),
    /// A run right after another (`-&`): the two must be one run.
    AdjacentRuns,
}

/// A refused name: what is wrong, where, and (when it can be guessed) how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Octet offset of the problem in the input (for a run: where its `&` is).
    pub offset: usize,
    pub kind: ErrorKind,
    /// The canonical modified UTF-7 spelling of what the input most likely means, when the
    /// input is readable under relaxed rules (raw UTF-8, encoded ASCII, split runs, a missing
    /// `-`). `None` when there is no good guess.
    pub suggestion: Option<String>,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            ErrorKind::NotAscii(b) if b >= 0x80 => write!(
                f,
                "octet 0x{b:02X} at offset {at} is not 7-bit (non-ASCII characters are written as &...- runs)"
            ),
            ErrorKind::NotAscii(b) => write!(f, "control character 0x{b:02X} at offset {at}"),
            ErrorKind::Unterminated => write!(
                f,
                "the & at offset {at} starts a BASE64 run that is not ended by - (write & itself as &-)"
            ),
            ErrorKind::BadBase64(b) => write!(
                f,
                "{} at offset {at} is not modified BASE64 (A-Z a-z 0-9 + ,); end the run with - first",
                show_octet(b)
            ),
            ErrorKind::PartialUnit => write!(
                f,
                "the run at offset {at} does not encode whole UTF-16 characters"
            ),
            ErrorKind::LoneSurrogate => write!(
                f,
                "the run at offset {at} has an unpaired UTF-16 surrogate"
            ),
            ErrorKind::EncodedAscii(c) => write!(
                f,
                "the run at offset {at} encodes {c:?}, which must stand for itself{}",
                if c == '&' { " (as &-)" } else { "" }
            ),
            ErrorKind::AdjacentRuns => write!(
                f,
                "a run follows another at offset {at}; two runs in a row must be one run"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

fn show_octet(b: u8) -> String {
    if (0x20..0x7f).contains(&b) {
        format!("{:?}", b as char)
    } else {
        format!("octet 0x{b:02X}")
    }
}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Printable US-ASCII: these characters stand for themselves (`&` as `&-`).
fn is_direct(c: char) -> bool {
    ('\u{20}'..='\u{7e}').contains(&c)
}

/// True if `s` reads the same in modified UTF-7 and in UTF-8 (printable ASCII without `&`):
/// no conversion is needed either way.
pub fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'&')
}

/// The modified UTF-7 spelling of a (UTF-8) name. Total: every string has one.
pub fn encode(s: &str) -> String {
    if is_plain(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for c in s.chars() {
        if is_direct(c) {
            flush_run(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_run(&mut out, &mut units);
    out
}

/// Writes `&BASE64-` for the collected UTF-16 units (nothing if there are none).
fn flush_run(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &u in units.iter() {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out.push('-');
    units.clear();
}

/// The UTF-8 name a modified UTF-7 spelling stands for; strict (see the module docs).
pub fn decode(input: &[u8]) -> Result<String, DecodeError> {
    match run(input, false) {
        Ok(s) => Ok(s),
        Err((offset, kind)) => {
            let suggestion = match kind {
                ErrorKind::NotAscii(b) if b < 0x80 => None,
                ErrorKind::NotAscii(_)
                | ErrorKind::Unterminated
                | ErrorKind::BadBase64(_)
                | ErrorKind::EncodedAscii(_)
                | ErrorKind::AdjacentRuns => run(input, true)
                    .ok()
                    .map(|s| encode(&s))
                    .filter(|s| s.as_bytes() != input),
                ErrorKind::PartialUnit | ErrorKind::LoneSurrogate => None,
            };
            Err(DecodeError {
                offset,
                kind,
                suggestion,
            })
        }
    }
}

/// The decoder. `lenient` reads what a client most likely meant (for suggestions): raw UTF-8
/// characters as themselves, encoded ASCII, runs in a row, and a run ended by the end of the
/// input or by a printable non-BASE64 character.
fn run(input: &[u8], lenient: bool) -> Result<String, (usize, ErrorKind)> {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    // The previous item was a BASE64 run (for the "-&" null-shift rule).
    let mut after_run = false;
    while let Some(&c) = input.get(i) {
        match c {
            b'&' if input.get(i + 1) == Some(&b'-') => {
                out.push('&');
                i += 2;
                after_run = false;
            }
            b'&' => {
                if after_run && !lenient {
                    return Err((i, ErrorKind::AdjacentRuns));
                }
                match base64_run(input, i, &mut out, lenient) {
                    Ok(next) => {
                        i = next;
                        after_run = true;
                    }
                    // Too short to hold a character ("R&D", "Tom & Jerry"): most likely an
                    // "&" the client did not write as "&-".
                    Err(_) if lenient && b64_len(&input[i + 1..]) < 3 => {
                        out.push('&');
                        i += 1;
                        after_run = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            0x20..=0x7e => {
                out.push(c as char);
                i += 1;
                after_run = false;
            }
            _ if lenient && c >= 0x80 => {
                let len = match c {
                    0xC2..=0xDF => 2,
                    0xE0..=0xEF => 3,
                    0xF0..=0xF4 => 4,
                    _ => return Err((i, ErrorKind::NotAscii(c))),
                };
                let ch = input
                    .get(i..i + len)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or((i, ErrorKind::NotAscii(c)))?;
                out.push_str(ch);
                i += len;
                after_run = false;
            }
            _ => return Err((i, ErrorKind::NotAscii(c))),
        }
    }
    Ok(out)
}

/// How many modified BASE64 octets `b` starts with.
fn b64_len(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| b64_value(c).is_some()).count()
}

/// Decodes the run whose `&` is at `start`; returns the offset after it (after its `-`).
fn base64_run(
    input: &[u8],
    start: usize,
    out: &mut String,
    lenient: bool,
) -> Result<usize, (usize, ErrorKind)> {
    let mut i = start + 1;
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut high: Option<u32> = None;
    loop {
        match input.get(i) {
            None if lenient => break,
            None => return Err((start, ErrorKind::Unterminated)),
            Some(b'-') => {
                i += 1;
                break;
            }
            Some(&b) => {
                let Some(v) = b64_value(b) else {
                    // ("/" and "=" are rather standard BASE64 by mistake: no guess.)
                    if lenient && (0x20..0x7f).contains(&b) && b != b'/' && b != b'=' {
                        // UTF-7's implicit shift back: the character is read as itself.
                        break;
                    }
                    return Err((i, ErrorKind::BadBase64(b)));
                };
                acc = (acc << 6) | v;
                bits += 6;
                i += 1;
                if bits < 16 {
                    continue;
                }
                bits -= 16;
                let unit = acc >> bits;
                acc &= (1 << bits) - 1;
                match (high, unit) {
                    (Some(h), 0xDC00..=0xDFFF) => {
                        let cp = 0x10000 + ((h - 0xD800) << 10) + (unit - 0xDC00);
                        let ch = char::from_u32(cp).ok_or((start, ErrorKind::LoneSurrogate))?;
                        out.push(ch);
                        high = None;
                    }
                    (Some(_), _) | (None, 0xDC00..=0xDFFF) => {
                        return Err((start, ErrorKind::LoneSurrogate))
                    }
                    (None, 0xD800..=0xDBFF) => high = Some(unit),
                    (None, u) => {
                        let ch = char::from_u32(u).ok_or((start, ErrorKind::LoneSurrogate))?;
                        if is_direct(ch) && !lenient {
                            return Err((start, ErrorKind::EncodedAscii(ch)));
                        }
                        out.push(ch);
                    }
                }
            }
        }
    }
    if high.is_some() {
        return Err((start, ErrorKind::LoneSurrogate));
    }
    // Whole units only: fewer than 6 bits left over, and those zero. A run with no units at
    // all (`&` then `-`) cannot get here: `&-` is "&".
    if bits >= 6 || acc != 0 || i == start + 1 {
        return Err((start, ErrorKind::PartialUnit));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (modified UTF-7, UTF-8): both directions.
    const PAIRS: &[(&str, &str)] = &[
        ("", ""),
        ("INBOX", "INBOX"),
        ("Sent Items", "Sent Items"),
        ("&-", "&"),
        ("R&-D", "R&D"),
        ("&-&-", "&&"),
        ("a&-b&-", "a&b&"),
        ("Entw&APw-rfe", "Entwürfe"),
        ("&AMA-", "À"),
        ("&AMAAwA-", "ÀÀ"),
        ("&AMA-&-", "À&"),
        ("&-&AMA-", "&À"),
        ("&AMA--", "À-"),
        ("-&AMA-", "-À"),
        // RFC 3501 §5.1.3's example, and its corrected forms.
        ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
        ("&Jjo-!", "☺!"),
        ("&U,BTF2XlZyyKng-", "台北日本語"),
        // A surrogate pair (U+1F600) and one after a BMP character in the same run.
        ("&2D3eAA-", "😀"),
        ("Fotos &2D3c9w-", "Fotos 📷"),
        ("&APzYPd4A-", "ü😀"),
        // Control characters are not printable: they are encoded.
        ("&AAk-", "\t"),
        ("&AH8-", "\u{7f}"),
        ("&AAA-", "\u{0}"),
        (
            "Pr&AOk-sentations/&BB8EQAQ4BDIENQRC-",
            "Présentations/Привет",
        ),
    ];

    #[test]
    fn table_both_ways() {
        for &(wire, utf8) in PAIRS {
            assert_eq!(encode(utf8), wire, "encode {utf8:?}");
            assert_eq!(
                decode(wire.as_bytes()).as_deref(),
                Ok(utf8),
                "decode {wire:?}"
            );
        }
    }

    /// (input, offset, kind, suggestion).
    #[allow(clippy::type_complexity)]
    const REFUSED: &[(&[u8], usize, ErrorKind, Option<&str>)] = &[
        // RFC 3501 §5.1.3: no implicit shift back to US-ASCII.
        (b"&Jjo!", 4, ErrorKind::BadBase64(b'!'), Some("&Jjo-!")),
        // RFC 3501 §5.1.3: a superfluous shift; the runs must be merged.
        (
            b"&U,BTFw-&ZeVnLIqe-",
            8,
            ErrorKind::AdjacentRuns,
            Some("&U,BTF2XlZyyKng-"),
        ),
        (b"&AMA-&AMA-", 5, ErrorKind::AdjacentRuns, Some("&AMAAwA-")),
        // Unterminated.
        (b"&", 0, ErrorKind::Unterminated, Some("&-")),
        (
            b"Tom & Jerry",
            5,
            ErrorKind::BadBase64(b' '),
            Some("Tom &- Jerry"),
        ),
        (b"AT&T", 2, ErrorKind::Unterminated, Some("AT&-T")),
        (b"Entw&APw", 4, ErrorKind::Unterminated, Some("Entw&APw-")),
        (b"R&D", 1, ErrorKind::Unterminated, Some("R&-D")),
        // Encoded printable ASCII ("a", "&", "/") is not canonical.
        (b"&AGE-", 0, ErrorKind::EncodedAscii('a'), Some("a")),
        (b"&ACY-", 0, ErrorKind::EncodedAscii('&'), Some("&-")),
        (b"x&AC8-y", 1, ErrorKind::EncodedAscii('/'), Some("x/y")),
        // Bits that do not make whole units; non-zero fill bits.
        (b"&AM-", 0, ErrorKind::PartialUnit, None),
        (b"&AMAA-", 0, ErrorKind::PartialUnit, None),
        (b"&APx-", 0, ErrorKind::PartialUnit, None),
        (b"&APz-", 0, ErrorKind::PartialUnit, None),
        // Unpaired surrogates: a high one alone, a low one alone, a high one then a BMP one.
        (b"&2D0-", 0, ErrorKind::LoneSurrogate, None),
        (b"&3gA-", 0, ErrorKind::LoneSurrogate, None),
        (b"&2D0AwA-", 0, ErrorKind::LoneSurrogate, None),
        // Not BASE64 ("/" is "," here; "=" padding is not used).
        (b"&APw/-", 4, ErrorKind::BadBase64(b'/'), None),
        (b"&APw=-", 4, ErrorKind::BadBase64(b'='), None),
        // Raw 8-bit: UTF-8 (with a suggestion), Latin-1 (none); control characters.
        (
            "Entwürfe".as_bytes(),
            4,
            ErrorKind::NotAscii(0xC3),
            Some("Entw&APw-rfe"),
        ),
        (
            "R&D/ü".as_bytes(),
            3,
            ErrorKind::BadBase64(b'/'),
            Some("R&-D/&APw-"),
        ),
        (
            "Grüße & Küsse".as_bytes(),
            2,
            ErrorKind::NotAscii(0xC3),
            Some("Gr&APwA3w-e &- K&APw-sse"),
        ),
        (b"Entw\xfcrfe", 4, ErrorKind::NotAscii(0xFC), None),
        (b"a\tb", 1, ErrorKind::NotAscii(b'\t'), None),
        (b"a\x7f", 1, ErrorKind::NotAscii(0x7f), None),
    ];

    #[test]
    fn refusals() {
        for &(input, offset, kind, suggestion) in REFUSED {
            let e = decode(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(
                (e.offset, e.kind, e.suggestion.as_deref()),
                (offset, kind, suggestion),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert!(!e.to_string().is_empty());
            // A suggestion is itself valid, canonical modified UTF-7.
            if let Some(s) = &e.suggestion {
                assert_eq!(
                    encode(&decode(s.as_bytes()).expect("suggestion decodes")),
                    *s
                );
            }
        }
    }

    #[test]
    fn messages() {
        let e = decode(b"&Jjo!").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "'!' at offset 4 is not modified BASE64 (A-Z a-z 0-9 + ,); end the run with - first"
        );
        let e = decode("Entwürfe".as_bytes()).expect_err("bad");
        assert!(e.to_string().contains("0xC3 at offset 4"), "{e}");
    }

    /// A small deterministic generator (xorshift), so round trips cover many strings without
    /// a property-testing dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_char(r: &mut Rng) -> char {
        const PICKS: &[char] = &['&', '-', '/', '+', ',', 'A', ' ', '~', '.'];
        loop {
            let c = match r.below(6) {
                0 => Some(PICKS[r.below(PICKS.len() as u64) as usize]),
                1 => char::from_u32(0x20 + r.below(0x5f) as u32),
                2 => char::from_u32(r.below(0x20) as u32),
                3 => char::from_u32(0x80 + r.below(0x780) as u32),
                4 => char::from_u32(0x800 + r.below(0xF800) as u32),
                _ => char::from_u32(0x10000 + r.below(0x100000) as u32),
            };
            if let Some(c) = c {
                return c;
            }
        }
    }

    #[test]
    fn round_trips() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let len = r.below(12) as usize;
            let s: String = (0..len).map(|_| random_char(&mut r)).collect();
            let wire = encode(&s);
            assert!(
                wire.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{s:?} -> {wire:?}"
            );
            assert_eq!(
                decode(wire.as_bytes()).as_deref(),
                Ok(s.as_str()),
                "{wire:?}"
            );
        }
    }

    /// Whatever the decoder accepts is canonical: encoding it again gives the same octets.
    /// Random octets from the modified UTF-7 alphabet, so that many of them decode.
    #[test]
    fn accepted_means_canonical() {
        const ALPHA: &[u8] = b"&-&-&AB+,Pwz09aD3e/ x\xc3";
        let mut r = Rng(0x2545_F491_4F6C_DD1D);
        let mut accepted = 0;
        for _ in 0..50_000 {
            let len = r.below(10) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHA[r.below(ALPHA.len() as u64) as usize])
                .collect();
            match decode(&input) {
                Ok(s) => {
                    accepted += 1;
                    assert_eq!(encode(&s).as_bytes(), &input[..], "{s:?}");
                }
                Err(e) => {
                    assert!(e.offset <= input.len());
                    if let Some(s) = &e.suggestion {
                        assert!(decode(s.as_bytes()).is_ok(), "{s:?}");
                    }
                }
            }
        }
        assert!(accepted > 1000, "{accepted}");
    }

    #[test]
    fn plain_names() {
        assert!(is_plain("INBOX/Sent Items"));
        assert!(!is_plain("R&D"));
        assert!(!is_plain("Entwürfe"));
        assert!(!is_plain("a\tb"));
    }
}
