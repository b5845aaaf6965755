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
