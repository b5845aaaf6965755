//! Per-address token buckets for the UDP services, sans-IO (the caller passes `now`).
//!
//! UDP source addresses can be forged, so every answer can be aimed at a victim. The services
//! never answer with more than the RFCs define, and this limiter bounds how many answers one
//! address gets per second. The table is bounded too: when it is full, addresses whose bucket
//! has refilled are forgotten first, then the one seen least recently.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per client address: `rate` per second, at most `burst` stored.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_entries: usize,
    table: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32, max_entries: usize) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            max_entries: max_entries.max(1),
            table: HashMap::new(),
        }
    }

    /// Takes a token for `ip`; false if it has none left (the datagram is dropped).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.table.contains_key(&ip) && self.table.len() >= self.max_entries {
            self.make_room(now);
        }
        let burst = self.burst;
        let rate = self.rate;
        let b = self.table.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn make_room(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        // A full bucket is the same as no entry.
        self.table.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
        });
        if self.table.len() >= self.max_entries {
            if let Some(oldest) = self
                .table
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k)
            {
                self.table.remove(&oldest);
            }
        }
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
    }

    #[test]
    fn burst_then_rate() {
        let mut rl = RateLimiter::new(2, 3, 10);
        let t0 = Instant::now();
        assert!(rl.allow(ip(1), t0));
        assert!(rl.allow(ip(1), t0));
        assert!(rl.allow(ip(1), t0));
        assert!(!rl.allow(ip(1), t0));
        assert!(rl.allow(ip(2), t0), "another address has its own bucket");
        assert!(!rl.allow(ip(1), t0 + Duration::from_millis(400)));
        assert!(rl.allow(ip(1), t0 + Duration::from_millis(600)));
        assert!(!rl.allow(ip(1), t0 + Duration::from_millis(700)));
        // Refill stops at the burst size.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(rl.allow(ip(1), later));
        }
        assert!(!rl.allow(ip(1), later));
    }

    #[test]
    fn table_is_bounded() {
        let mut rl = RateLimiter::new(1, 1, 4);
        let t0 = Instant::now();
        for n in 1..=50 {
            rl.allow(ip(n), t0 + Duration::from_millis(u64::from(n)));
            assert!(rl.tracked() <= 4);
        }
        // The most recent ones are still limited.
        assert!(!rl.allow(ip(50), t0 + Duration::from_millis(51)));
    }
}
