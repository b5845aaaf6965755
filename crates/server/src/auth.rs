//! Password checks shared by every protocol.
//!
//! The answer for an unknown user and for a wrong password is the same, and costs the same:
//! an unknown user is checked against a dummy hash so the timing does not tell them apart.

use std::sync::OnceLock;

use mailroom_store::{password, Account, Store};

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash_password("mailroom-dummy-password").unwrap_or_default())
}

/// Checks `address`/`secret` against the store on a blocking thread.
/// `None` for an unknown user, a wrong password or a store error (logged).
pub async fn check_password(store: &Store, address: &str, secret: &str) -> Option<Account> {
    let store = store.clone();
    let address = address.to_string();
    let secret = secret.to_string();
    let res = tokio::task::spawn_blocking(move || match store.find_account(&address) {
        Ok(Some(acct)) => password::verify_password(&secret, &acct.password_hash).then_some(acct),
        Ok(None) => {
            let _ = password::verify_password(&secret, dummy_hash());
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            None
        }
    })
    .await;
    res.ok().flatten()
}

/// The delay before answering the n-th failed authentication of a connection (n from 1):
/// the base delay doubled per failure, capped at eight times the base.
pub fn failure_delay(base: std::time::Duration, failures: u32) -> std::time::Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(3);
    base * factor
}

/// Looks up an account by address on a blocking thread (None also on store errors, logged).
pub async fn find_account(store: &Store, address: &str) -> Option<Account> {
    let store = store.clone();
    let address = address.to_string();
    tokio::task::spawn_blocking(move || store.find_account(&address))
        .await
        .ok()
        .and_then(|r| {
            r.map_err(|e| tracing::error!(error = %e, "account lookup failed"))
                .ok()
        })
        .flatten()
}

/// Addresses remembered at most (oldest forgotten first): bounds the memory an attacker with
/// many addresses can make the server use.
const MAX_TRACKED: usize = 10_000;

/// Recent authentication failures per client address, across connections and protocols, so
/// that opening a new connection does not reset the delay (the per-address dimension).
pub struct FailureTracker {
    map: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
    /// How long a failure counts against its address (`limits.auth_failure_window`); zero
    /// turns the per-address count off.
    window: std::time::Duration,
}

impl FailureTracker {
    pub fn new(window: std::time::Duration) -> Self {
        FailureTracker {
            map: Default::default(),
            window,
        }
    }

    /// Records one failure from `ip` and returns how many it has within the window.
    pub fn record(&self, ip: std::net::IpAddr) -> u32 {
        self.record_at(ip, std::time::Instant::now())
    }

    fn record_at(&self, ip: std::net::IpAddr, now: std::time::Instant) -> u32 {
        if self.window.is_zero() {
            return 1;
        }
        let Ok(mut map) = self.map.lock() else {
            return 1;
        };
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (_, last)| now.duration_since(*last) < self.window);
            if map.len() >= MAX_TRACKED {
                if let Some(oldest) = map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let e = map.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= self.window {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
        e.0
    }

    /// Failures of `ip` within the window (0 when none).
    pub fn count(&self, ip: std::net::IpAddr) -> u32 {
        let now = std::time::Instant::now();
        self.map
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&ip)
                    .filter(|(_, t)| now.duration_since(*t) < self.window)
                    .map(|(n, _)| *n)
            })
            .unwrap_or(0)
    }
}

/// Records a failed authentication from `peer` and returns the delay to wait before
/// answering: the larger of the per-connection and the per-address doubling (each capped at
/// eight times the base). Logs one line with the address (never the password).
pub fn note_failure(
    shared: &crate::Shared,
    proto: &str,
    peer: std::net::SocketAddr,
    user: &str,
    conn_failures: u32,
) -> std::time::Duration {
    let per_ip = shared.auth_failures.record(peer.ip());
    tracing::warn!(
        proto,
        peer = %peer,
        ip = %peer.ip(),
        user = %user,
        failures_on_connection = conn_failures,
        failures_from_address = per_ip,
        "authentication failed"
    );
    failure_delay(
        shared.config.limits.auth_failure_delay,
        conn_failures.max(per_ip),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn delay_doubles_and_is_capped() {
        let b = Duration::from_millis(100);
        assert_eq!(failure_delay(b, 1), b);
        assert_eq!(failure_delay(b, 2), b * 2);
        assert_eq!(failure_delay(b, 4), b * 8);
        assert_eq!(failure_delay(b, 40), b * 8);
    }

    #[test]
    fn per_address_failures_count_and_expire() {
        let window = Duration::from_secs(15 * 60);
        let t = FailureTracker::new(window);
        let a: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let b: std::net::IpAddr = "127.0.0.3".parse().unwrap();
        let now = Instant::now();
        assert_eq!(t.record_at(a, now), 1);
        assert_eq!(t.record_at(a, now), 2);
        assert_eq!(t.record_at(b, now), 1);
        assert_eq!(t.record_at(a, now + window + Duration::from_secs(1)), 1);
    }

    #[test]
    fn a_zero_window_counts_nothing_per_address() {
        let t = FailureTracker::new(Duration::ZERO);
        let a: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.record(a), 1);
        assert_eq!(t.record(a), 1);
        assert_eq!(t.count(a), 0);
    }
}
