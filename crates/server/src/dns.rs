//! The DNS resolver every part of the server shares: the queue's MX lookups (RFC 5321 §5.1),
//! the inbound SPF, DKIM and DMARC checks (their TXT, A, AAAA, MX and PTR lookups) and
//! `mailroom dns --check`.
//!
//! `[dns] servers` points it at given name servers (tests run one on a loopback port); without
//! them it reads the system's configuration. The resolver is `mail-auth`'s (hickory), and the
//! parsed records are cached here for their TTL ([`TtlCache`]), so a sender's SPF and DMARC
//! records are fetched and parsed once for many messages.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, Protocol, ResolverConfig, ResolverOpts,
};
use mail_auth::{MessageAuthenticator, Parameters, ResolverCache, Txt, MX};

use crate::config::DnsConfig;
use crate::queue::route::MxAnswer;

/// Entries kept per cache; past it, expired entries go, then everything (a crude but bounded
/// rule: the caches only save lookups).
const CACHE_ENTRIES: usize = 10_000;

/// A map whose entries expire at the time the resolver gave (the record's TTL).
pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(name) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            _ => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

/// The caches `mail-auth` fills, one per record type.
pub type Params<'x, P> = Parameters<
    'x,
    P,
    TtlCache<String, Txt>,
    TtlCache<String, Arc<Vec<MX>>>,
    TtlCache<String, Arc<Vec<Ipv4Addr>>>,
    TtlCache<String, Arc<Vec<Ipv6Addr>>>,
    TtlCache<IpAddr, Arc<Vec<String>>>,
>;

/// The shared resolver and its caches.
pub struct Dns {
    pub auth: MessageAuthenticator,
    /// Why the system's configuration could not be read, when it could not (lookups then
    /// fail with this text).
    pub problem: Option<String>,
    txt: TtlCache<String, Txt>,
    mx: TtlCache<String, Arc<Vec<MX>>>,
    ipv4: TtlCache<String, Arc<Vec<Ipv4Addr>>>,
    ipv6: TtlCache<String, Arc<Vec<Ipv6Addr>>>,
    ptr: TtlCache<IpAddr, Arc<Vec<String>>>,
}

impl Dns {
    /// The resolver `[dns]` describes. Never fails: without a usable configuration it has no
    /// name servers and says why in every failed lookup.
    pub fn new(config: &DnsConfig) -> Dns {
        let mut problem = None;
        let (rc, mut opts) = if config.servers.is_empty() {
            match mail_auth::hickory_resolver::system_conf::read_system_conf() {
                Ok(pair) => pair,
                Err(e) => {
                    problem = Some(format!(
                        "no DNS resolver configured ({e}); set [dns] servers in the config"
                    ));
                    (ResolverConfig::new(), ResolverOpts::default())
                }
            }
        } else {
            let mut rc = ResolverConfig::new();
            for addr in &config.servers {
                rc.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
                rc.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
            }
            let mut opts = ResolverOpts::default();
            // Ask the given servers in the order given, as resolv.conf's servers are.
            opts.server_ordering_strategy =
                mail_auth::hickory_resolver::config::ServerOrderingStrategy::UserProvidedOrder;
            (rc, opts)
        };
        if let Some(t) = config.timeout {
            opts.timeout = t;
        }
        // The parsed records are cached here; hickory's own cache is kept small.
        opts.cache_size = 256;
        let auth = MessageAuthenticator(mail_auth::hickory_resolver::TokioAsyncResolver::tokio(
            rc, opts,
        ));
        Dns {
            auth,
            problem,
            txt: TtlCache::default(),
            mx: TtlCache::default(),
            ipv4: TtlCache::default(),
            ipv6: TtlCache::default(),
            ptr: TtlCache::default(),
        }
    }

    /// `mail-auth` parameters with this resolver's caches.
    pub fn params<P>(&self, p: P) -> Params<'_, P> {
        Parameters::new(p)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }

    /// MX records of `domain` for the queue (RFC 5321 §5.1).
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, String> {
        use mail_auth::hickory_resolver::error::ResolveErrorKind;
        use mail_auth::hickory_resolver::proto::op::ResponseCode;
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.auth.resolver().mx_lookup(fqdn).await {
            Ok(lookup) => Ok(MxAnswer::Records(
                lookup
                    .iter()
                    .map(|mx| (mx.preference(), mx.exchange().to_utf8()))
                    .collect(),
            )),
            Err(e) => match e.kind() {
                ResolveErrorKind::NoRecordsFound { response_code, .. } => {
                    if *response_code == ResponseCode::NXDomain {
                        Ok(MxAnswer::NoSuchDomain)
                    } else {
                        Ok(MxAnswer::None)
                    }
                }
                _ => Err(format!("DNS lookup of {domain} failed: {e}")),
            },
        }
    }

    /// The DMARC record published at `_dmarc.DOMAIN` (RFC 7489 §6.6.3), parsed by `mail-auth`
    /// and kept in the TXT cache. `Ok(None)` when there is none: no such name, no TXT record
    /// there, or none that reads as a DMARC record (§6.6.3 discards those). `Err` when the
    /// lookup itself failed (a temporary error, §6.6.3 step 3's temperror).
    pub async fn dmarc(&self, domain: &str) -> Result<Option<Arc<Dmarc>>, String> {
        use mail_auth::Error;
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        let name = format!("_dmarc.{}.", domain.trim_end_matches('.'));
        match self.auth.txt_lookup::<Dmarc>(name, Some(&self.txt)).await {
            Ok(record) => Ok(Some(record)),
            Err(Error::DnsRecordNotFound(_) | Error::InvalidRecordType | Error::ParseError) => {
                Ok(None)
            }
            Err(e) => Err(format!("DNS lookup of _dmarc.{domain} failed: {e}")),
        }
    }

    /// The TXT records at `name`, each as one string (its character-strings joined), for
    /// `mailroom dns --check`. `Ok(empty)` when there are none.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        use mail_auth::hickory_resolver::error::ResolveErrorKind;
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.auth.resolver().txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>()
                })
                .collect()),
            Err(e) => match e.kind() {
                ResolveErrorKind::NoRecordsFound { .. } => Ok(Vec::new()),
                _ => Err(format!("DNS lookup of {name} TXT failed: {e}")),
            },
        }
    }
}
