//! SNTP (RFC 4330) / NTPv4 client-server mode (RFC 5905), sans-IO: the 48-octet packet, NTP
//! timestamps, the server's answer to a client request, and the client's offset/delay math.
//! Nothing here reads the clock or touches a socket: callers pass the timestamps in.
//!
//! Packet layout (RFC 5905 §7.3, RFC 4330 §4):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |LI | VN  |Mode |    Stratum    |     Poll      |   Precision   |
//! |                          Root Delay                           |
//! |                       Root Dispersion                         |
//! |                     Reference Identifier                      |
//! |                 Reference Timestamp (64)                      |
//! |                 Originate Timestamp (64)                      |
//! |                  Receive Timestamp (64)                       |
//! |                  Transmit Timestamp (64)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Octets of the NTP header without extension fields or MAC.
pub const PACKET_LEN: usize = 48;
/// The well-known NTP port.
pub const NTP_PORT: u16 = 123;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (RFC 868, RFC 4330 §3).
pub const UNIX_OFFSET: u64 = 2_208_988_800;

/// Mode 3, client (RFC 5905 §7.3).
pub const MODE_CLIENT: u8 = 3;
/// Mode 4, server.
pub const MODE_SERVER: u8 = 4;
/// Leap indicator 3: "alarm condition (clock not synchronized)".
pub const LEAP_UNSYNCHRONIZED: u8 = 3;
/// The precision we announce: 2^-20 s, about a microsecond (what `SystemTime` resolves well).
pub const PRECISION: i8 = -20;

/// A 64-bit NTP timestamp: 32 bits of seconds since 1900 (modulo the era), 32 bits of fraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// From wall-clock time. Times before 1970 become 1970.
    pub fn from_system_time(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        // Seconds wrap at the era boundary (2036-02-07), as on the wire (RFC 4330 §3).
        let secs = (d.as_secs().wrapping_add(UNIX_OFFSET)) & 0xFFFF_FFFF;
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTimestamp((secs << 32) | frac)
    }

    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Unix seconds and nanoseconds. RFC 4330 §3: with the top bit of the seconds set the time
    /// is in 1968-2036 (era 0), otherwise in 2036-2104 (era 1).
    pub fn to_unix(self) -> (i64, u32) {
        let secs = i64::from(self.seconds());
        let secs = if self.seconds() & 0x8000_0000 != 0 {
            secs
        } else {
            secs + (1i64 << 32)
        };
        let nanos = ((u64::from(self.fraction()) * 1_000_000_000) >> 32) as u32;
        (secs - UNIX_OFFSET as i64, nanos)
    }

    /// `2026-05-01T12:34:56.123456Z` (microseconds).
    pub fn to_rfc3339(self) -> String {
        let (s, ns) = self.to_unix();
        match chrono::DateTime::from_timestamp(s, ns) {
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            None => format!("(unrepresentable NTP time {:#018x})", self.0),
        }
    }

    /// `self - earlier` in units of 2^-32 s. Wrapping subtraction makes it correct across the
    /// era boundary for differences under 68 years (RFC 5905 §6).
    fn diff(self, earlier: NtpTimestamp) -> i64 {
        self.0.wrapping_sub(earlier.0) as i64
    }
}

/// One NTP packet header (extension fields and MAC are not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub leap: u8,
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    pub poll: i8,
    pub precision: i8,
    /// NTP short format, 16.16 seconds.
    pub root_delay: u32,
    /// NTP short format, 16.16 seconds.
    pub root_dispersion: u32,
    pub ref_id: [u8; 4],
    pub reference: NtpTimestamp,
    pub origin: NtpTimestamp,
    pub receive: NtpTimestamp,
    pub transmit: NtpTimestamp,
}

/// A datagram that is not an NTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("packet is {0} octets, an NTP header needs {PACKET_LEN}")]
    TooShort(usize),
}

