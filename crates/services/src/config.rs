//! The `[services]` table of the config file.
//!
//! Every service and transport is off unless it is given an address. Limits have named defaults
//! (see `defaults`); docs/SERVICES.md explains each one.
//!
//! ```toml
//! [services]
//! max_connections = 100          # per TCP listener
//! max_connections_per_ip = 10    # per TCP listener and client address
//! idle_timeout = "5m"
//! udp_rate = 20                  # datagrams per second per client address, per UDP service
//! udp_burst = 40
//! echo    = { tcp = "127.0.0.1:2007", udp = "127.0.0.1:2007" }
//! calc    = { tcp = "127.0.0.1:2030", udp = "127.0.0.1:2030", max_line = 1024 }
//! qotd    = { tcp = "127.0.0.1:2017", quotes_file = "/etc/mailroom/quotes" }
//! sntp    = { udp = "127.0.0.1:2123", stratum = 10, ref_id = "LOCL" }
//! ```
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The documented default values of every limit.
pub mod defaults {
    use std::time::Duration;
    /// Concurrent connections per TCP listener: bounds memory and file descriptors.
    pub const MAX_CONNECTIONS: usize = 100;
    /// Concurrent connections per client address and TCP listener: one client cannot take all.
    pub const MAX_CONNECTIONS_PER_IP: usize = 10;
    /// A connection with no progress (nothing read, or a write that cannot complete) for this
    /// long is closed. It also bounds a chargen client that stops reading.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// Datagrams per second accepted per client address by each UDP service (token bucket).
    pub const UDP_RATE: u32 = 20;
    /// Burst size of that bucket.
    pub const UDP_BURST: u32 = 40;
    /// Longest calculator request line in octets, without CRLF.
    pub const CALC_MAX_LINE: usize = 1024;
    /// SNTP stratum announced for the local clock.
    pub const SNTP_STRATUM: u8 = 10;
    /// SNTP reference identifier for the local clock.
    pub const SNTP_REF_ID: &str = "LOCL";
    /// How many client addresses a UDP rate limiter remembers at most.
    pub const RATE_TABLE_SIZE: usize = 4096;
}

/// `[services]` table of the config file. `Default` is everything off with default limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// RFC 862.
    pub echo: Endpoints,
    /// RFC 863.
    pub discard: Endpoints,
    /// RFC 867.
    pub daytime: Endpoints,
    /// RFC 864.
    pub chargen: Endpoints,
    /// RFC 865.
    pub qotd: QotdConfig,
    /// RFC 868.
    pub time: Endpoints,
    /// The calculator ("Rechen-Server").
    pub calc: CalcConfig,
    /// RFC 4330 / RFC 5905 server.
    pub sntp: SntpConfig,
    /// Concurrent connections per TCP listener.
    pub max_connections: usize,
    /// Concurrent connections per client address and TCP listener.
    pub max_connections_per_ip: usize,
    /// Close a TCP connection after this long without progress ("30s", "5m", "1h" or seconds).
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// Datagrams per second per client address, per UDP service.
    pub udp_rate: u32,
    /// Burst allowance of the UDP rate limit.
    pub udp_burst: u32,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            echo: Endpoints::default(),
            discard: Endpoints::default(),
            daytime: Endpoints::default(),
            chargen: Endpoints::default(),
            qotd: QotdConfig::default(),
            time: Endpoints::default(),
            calc: CalcConfig::default(),
            sntp: SntpConfig::default(),
            max_connections: defaults::MAX_CONNECTIONS,
            max_connections_per_ip: defaults::MAX_CONNECTIONS_PER_IP,
            idle_timeout: defaults::IDLE_TIMEOUT,
            udp_rate: defaults::UDP_RATE,
            udp_burst: defaults::UDP_BURST,
        }
    }
}

/// A service's listening addresses; a transport without an address is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoints {
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
}

/// `services.qotd`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QotdConfig {
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    /// Quotes separated by lines holding only `%` (the fortune(6) format); built-in if unset.
    pub quotes_file: Option<PathBuf>,
}

