//! Response encoding helpers (RFC 9051 §4.3, §9 `string`, `nstring`, `astring`, `date-time`).
//! The rules for which string form to use are here once: the byte-level helpers below and
//! [`super::response::Value::string`] / [`super::response::Value::astring`] share them.

/// A string as IMAP sends it: quoted when that is safe, otherwise a literal. Quoted strings
/// cannot hold CR, LF, NUL or (in IMAP4rev1) 8-bit octets (RFC 9051 §4.3).
pub fn string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
}

/// Whether [`push_string`] writes `s` quoted: printable US-ASCII, shorter than 1024 octets.
pub fn string_is_quoted(s: &[u8]) -> bool {
    s.len() < 1024 && s.iter().all(|b| (0x20..0x7f).contains(b))
}

pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    if string_is_quoted(s) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// `nstring`: NIL or a string.
pub fn push_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => push_string(out, s),
    }
}

/// `astring` for mailbox names in responses: an atom when possible, else quoted/literal.
pub fn push_astring(out: &mut Vec<u8>, s: &str) {
    if astring_is_atom(s) {
        out.extend_from_slice(s.as_bytes());
    } else {
        push_string(out, s.as_bytes());
    }
}

/// Whether [`push_astring`] writes `s` as an atom: non-empty, no SP, controls, 8-bit octets or
/// `( ) { % * " \`, and not `NIL`.
pub fn astring_is_atom(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|&c| {
            c > 0x20 && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        })
        && !s.eq_ignore_ascii_case("NIL")
}

/// The text of INTERNALDATE's `date-time`, `dd-Mon-yyyy hh:mm:ss +0000` (the quotes are the
/// encoder's: [`super::response::Value::date_time`]), from Unix seconds, in UTC (RFC 9051 §9).
pub fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        d,
        super::command::MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses APPEND's `date-time` ("dd-Mon-yyyy hh:mm:ss +zzzz", RFC 9051 §9) to Unix seconds.
pub fn parse_date_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(' ')?;
    let (y, m, d) = super::command::parse_date(date)?;
    let (time, zone) = rest.trim().split_once(' ')?;
    let mut t = time.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 || zone.len() != 5 {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh: i64 = zone.get(1..3)?.parse().ok()?;
    let zm: i64 = zone.get(3..5)?.parse().ok()?;
    let offset = sign * (zh * 3600 + zm * 60);
    Some(days_from_civil(i64::from(y), m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert_eq!(string(b"abc"), b"\"abc\"");
        assert_eq!(string(b"a\"b\\"), b"\"a\\\"b\\\\\"");
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(string("é".as_bytes()), b"{2}\r\n\xc3\xa9");
        let mut o = Vec::new();
        push_astring(&mut o, "INBOX");
        push_astring(&mut o, "My Box");
        assert_eq!(o, b"INBOX\"My Box\"");
    }

    #[test]
    fn dates() {
        assert_eq!(date_time(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(date_time(1_700_000_000), "14-Nov-2023 22:13:20 +0000");
        assert_eq!(
            parse_date_time("14-Nov-2023 23:13:20 +0100"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_date_time(" 1-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(parse_date_time("1-Foo-1970 00:00:00 +0000"), None);
        for d in [-1000, 0, 19_000, 20_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