impl Packet {
    /// Decodes the 48-octet header; octets after it (extension fields, MAC) are ignored.
    pub fn decode(buf: &[u8]) -> Result<Self, PacketError> {
        let b: &[u8; PACKET_LEN] = buf
            .get(..PACKET_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(PacketError::TooShort(buf.len()))?;
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let ts_at =
            |i: usize| NtpTimestamp((u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4)));
        Ok(Packet {
            leap: b[0] >> 6,
            version: (b[0] >> 3) & 0x7,
            mode: b[0] & 0x7,
            stratum: b[1],
            poll: b[2] as i8,
            precision: b[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            ref_id: [b[12], b[13], b[14], b[15]],
            reference: ts_at(16),
            origin: ts_at(24),
            receive: ts_at(32),
            transmit: ts_at(40),
        })
    }

    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = ((self.leap & 0x3) << 6) | ((self.version & 0x7) << 3) | (self.mode & 0x7);
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        b[12..16].copy_from_slice(&self.ref_id);
        b[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        b[24..32].copy_from_slice(&self.origin.0.to_be_bytes());
        b[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        b[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Server side

/// What the server announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerParams {
    pub stratum: u8,
    pub ref_id: [u8; 4],
    pub unsynchronized: bool,
}

/// Why a request gets no answer (it is dropped silently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Malformed(#[from] PacketError),
    #[error("mode {0} is not a client request (mode 3)")]
    NotClient(u8),
    #[error("version {0} is not NTP 1-4")]
    BadVersion(u8),
}

/// Checks that `req` is a client request we answer (RFC 4330 §5): at least 48 octets, mode 3,
/// version 1-4. Everything else is dropped: answering other modes (symmetric, control,
/// broadcast) would let a spoofed packet make two servers talk to each other.
pub fn check_request(req: &[u8]) -> Result<Packet, Rejected> {
    let p = Packet::decode(req)?;
    if p.mode != MODE_CLIENT {
        return Err(Rejected::NotClient(p.mode));
    }
    if !(1..=4).contains(&p.version) {
        return Err(Rejected::BadVersion(p.version));
    }
    Ok(p)
}

/// The server reply to a checked request (RFC 4330 §5 "SNTP Server Operations").
/// `receive` is when the request arrived, `transmit` when the reply leaves.
pub fn server_reply(
    req: &Packet,
    params: &ServerParams,
    receive: NtpTimestamp,
    transmit: NtpTimestamp,
) -> Packet {
    Packet {
        // LI 3 = unsynchronized; otherwise 0 = no leap second pending.
        leap: if params.unsynchronized {
            LEAP_UNSYNCHRONIZED
        } else {
            0
        },
        // "VN: Copied from the request" and "Mode: 4 (server) for a client request".
        version: req.version,
        mode: MODE_SERVER,
        stratum: params.stratum,
        // "Poll Interval: Copied from the request".
        poll: req.poll,
        precision: PRECISION,
        // The local clock is the reference: no delay or dispersion to a higher stratum.
        root_delay: 0,
        root_dispersion: 0,
        ref_id: params.ref_id,
        // The local clock "was last set" now; an unsynchronized clock was never set.
        reference: if params.unsynchronized {
            NtpTimestamp(0)
        } else {
            NtpTimestamp(receive.0 & !0xFFFF_FFFF)
        },
        // "Originate Timestamp: Copied from the Transmit Timestamp field of the request".
        origin: req.transmit,
        receive,
        transmit,
    }
}

/// A kiss-o'-death reply (RFC 5905 §7.4; RFC 4330 §8): stratum 0, the code in the reference
/// id, LI 3. It carries no time: the timestamps repeat the client's own.
pub fn kiss_of_death(req: &Packet, code: [u8; 4]) -> Packet {
    Packet {
        leap: LEAP_UNSYNCHRONIZED,
        version: req.version,
        mode: MODE_SERVER,
        stratum: 0,
        poll: req.poll,
        precision: PRECISION,
        root_delay: 0,
        root_dispersion: 0,
        ref_id: code,
        reference: NtpTimestamp(0),
        origin: req.transmit,
        receive: req.transmit,
        transmit: req.transmit,
    }
}

// ---------------------------------------------------------------------------------------------
// Client side

/// A version 4 client request sent at `transmit` (RFC 4330 §5: only VN, Mode and the Transmit
/// Timestamp are set; the timestamp is what the reply's Originate Timestamp must echo).
pub fn client_request(transmit: NtpTimestamp) -> Packet {
    Packet {
        leap: 0,
        version: 4,
        mode: MODE_CLIENT,
        stratum: 0,
        poll: 0,
        precision: 0,
        root_delay: 0,
        root_dispersion: 0,
        ref_id: [0; 4],
        reference: NtpTimestamp(0),
        origin: NtpTimestamp(0),
        receive: NtpTimestamp(0),
        transmit,
    }
}

/// Why a reply is not a usable answer (RFC 4330 §5 client checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error(transparent)]
    Malformed(#[from] PacketError),
    #[error("mode {0} is not a server reply (mode 4)")]
    NotServer(u8),
    #[error("the originate timestamp does not match our request: a stale or forged reply")]
    OriginMismatch,
    #[error("kiss-o'-death from the server: {}", kiss_text(.0))]
    KissOfDeath([u8; 4]),
    #[error("the server sent a zero transmit timestamp")]
    ZeroTransmit,
}

fn kiss_text(code: &[u8; 4]) -> String {
    let c = ascii_ref_id(code).unwrap_or_else(|| format!("{:02x?}", code));
    let meaning = match code {
        b"RATE" => " (rate exceeded: poll less often)",
        b"DENY" | b"RSTR" => " (access denied)",
        _ => "",
    };
    format!("{c}{meaning}")
}

/// One measurement: the reply and the four timestamps of RFC 4330 §5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub reply: Packet,
    /// T1: request sent (client clock).
    pub t1: NtpTimestamp,
    /// T2: request received (server clock).
    pub t2: NtpTimestamp,
    /// T3: reply sent (server clock).
    pub t3: NtpTimestamp,
    /// T4: reply received (client clock).
    pub t4: NtpTimestamp,
    /// Local clock offset in seconds: positive means the server is ahead.
    pub offset: f64,
    /// Round-trip delay in seconds.
    pub delay: f64,
}

/// RFC 4330 §5: `d = (T4 - T1) - (T3 - T2)` and `t = ((T2 - T1) + (T3 - T4)) / 2`, in seconds.
/// Computed in 64-bit fixed point (2^-32 s) with wrapping differences, so no precision is lost
/// to floating point before the final conversion.
pub fn offset_delay(
    t1: NtpTimestamp,
    t2: NtpTimestamp,
    t3: NtpTimestamp,
    t4: NtpTimestamp,
) -> (f64, f64) {
    let scale = 4_294_967_296.0_f64; // 2^32
    let offset = (i128::from(t2.diff(t1)) + i128::from(t3.diff(t4))) as f64 / 2.0 / scale;
    let delay = (i128::from(t4.diff(t1)) - i128::from(t3.diff(t2))) as f64 / scale;
    (offset, delay)
}

/// Checks a reply to the request sent at `t1`, received at `t4`, and computes offset and delay.
pub fn parse_reply(
    buf: &[u8],
    t1: NtpTimestamp,
    t4: NtpTimestamp,
) -> Result<Measurement, ReplyError> {
    let p = Packet::decode(buf)?;
    if p.mode != MODE_SERVER {
        return Err(ReplyError::NotServer(p.mode));
    }
    // The origin check comes first: a KoD that does not answer our request is not ours either.
    if p.origin != t1 {
        return Err(ReplyError::OriginMismatch);
    }
    if p.stratum == 0 {
        return Err(ReplyError::KissOfDeath(p.ref_id));
    }
    if p.transmit.is_zero() {
        return Err(ReplyError::ZeroTransmit);
    }
    let (offset, delay) = offset_delay(t1, p.receive, p.transmit, t4);
    Ok(Measurement {
        reply: p,
        t1,
        t2: p.receive,
        t3: p.transmit,
        t4,
        offset,
        delay,
    })
}

/// Root delay or dispersion (NTP short format) in seconds.
pub fn short_to_secs(v: u32) -> f64 {
    f64::from(v) / 65536.0
}

/// The reference id as 1-4 ASCII characters, if it is that (a kiss code, or the clock source
/// of a stratum-1 server such as "GPS" or "LOCL").
pub fn ascii_ref_id(id: &[u8; 4]) -> Option<String> {
    let len = id.iter().position(|&b| b == 0).unwrap_or(4);
    let (text, pad) = id.split_at(len);
    if len == 0
        || !pad.iter().all(|&b| b == 0)
        || !text
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return None;
    }
    Some(String::from_utf8_lossy(text).into_owned())
}

/// The reference id as 1-4 printable ASCII characters (no space), NUL-padded, if it is that:
/// how stratum 0-1 ids are written, lower case included (".DCFa." of a DCF77 receiver).
fn printable_ref_id(id: &[u8; 4]) -> Option<String> {
    let len = id.iter().position(|&b| b == 0).unwrap_or(4);
    let (text, pad) = id.split_at(len);
    (len > 0 && pad.iter().all(|&b| b == 0) && text.iter().all(u8::is_ascii_graphic))
        .then(|| String::from_utf8_lossy(text).into_owned())
}

/// How to show a reference id (RFC 5905 §7.3): stratum 0-1 carry ASCII (any printable
/// characters); higher strata the IPv4 address of their upstream (127.127.x.x for a local
/// clock, as chrony sends). A stratum-2+ id that reads as upper-case ASCII ("LOCL", as we
/// send by default) is shown as text.
pub fn ref_id_text(stratum: u8, id: &[u8; 4]) -> String {
    let text = if stratum <= 1 {
        printable_ref_id(id)
    } else {
        ascii_ref_id(id).filter(|t| t.as_bytes()[0].is_ascii_uppercase())
    };
    text.unwrap_or_else(|| format!("{}.{}.{}.{}", id[0], id[1], id[2], id[3]))
}

/// The leap indicator in words.
pub fn leap_text(li: u8) -> &'static str {
    match li {
        0 => "no warning",
        1 => "last minute of the day has 61 seconds",
        2 => "last minute of the day has 59 seconds",
        _ => "alarm: clock not synchronized",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: f64) -> NtpTimestamp {
        NtpTimestamp((secs * 4_294_967_296.0) as u64)
    }

