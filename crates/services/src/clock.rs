//! Daytime (RFC 867) and Time (RFC 868) answers, sans-IO: the caller passes the time in.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 867 leaves the syntax open and suggests "Weekday, Month Day, Year Time-Zone"; we send
/// `Monday, February 22, 1982 17:37:43-UTC` followed by CR LF, always in UTC so the answer
/// does not depend on the server's zone settings.
pub fn daytime(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.format("%A, %B %-d, %Y %H:%M:%S-UTC\r\n").to_string(),
        None => "unknown\r\n".to_string(),
    }
}

/// RFC 868: the time as a 32-bit binary number of seconds since 1900-01-01 00:00 UTC, network
/// byte order. It wraps in 2036 (the RFC's own limit); clients such as rdate(8) resolve the era.
pub fn rfc868(now: SystemTime) -> [u8; 4] {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs().wrapping_add(crate::sntp::UNIX_OFFSET) as u32;
    secs.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daytime_format() {
        // The instant of RFC 867's example, read as UTC.
        let t = UNIX_EPOCH + Duration::from_secs(383_247_463);
        assert_eq!(daytime(t), "Monday, February 22, 1982 17:37:43-UTC\r\n");
    }

    #[test]
    fn rfc868_examples() {
        // RFC 868: "2,208,988,800 corresponds to 00:00 1 Jan 1970 GMT".
        assert_eq!(u32::from_be_bytes(rfc868(UNIX_EPOCH)), 2_208_988_800);
        // "2,629,584,000 corresponds to 00:00 1 May 1983 GMT".
        let may83 = UNIX_EPOCH + Duration::from_secs(2_629_584_000 - 2_208_988_800);
        assert_eq!(u32::from_be_bytes(rfc868(may83)), 2_629_584_000);
        // After 2036-02-07 06:28:16 it wraps to 0.
        let wrap = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - 2_208_988_800);
        assert_eq!(u32::from_be_bytes(rfc868(wrap)), 0);
    }
}