/// `services.calc`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalcConfig {
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    /// Longest request line in octets (without the line end).
    pub max_line: usize,
}

impl Default for CalcConfig {
    fn default() -> Self {
        Self {
            tcp: None,
            udp: None,
            max_line: defaults::CALC_MAX_LINE,
        }
    }
}

/// `services.sntp` (UDP only: NTP has no TCP transport).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SntpConfig {
    pub udp: Option<SocketAddr>,
    /// Stratum announced in replies, 1..=15 (RFC 5905 §7.3).
    pub stratum: u8,
    /// Reference identifier: up to four ASCII characters ("LOCL", "GPS") or an IPv4 address.
    pub ref_id: String,
    /// Announce leap indicator 3, "clock unsynchronized" (RFC 5905 §7.3).
    pub unsynchronized: bool,
    /// Answer rate-limited clients with a kiss-o'-death `RATE` packet instead of silence
    /// (RFC 5905 §7.4). Same size as the request, so no amplification.
    pub kiss_of_death: bool,
}

impl Default for SntpConfig {
    fn default() -> Self {
        Self {
            udp: None,
            stratum: defaults::SNTP_STRATUM,
            ref_id: defaults::SNTP_REF_ID.to_string(),
            unsynchronized: false,
            kiss_of_death: true,
        }
    }
}

impl SntpConfig {
    /// The 4-octet reference identifier on the wire (RFC 5905 §7.3 "Reference ID").
    pub fn ref_id_bytes(&self) -> Result<[u8; 4], String> {
        parse_ref_id(&self.ref_id)
    }
}

/// An IPv4 address, or 1-4 printable ASCII characters padded with NULs.
pub(crate) fn parse_ref_id(s: &str) -> Result<[u8; 4], String> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(ip.octets());
    }
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{s:?} is neither an IPv4 address nor 1-4 printable ASCII characters"
        ));
    }
    let mut out = [0u8; 4];
    out[..s.len()].copy_from_slice(s.as_bytes());
    Ok(out)
}

fn loopback(port: u16) -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn both(port: u16) -> Endpoints {
    Endpoints {
        tcp: loopback(port),
        udp: loopback(port),
    }
}

impl ServicesConfig {
    /// What `mailroom serve` runs when started without a config file: every TCP service, UDP
    /// echo/discard/daytime/time/calc/sntp, all on 127.0.0.1 high ports (2000 + the RFC port,
    /// 2123 for SNTP). UDP chargen and qotd stay off: their replies are larger than the request
    /// (up to 512 octets for a 0-octet datagram), the classic reflection amplifiers.
    pub fn dev_default() -> Self {
        Self {
            echo: both(2007),
            discard: both(2009),
            daytime: both(2013),
            chargen: Endpoints {
                tcp: loopback(2019),
                udp: None,
            },
            qotd: QotdConfig {
                tcp: loopback(2017),
                udp: None,
                quotes_file: None,
            },
            time: both(2037),
            calc: CalcConfig {
                tcp: loopback(2030),
                udp: loopback(2030),
                ..CalcConfig::default()
            },
            sntp: SntpConfig {
                udp: loopback(2123),
                ..SntpConfig::default()
            },
            ..Self::default()
        }
    }