    #[test]
    fn timestamp_conversions() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let n = NtpTimestamp::from_system_time(t);
        assert_eq!(u64::from(n.seconds()), 1_700_000_000 + UNIX_OFFSET);
        assert_eq!(n.fraction(), 1 << 31);
        assert_eq!(n.to_unix(), (1_700_000_000, 500_000_000));
        assert_eq!(n.to_rfc3339(), "2023-11-14T22:13:20.500000Z");
        // Era 1: after 2036-02-07 the seconds wrap and the top bit is clear.
        let later = UNIX_EPOCH + Duration::from_secs(2_200_000_000);
        let n = NtpTimestamp::from_system_time(later);
        assert_eq!(n.seconds() & 0x8000_0000, 0);
        assert_eq!(n.to_unix().0, 2_200_000_000);
    }

    #[test]
    fn packet_roundtrip() {
        let p = Packet {
            leap: 3,
            version: 4,
            mode: 4,
            stratum: 10,
            poll: 6,
            precision: -20,
            root_delay: 0x0001_8000,
            root_dispersion: 7,
            ref_id: *b"LOCL",
            reference: NtpTimestamp(1),
            origin: NtpTimestamp(2),
            receive: NtpTimestamp(3),
            transmit: NtpTimestamp(u64::MAX),
        };
        let b = p.encode();
        assert_eq!(b[0], 0b11_100_100);
        assert_eq!(&b[12..16], b"LOCL");
        assert_eq!(Packet::decode(&b), Ok(p));
        let mut longer = b.to_vec();
        longer.extend_from_slice(&[0; 20]); // a MAC: ignored
        assert_eq!(Packet::decode(&longer), Ok(p));
        assert_eq!(Packet::decode(&b[..47]), Err(PacketError::TooShort(47)));
        assert_eq!(short_to_secs(p.root_delay), 1.5);
    }

    #[test]
    fn server_answers_client_requests_only() {
        let params = ServerParams {
            stratum: 10,
            ref_id: *b"LOCL",
            unsynchronized: false,
        };
        let mut req = client_request(ts(1000.25));
        req.version = 3;
        req.poll = 6;
        let checked = check_request(&req.encode()).expect("a client request");
        let r = server_reply(&checked, &params, ts(1000.5), ts(1000.75));
        assert_eq!(
            (r.leap, r.version, r.mode, r.stratum, r.poll),
            (0, 3, 4, 10, 6)
        );
        assert_eq!(r.origin, req.transmit);
        assert_eq!(r.ref_id, *b"LOCL");
        assert_eq!((r.receive, r.transmit), (ts(1000.5), ts(1000.75)));
        assert_eq!(r.reference, ts(1000.0));

        let unsync = ServerParams {
            unsynchronized: true,
            ..params
        };
        let r = server_reply(&checked, &unsync, ts(1.0), ts(1.0));
        assert_eq!(r.leap, LEAP_UNSYNCHRONIZED);

        for (mode, version) in [(4u8, 4u8), (1, 4), (5, 4), (6, 2), (7, 2), (0, 4)] {
            let mut p = req;
            p.mode = mode;
            p.version = version;
            assert_eq!(check_request(&p.encode()), Err(Rejected::NotClient(mode)));
        }
        for v in [0u8, 5, 7] {
            let mut p = req;
            p.version = v;
            assert_eq!(check_request(&p.encode()), Err(Rejected::BadVersion(v)));
        }
        assert!(matches!(
            check_request(&[0x23; 10]),
            Err(Rejected::Malformed(_))
        ));
    }

    #[test]
    fn rfc4330_offset_and_delay() {
        // Server 0.5 s ahead, 0.1 s each way, 0.02 s processing.
        let (t1, t2, t3, t4) = (ts(100.0), ts(100.6), ts(100.62), ts(100.22));
        let (offset, delay) = offset_delay(t1, t2, t3, t4);
        assert!((offset - 0.5).abs() < 1e-6, "{offset}");
        assert!((delay - 0.2).abs() < 1e-6, "{delay}");
        // Server behind.
        let (offset, delay) = offset_delay(ts(100.0), ts(98.05), ts(98.05), ts(100.1));
        assert!((offset + 2.0).abs() < 1e-6, "{offset}");
        assert!((delay - 0.1).abs() < 1e-6, "{delay}");
        // Across the era boundary: T1 just before the wrap, T2..T4 just after.
        let before = NtpTimestamp(u64::MAX - (1u64 << 31)); // 0.5 s before the wrap
        let after = NtpTimestamp(1u64 << 31); // 0.5 s after
        let (offset, delay) = offset_delay(before, after, after, NtpTimestamp(3 << 30));
        assert!((offset - 0.375).abs() < 1e-6, "{offset}");
        assert!((delay - 1.25).abs() < 1e-6, "{delay}");
    }

    #[test]
    fn client_checks_replies() {
        let t1 = ts(500.0);
        let params = ServerParams {
            stratum: 2,
            ref_id: [127, 0, 0, 2],
            unsynchronized: false,
        };
        let req = client_request(t1);
        let good = server_reply(&req, &params, ts(500.1), ts(500.1));
        let m = parse_reply(&good.encode(), t1, ts(500.2)).expect("valid reply");
        assert!((m.offset - 0.0).abs() < 1e-6 && (m.delay - 0.2).abs() < 1e-6);
        assert_eq!(m.reply.stratum, 2);

        assert_eq!(
            parse_reply(&good.encode(), ts(499.0), ts(500.2)),
            Err(ReplyError::OriginMismatch)
        );
        let kod = kiss_of_death(&req, *b"RATE");
        let e = parse_reply(&kod.encode(), t1, ts(500.2)).unwrap_err();
        assert_eq!(e, ReplyError::KissOfDeath(*b"RATE"));
        assert!(e.to_string().contains("RATE (rate exceeded"));
        let mut bad = good;
        bad.mode = 3;
        assert_eq!(
            parse_reply(&bad.encode(), t1, t1),
            Err(ReplyError::NotServer(3))
        );
        let mut bad = good;
        bad.transmit = NtpTimestamp(0);
        assert_eq!(
            parse_reply(&bad.encode(), t1, t1),
            Err(ReplyError::ZeroTransmit)
        );
        assert!(matches!(
            parse_reply(&[0; 12], t1, t1),
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn ref_id_display() {
        assert_eq!(ref_id_text(1, b"GPS\0"), "GPS");
        // Issue 16: lower case and punctuation at stratum 1 (a DCF77 receiver's ".DCFa.").
        assert_eq!(ref_id_text(1, b"DCFa"), "DCFa");
        assert_eq!(ref_id_text(1, b".DC\0"), ".DC");
        assert_eq!(ref_id_text(0, b"RATE"), "RATE");
        assert_eq!(ref_id_text(2, b"DCFa"), "68.67.70.97");
        assert_eq!(ref_id_text(1, &[b'a', 0, b'b', 0]), "97.0.98.0");
        assert_eq!(ref_id_text(10, b"LOCL"), "LOCL");
        assert_eq!(ref_id_text(7, &[127, 127, 1, 1]), "127.127.1.1");
        assert_eq!(ref_id_text(2, &[127, 0, 0, 2]), "127.0.0.2");
        assert_eq!(ref_id_text(1, &[1, 2, 3, 4]), "1.2.3.4");
        assert_eq!(ascii_ref_id(b"RATE"), Some("RATE".into()));
        assert_eq!(ascii_ref_id(&[0, 0, 0, 0]), None);
        assert_eq!(leap_text(3), "alarm: clock not synchronized");
    }
}
