//! The memory budget for messages being received.
//!
//! A message is held in memory from its first octet until the store has it (SMTP DATA and
//! BDAT, IMAP APPEND). Each is bounded by `limits.max_message_size`, but many at once are not:
//! a thousand sessions each sending 25 MiB would need 25 GiB. All sessions together may hold
//! `limits.max_incoming_memory` octets; a session that would pass it is told to try again
//! later (SMTP `452 4.3.1`, IMAP `NO [UNAVAILABLE]`), and nothing that was accepted is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Octets of incoming messages held by all sessions, against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Octets held now (for tests and logs).
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation; it grows as a message arrives and gives everything back when
    /// dropped.
    pub fn reserve(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// One session's share of the budget.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    held: u64,
}

impl Reservation {
    /// Grows the share to `total` octets; false (and unchanged) when the budget cannot give
    /// that much now.
    pub fn grow_to(&mut self, total: u64) -> bool {
        if total <= self.held {
            return true;
        }
        let extra = total - self.held;
        let got = self
            .budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(extra).filter(|&n| n <= self.budget.limit)
            });
        if got.is_ok() {
            self.held = total;
        }
        got.is_ok()
    }

    /// Octets held by this reservation.
    pub fn held(&self) -> u64 {
        self.held
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_give_back_on_drop() {
        let b = MemoryBudget::new(100);
        let mut r1 = b.reserve();
        let mut r2 = b.reserve();
        assert!(r1.grow_to(60));
        assert!(r1.grow_to(40), "shrinking requests are no-ops");
        assert_eq!(r1.held(), 60);
        assert!(!r2.grow_to(41));
        assert_eq!(r2.held(), 0);
        assert!(r2.grow_to(40));
        assert_eq!(b.used(), 100);
        drop(r1);
        assert_eq!(b.used(), 40);
        assert!(r2.grow_to(100));
        drop(r2);
        assert_eq!(b.used(), 0);
    }
}
