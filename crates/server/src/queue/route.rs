//! Where mail for a domain goes (RFC 5321 §5.1):
//! 1. a static route from `[routes]` (the lab's replacement for DNS; `"*"` is the default);
//! 2. the smart host of `[relay]`;
//! 3. DNS: the MX records by preference, or the domain's own address when it has none;
//!    a null MX (RFC 7505) means the domain accepts no mail.

use crate::config::{parse_host_port, Config, TlsMode};

/// How a delivery uses TLS. The default is opportunistic STARTTLS (RFC 3207, RFC 7435): used
/// when the peer offers it, certificate not checked, plaintext otherwise. `none` never
/// upgrades (the lab's packet capture sees the whole dialogue); `require` never delivers in
/// clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    pub mode: TlsMode,
    /// Check the peer's certificate (against `ca`, else the built-in roots); only with
    /// `TlsMode::Require` (the config refuses it with the others).
    pub verify: bool,
    pub ca: Option<std::path::PathBuf>,
}

/// A destination: one delivery attempt goes to its hosts in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A fixed `host:port` (static route or relay host); `auth` for the relay.
    Fixed {
        host: String,
        port: u16,
        auth: Option<(String, String)>,
        tls: TlsPolicy,
    },
    /// Look up the domain's MX records at delivery time.
    Mx { domain: String },
}

impl Destination {
    /// Recipients with the same key share one SMTP transaction and one concurrency slot.
    pub fn key(&self) -> String {
        match self {
            Destination::Fixed { host, port, .. } => format!("{host}:{port}"),
            Destination::Mx { domain } => format!("mx:{domain}"),
        }
    }
}

/// Picks the destination of a recipient domain.
pub fn choose(config: &Config, domain: &str) -> Destination {
    let domain = domain.to_ascii_lowercase();
    let route = config
        .routes
        .iter()
        .find(|(d, _)| d.eq_ignore_ascii_case(&domain))
        .or_else(|| config.routes.iter().find(|(d, _)| d.as_str() == "*"));
    if let Some((r, (host, port))) =
        route.and_then(|(_, r)| parse_host_port(&r.host).map(|hp| (r, hp)))
    {
        return Destination::Fixed {
            host,
            port,
            auth: None,
            tls: TlsPolicy {
                // A route's own setting, else the queue's default (`queue.tls`).
                mode: r.tls.unwrap_or(config.queue.tls),
                verify: r.verify,
                ca: r.ca.clone(),
            },
        };
    }
    if let Some(relay) = &config.relay {
        if let Some((host, port)) = parse_host_port(&relay.host) {
            let auth = relay.user.clone().zip(relay.password.clone());
            let tls = TlsPolicy {
                // Checked by `Config::validate`; a contradiction cannot get here.
                mode: relay.tls_mode().ok().flatten().unwrap_or(config.queue.tls),
                verify: relay.verify || relay.ca.is_some(),
                ca: relay.ca.clone(),
            };
            return Destination::Fixed {
                host,
                port,
                auth,
                tls,
            };
        }
    }
    Destination::Mx { domain }
}

/// The TLS policy for MX hosts found in DNS: `queue.tls`, certificates not checked.
pub fn mx_policy(config: &Config) -> TlsPolicy {
    TlsPolicy {
        mode: config.queue.tls,
        ..TlsPolicy::default()
    }
}

/// The outcome of an MX lookup, independent of the resolver library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// (preference, exchange host) pairs.
    Records(Vec<(u16, String)>),
    /// The domain has no MX records (but exists or might).
    None,
    /// The name does not exist (NXDOMAIN).
    NoSuchDomain,
}