    /// Every service with its (tcp, udp) addresses, in a fixed order.
    pub(crate) fn services(&self) -> [(&'static str, Option<SocketAddr>, Option<SocketAddr>); 8] {
        [
            ("echo", self.echo.tcp, self.echo.udp),
            ("discard", self.discard.tcp, self.discard.udp),
            ("daytime", self.daytime.tcp, self.daytime.udp),
            ("chargen", self.chargen.tcp, self.chargen.udp),
            ("qotd", self.qotd.tcp, self.qotd.udp),
            ("time", self.time.tcp, self.time.udp),
            ("calc", self.calc.tcp, self.calc.udp),
            ("sntp", None, self.sntp.udp),
        ]
    }

    /// Every configured (service, transport, address).
    pub(crate) fn listeners(&self) -> Vec<(&'static str, Transport, SocketAddr)> {
        let mut out = Vec::new();
        for (name, tcp, udp) in self.services() {
            if let Some(a) = tcp {
                out.push((name, Transport::Tcp, a));
            }
            if let Some(a) = udp {
                out.push((name, Transport::Udp, a));
            }
        }
        out
    }

    /// Checks values; errors name the key (`services.echo.tcp: ...`).
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_connections > 100_000 {
            return Err("services.max_connections: must be between 1 and 100000".into());
        }
        if self.max_connections_per_ip == 0 {
            return Err("services.max_connections_per_ip: must be at least 1".into());
        }
        if self.idle_timeout.is_zero() || self.idle_timeout > Duration::from_secs(86_400) {
            return Err("services.idle_timeout: must be between 1s and 24h".into());
        }
        if self.udp_rate == 0 {
            return Err("services.udp_rate: must be at least 1 datagram per second".into());
        }
        if self.udp_burst == 0 {
            return Err("services.udp_burst: must be at least 1".into());
        }
        if !(16..=65_536).contains(&self.calc.max_line) {
            return Err("services.calc.max_line: must be between 16 and 65536 octets".into());
        }
        if !(1..=15).contains(&self.sntp.stratum) {
            // RFC 5905 §7.3: 0 is kiss-o'-death, 16 is unsynchronized, 17-255 reserved.
            return Err(
                "services.sntp.stratum: must be between 1 and 15 (RFC 5905 §7.3)".to_string(),
            );
        }
        self.sntp
            .ref_id_bytes()
            .map_err(|e| format!("services.sntp.ref_id: {e}"))?;
        if let Some(path) = &self.qotd.quotes_file {
            crate::qotd::Quotes::load(path)
                .map_err(|e| format!("services.qotd.quotes_file: {e}"))?;
        }
        // Two listeners of the same transport on the same address cannot both bind.
        let mut seen: HashMap<(Transport, SocketAddr), String> = HashMap::new();
        for (name, transport, addr) in self.listeners() {
            let key = format!("services.{name}.{}", transport.as_str());
            if addr.port() == 0 {
                continue;
            }
            if let Some(other) = seen.insert((transport, addr), key.clone()) {
                return Err(format!("{key}: address {addr} is already used by {other}"));
            }
        }
        Ok(())
    }
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Parses "250ms", "30s", "5m", "1h", or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"30s\", \"5m\", \"1h\" or \"2d\""))?;
    let secs = match unit.trim() {
        "" | "s" => Some(n),
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86400),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m, h or d)"
            ))
        }
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Serde helper: a duration given as a number of seconds or as text for [`parse_duration`].
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(n) => Ok(Duration::from_secs(n)),
        Raw::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_all_off_and_valid() {
        let c = ServicesConfig::default();
        assert!(c.listeners().is_empty());
        c.validate().expect("default validates");
    }

    #[test]
    fn dev_default_shape() {
        let c = ServicesConfig::dev_default();
        c.validate().expect("dev default validates");
        let l = c.listeners();
        assert!(l.iter().all(|(_, _, a)| a.ip().is_loopback()));
        assert!(c.chargen.udp.is_none() && c.qotd.udp.is_none());
        assert_eq!(c.echo.tcp.map(|a| a.port()), Some(2007));
        assert_eq!(c.sntp.udp.map(|a| a.port()), Some(2123));
        assert_eq!(l.len(), 13);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn ref_ids() {
        assert_eq!(parse_ref_id("LOCL"), Ok(*b"LOCL"));
        assert_eq!(parse_ref_id("GPS"), Ok(*b"GPS\0"));
        assert_eq!(parse_ref_id("127.127.1.1"), Ok([127, 127, 1, 1]));
        assert!(parse_ref_id("").is_err());
        assert!(parse_ref_id("TOOLONG").is_err());
        assert!(parse_ref_id("A B").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = ServicesConfig::dev_default();
        c.daytime.tcp = c.echo.tcp;
        let e = c.validate().unwrap_err();
        assert!(e.starts_with("services.daytime.tcp:"), "{e}");
        assert!(e.contains("services.echo.tcp"), "{e}");

        let mut c = ServicesConfig::default();
        c.sntp.stratum = 16;
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("services.sntp.stratum:"));
        let mut c = ServicesConfig::default();
        c.sntp.ref_id = "TOOLONG".into();
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("services.sntp.ref_id:"));
        let mut c = ServicesConfig::default();
        c.calc.max_line = 1;
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("services.calc.max_line:"));
        let mut c = ServicesConfig::default();
        c.qotd.quotes_file = Some("/nonexistent/quotes".into());
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("services.qotd.quotes_file:"));
        let c = ServicesConfig {
            max_connections: 0,
            ..ServicesConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("services.max_connections:"));
        let c = ServicesConfig {
            idle_timeout: Duration::ZERO,
            ..ServicesConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("services.idle_timeout:"));
        let c = ServicesConfig {
            udp_rate: 0,
            ..ServicesConfig::default()
        };
        assert!(c.validate().unwrap_err().starts_with("services.udp_rate:"));
    }

    #[derive(Deserialize)]
    struct File {
        services: ServicesConfig,
    }

    fn parse(text: &str) -> Result<ServicesConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.services)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn toml_shape() {
        let c = parse(
            r#"
[services]
max_connections = 50
max_connections_per_ip = 5
idle_timeout = "30s"
udp_rate = 5
udp_burst = 10
echo = { tcp = "127.0.0.1:2007", udp = "127.0.0.1:2007" }
daytime = { tcp = "[::1]:2013" }
calc = { tcp = "127.0.0.1:2030", udp = "127.0.0.1:2030", max_line = 256 }
qotd = { tcp = "127.0.0.1:2017" }
sntp = { udp = "127.0.0.1:2123", stratum = 3, ref_id = "GPS", unsynchronized = true, kiss_of_death = false }
"#,
        )
        .expect("parses");
        c.validate().expect("valid");
        assert_eq!(c.max_connections, 50);
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.echo.udp, loopback(2007));
        assert_eq!(c.daytime.tcp.map(|a| a.is_ipv6()), Some(true));
        assert_eq!(c.daytime.udp, None);
        assert_eq!(c.calc.max_line, 256);
        assert_eq!(c.sntp.ref_id_bytes(), Ok(*b"GPS\0"));
        assert!(c.sntp.unsynchronized && !c.sntp.kiss_of_death);
        assert_eq!(c.discard, Endpoints::default());

        // Missing keys take their defaults; an empty table is all off.
        let c = parse("[services]\nidle_timeout = 90\n").expect("parses");
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.udp_rate, defaults::UDP_RATE);
        assert!(c.listeners().is_empty());
        let c = parse("[services]\nsntp = { udp = \"127.0.0.1:0\" }\n").expect("parses");
        assert_eq!((c.sntp.stratum, c.sntp.ref_id.as_str()), (10, "LOCL"));
        assert!(c.sntp.kiss_of_death);
    }

    #[test]
    fn toml_errors() {
        let e = parse("[services]\necho = { tcp = \"127.0.0.1:7\", sctp = \"x\" }\n").unwrap_err();
        assert!(e.contains("sctp"), "{e}");
        let e = parse("[services]\nfinger = { tcp = \"127.0.0.1:79\" }\n").unwrap_err();
        assert!(e.contains("finger"), "{e}");
        let e = parse("[services]\nsntp = { tcp = \"127.0.0.1:123\" }\n").unwrap_err();
        assert!(e.contains("tcp"), "{e}");
        let e = parse("[services]\necho = { tcp = \"localhost\" }\n").unwrap_err();
        assert!(e.contains("socket address"), "{e}");
        let e = parse("[services]\nidle_timeout = \"5 fortnights\"\n").unwrap_err();
        assert!(e.contains("unit"), "{e}");
    }

    #[test]
    fn same_port_on_tcp_and_udp_is_fine() {
        let mut c = ServicesConfig::default();
        c.calc.tcp = loopback(2030);
        c.calc.udp = loopback(2030);
        c.validate().expect("tcp and udp may share an address");
    }
}
