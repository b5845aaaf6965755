//! Capture mode (`mailroom serve --capture`, `[capture] enabled = true`): a mail sink for
//! testing applications that send mail, like Mailpit or MailHog, in the same binary.
//!
//! - Every recipient at every domain is accepted and filed under its own address: the account
//!   is created on first use (with its INBOX and the default folders, and its domain made
//!   local) with the password `[capture] password`, so a test reads it over POP3, IMAP or the
//!   HTTP API.
//! - Any AUTH is accepted without a password check (logged with the user name given), and no
//!   listener insists on one; the envelope sender is not checked against a login.
//! - Nothing is relayed: no recipient is remote, so no queue entry is ever made.
//! - `[capture.faults]` answers a share of MAIL, RCPT, AUTH or the message's data with a
//!   chosen 4xx/5xx reply instead of the real one (Mailpit's "chaos"), drawn from a seeded
//!   generator so a test run repeats. An injected fault does not count towards
//!   `limits.max_errors` (the client did nothing wrong).

use std::sync::Mutex;

use mailroom_proto::smtp::Reply;
use mailroom_store::{password, Account, Store, StoreError};
use rand::{Rng, SeedableRng};

use crate::config::{CaptureConfig, Fault};
use crate::metrics::FaultStage;

/// Capture mode's state, one per server (`Shared::capture`).
pub struct Capture {
    /// The argon2 hash of `[capture] password`, computed once for every account made.
    password_hash: String,
    /// By [`FaultStage`]: mail, rcpt, data, auth.
    faults: [Option<Fault>; 4],
    rng: Mutex<rand::rngs::StdRng>,
}

impl Capture {
    /// Prepares capture mode from its config (hashes the password: blocking, once).
    pub fn new(cfg: &CaptureConfig) -> Result<Capture, StoreError> {
        let f = &cfg.faults;
        let rng = match f.seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
            None => rand::rngs::StdRng::from_entropy(),
        };
        Ok(Capture {
            password_hash: password::hash_password(&cfg.password)?,
            faults: [
                f.mail.clone(),
                f.rcpt.clone(),
                f.data.clone(),
                f.auth.clone(),
            ],
            rng: Mutex::new(rng),
        })
    }

    /// Whether `stage` fails this time, and with what reply. A rate of 1 always fails and 0
    /// never does; in between, one draw from the seeded generator decides.
    pub fn fault(&self, stage: FaultStage) -> Option<Reply> {
        let f = self.faults[stage as usize].as_ref()?;
        let hit = if f.rate >= 1.0 {
            true
        } else if f.rate <= 0.0 {
            false
        } else {
            let draw: f64 = match self.rng.lock() {
                Ok(mut rng) => rng.gen(),
                Err(_) => return None,
            };
            draw < f.rate
        };
        if !hit {
            return None;
        }
        let name = crate::metrics::STAGES[stage as usize];
        let text = f.text.clone().unwrap_or_else(|| {
            if f.code < 500 {
                format!("Temporary failure injected by capture mode ([capture.faults] {name}); try again later")
            } else {
                format!("Permanent failure injected by capture mode ([capture.faults] {name})")
            }
        });
        // RFC 3463: X.0.0, "other or undefined status" of the reply's class.
        let enhanced = if f.code < 500 { "4.0.0" } else { "5.0.0" };
        Some(Reply::new(f.code, enhanced, text))
    }

    /// The account that receives captured mail for `address` (blocking): the existing one, or
    /// one made now (two sessions making the same one at once both get it).
    pub fn account_for(&self, store: &Store, address: &str) -> Result<Account, StoreError> {
        if let Some(a) = store.find_account(address)? {
            return Ok(a);
        }
        match store.add_account(address, &self.password_hash) {
            Ok(_) | Err(StoreError::Exists(_)) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(%address, "capture mode: account created for a new recipient");
        store
            .find_account(address)?
            .ok_or_else(|| StoreError::NotFound(format!("account {address}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FaultsConfig;

    fn capture(rate: f64, seed: u64) -> Capture {
        let cfg = CaptureConfig {
            faults: FaultsConfig {
                seed: Some(seed),
                rcpt: Some(Fault {
                    rate,
                    code: 451,
                    text: None,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        Capture::new(&cfg).unwrap()
    }

    #[test]
    fn rates_one_and_zero_always_and_never_fail_others_repeat_with_the_seed() {
        let always = capture(1.0, 1);
        assert!((0..100).all(|_| always.fault(FaultStage::Rcpt).is_some()));
        assert!(always.fault(FaultStage::Mail).is_none(), "not configured");
        let never = capture(0.0, 1);
        assert!((0..100).all(|_| never.fault(FaultStage::Rcpt).is_none()));
        let draws = |c: &Capture| -> Vec<bool> {
            (0..200)
                .map(|_| c.fault(FaultStage::Rcpt).is_some())
                .collect()
        };
        let (a, b) = (draws(&capture(0.2, 7)), draws(&capture(0.2, 7)));
        assert_eq!(a, b, "the same seed, the same faults");
        let hits = a.iter().filter(|h| **h).count();
        assert!((20..=60).contains(&hits), "{hits} of 200 at rate 0.2");
        let r = always.fault(FaultStage::Rcpt).unwrap();
        assert_eq!(r.code, 451);
        assert!(r.to_string().contains("[capture.faults] rcpt"), "{r}");
    }
}