/// Turns an MX answer into the hosts to try, in order (RFC 5321 §5.1), or a permanent error.
pub fn mx_hosts(domain: &str, answer: MxAnswer) -> Result<Vec<String>, String> {
    match answer {
        MxAnswer::Records(mut recs) => {
            // RFC 7505 §3: a single MX with an empty exchange (".") means "no mail here".
            if recs.len() == 1 && (recs[0].1 == "." || recs[0].1.is_empty()) {
                return Err(format!("{domain} accepts no mail (null MX, RFC 7505)"));
            }
            recs.retain(|(_, h)| h != "." && !h.is_empty());
            recs.sort_by_key(|(p, _)| *p);
            Ok(recs
                .into_iter()
                .map(|(_, h)| h.trim_end_matches('.').to_string())
                .collect())
        }
        // RFC 5321 §5.1: no MX records → the domain itself is the host (implicit MX).
        MxAnswer::None => Ok(vec![domain.to_string()]),
        MxAnswer::NoSuchDomain => Err(format!("the domain {domain} does not exist (NXDOMAIN)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        Config::parse(&format!("hostname = \"h.test\"\n{extra}"), "t.toml").unwrap()
    }

    #[test]
    fn static_routes_win_then_relay_then_mx() {
        let c =
            cfg("[routes]\n\"school.test\" = \"127.0.0.1:25025\"\n\"*\" = \"127.0.0.1:2526\"\n");
        assert_eq!(choose(&c, "School.Test").key(), "127.0.0.1:25025");
        assert_eq!(choose(&c, "other.test").key(), "127.0.0.1:2526");
        let c = cfg("[relay]\nhost = \"smart.test:587\"\nuser = \"u\"\npassword = \"p\"\n[routes]\n\"a.test\" = \"127.0.0.1:1\"\n");
        assert_eq!(choose(&c, "a.test").key(), "127.0.0.1:1");
        assert_eq!(
            choose(&c, "b.test"),
            Destination::Fixed {
                host: "smart.test".into(),
                port: 587,
                auth: Some(("u".into(), "p".into())),
                tls: TlsPolicy::default(),
            }
        );
        let c = cfg("");
        assert_eq!(
            choose(&c, "b.test"),
            Destination::Mx {
                domain: "b.test".into()
            }
        );
    }

    #[test]
    fn tls_modes_of_routes_relay_and_mx() {
        let tls = |c: &Config, d: &str| match choose(c, d) {
            Destination::Fixed { tls, .. } => tls,
            other => panic!("{other:?}"),
        };
        let c = cfg("[routes]\n\"a.test\" = \"127.0.0.1:1\"\n\"b.test\" = { host = \"127.0.0.1:2\", tls = \"none\" }\n\"c.test\" = { host = \"127.0.0.1:3\", require_tls = true }\n");
        assert_eq!(tls(&c, "a.test").mode, TlsMode::Opportunistic);
        assert_eq!(tls(&c, "b.test").mode, TlsMode::None);
        assert_eq!(tls(&c, "c.test").mode, TlsMode::Require);
        assert_eq!(mx_policy(&c).mode, TlsMode::Opportunistic);
        // queue.tls is the default of everything that does not choose.
        let c = cfg("[queue]\ntls = \"none\"\n[routes]\n\"a.test\" = \"127.0.0.1:1\"\n\"v.test\" = { host = \"127.0.0.1:2\", verify = true }\n[relay]\nhost = \"smart.test:25\"\n");
        assert_eq!(tls(&c, "a.test").mode, TlsMode::None);
        assert_eq!(
            tls(&c, "v.test").mode,
            TlsMode::Require,
            "verify implies require"
        );
        assert_eq!(tls(&c, "other.test").mode, TlsMode::None, "the relay");
        assert_eq!(mx_policy(&c).mode, TlsMode::None);
        let c =
            cfg("[queue]\ntls = \"none\"\n[relay]\nhost = \"smart.test:25\"\ntls = \"require\"\n");
        assert_eq!(tls(&c, "other.test").mode, TlsMode::Require);
    }

    #[test]
    fn mx_ordering_null_mx_and_fallback() {
        let recs = MxAnswer::Records(vec![(20, "b.mx.test.".into()), (10, "a.mx.test.".into())]);
        assert_eq!(
            mx_hosts("d.test", recs).unwrap(),
            vec!["a.mx.test", "b.mx.test"]
        );
        assert!(mx_hosts("d.test", MxAnswer::Records(vec![(0, ".".into())])).is_err());
        assert_eq!(mx_hosts("d.test", MxAnswer::None).unwrap(), vec!["d.test"]);
        assert!(mx_hosts("d.test", MxAnswer::NoSuchDomain).is_err());
    }
}
