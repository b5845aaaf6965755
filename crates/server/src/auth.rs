//! Password checks shared by every protocol.
//!
//! [`login`] has four answers: the account, [`LoginError::Rejected`] (wrong credentials),
//! [`LoginError::Ambiguous`] (a bare user name that several accounts have) or
//! [`LoginError::Unavailable`] (the check could not be made now; the client should try again
//! later and the attempt is not counted as a failed login). Each protocol maps them in its one
//! error-to-reply place: SMTP `535 5.7.8` / `454 4.7.0` (RFC 4954 §6), POP3 `-ERR [AUTH]` /
//! `-ERR [SYS/TEMP]` (RFC 3206), IMAP `NO [AUTHENTICATIONFAILED]` / `NO [UNAVAILABLE]` (RFC
//! 5530); each says of an ambiguous name that the full address is needed.
//!
//! - **Short user names.** A name without `@` (`USER alice`, `a1 LOGIN alice pw`, AUTH PLAIN
//!   with `alice`) means the one account whose address has that local part, in whatever
//!   domain ([`account_named`]). When several accounts have it, the login fails without a
//!   password check, and the drivers that can say so ask for the full address; when none has
//!   it, it fails like an unknown address (after the same dummy verification).
//! - **Bounded work.** An argon2id verification costs 19 MiB and ~20 ms of CPU. They run on
//!   `limits.auth_workers` threads of their own ([`Pool`]; not tokio's blocking pool, which the
//!   store's reads use), each keeping its argon2 memory between checks
//!   ([`password::Verifier`]). At most `limits.auth_queue` checks wait for a thread, each at most
//!   `limits.auth_queue_timeout`; a login beyond that is `Unavailable` at once. Memory stays at
//!   `auth_workers` × 19 MiB whatever the number of clients.
//! - **Same cost for unknown users.** An unknown user is checked against a dummy hash, so a
//!   wrong password and an unknown address both cost one full verification and get the same
//!   answer; timing does not tell them apart.
//! - **A cache of successful checks** ([`VerifiedCache`], like Dovecot's auth cache): keyed by a
//!   keyed SHA-256 (random per-process key) of the normalized address and the password, it holds
//!   the account id and the password hash that the password matched, for
//!   `limits.auth_cache_ttl`. A hit still reads the account row and counts only when the row has
//!   the same id and the same hash: `mailroom user passwd`, `user remove` (from another process)
//!   or a changed `[[accounts]] password` invalidate it at once. Failures are never cached.
//! - **One check per distinct attempt at a time.** Logins presenting the same address and
//!   password while a check of them is under way wait for its answer instead of queueing their
//!   own (a client fleet reconnecting after a restart costs one verification per account).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mailroom_store::{password, Account, AccountId, Store};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash_password("mailroom-dummy-password").unwrap_or_default())
}

/// Why a login did not succeed, as [`login`] tells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password (the same answer for both): a failed login.
    #[error("wrong user name or password")]
    Rejected,
    /// A user name without `@` that several accounts have (in different domains): a failed
    /// login, answered before any password check; the client has to give the full address.
    #[error("the user name {name} is not unique here; log in with the full address")]
    Ambiguous { name: String },
    /// The check could not be made now (too many logins waiting, the wait timed out, or the
    /// store failed): a temporary failure, not counted as a failed login.
    #[error("password checks are temporarily unavailable")]
    Unavailable,
}

/// Checks `name`/`secret` (a full address, or a bare user name: see the module documentation).
pub async fn login(
    shared: &crate::Shared,
    name: &str,
    secret: &str,
) -> Result<Account, LoginError> {
    let outcome = shared.auth.check(&shared.store, name, secret).await;
    // Failures are counted where every protocol reports them, `note_failure`.
    if outcome.is_ok() {
        if let Some(kind) = crate::current_listener() {
            shared.metrics.login(kind, true);
        }
    }
    outcome
}

/// What a name given at login names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// Exactly one account.
    One(Account),
    /// No account.
    Nobody,
    /// A bare user name that these accounts (two or more, sorted) all have.
    Several(Vec<String>),
}

/// The account `name` names (blocking): a full address names its account (case-insensitive);
/// a name without `@` names the one account with that local part, in any domain.
pub fn account_named(store: &Store, name: &str) -> Result<Named, mailroom_store::StoreError> {
    let name = name.trim();
    if name.contains('@') {
        return Ok(store.find_account(name)?.map_or(Named::Nobody, Named::One));
    }
    let mut found = store.accounts_with_local_part(name)?;
    Ok(match found.len() {
        0 => Named::Nobody,
        1 => Named::One(found.remove(0)),
        _ => Named::Several(found.into_iter().map(|a| a.address).collect()),
    })
}

/// The full address a login name stands for: the account's address when `name` names exactly
/// one, else `name` as given (its login then fails with the right answer). For checks that
/// need the address before the password is checked (POP3 APOP's shared secret).
pub async fn full_address(shared: &crate::Shared, name: &str) -> String {
    let store = shared.store.clone();
    let lookup = name.to_string();
    match tokio::task::spawn_blocking(move || account_named(&store, &lookup)).await {
        Ok(Ok(Named::One(a))) => a.address,
        _ => name.to_string(),
    }
}

/// Keeps the argon2 memory of an idle password-checking thread for this long.
const IDLE_RELEASE: Duration = Duration::from_secs(60);

/// Successful checks remembered at most (oldest forgotten first).
pub const CACHE_ENTRIES: usize = 10_000;

type Key = [u8; 32];
type Outcome = Result<Account, LoginError>;

/// Password checking for one server: the thread pool, the cache of successful checks and the
/// checks under way.
pub struct Authenticator {
    pool: Arc<Pool>,
    cache: VerifiedCache,
    /// Checks under way, by cache key: later logins with the same key wait for the answer.
    inflight: Mutex<HashMap<Key, watch::Receiver<Option<Outcome>>>>,
    wait: Duration,
    overload: Overload,
}

impl Authenticator {
    /// Starts `limits.auth_workers` threads.
    pub fn new(limits: &crate::config::Limits) -> Authenticator {
        Authenticator {
            pool: Pool::start(limits.auth_workers, limits.auth_queue),
            cache: VerifiedCache::new(limits.auth_cache_ttl, CACHE_ENTRIES),
            inflight: Mutex::new(HashMap::new()),
            wait: limits.auth_queue_timeout,
            overload: Overload::default(),
        }
    }

    /// The cache of successful checks.
    pub fn cache(&self) -> &VerifiedCache {
        &self.cache
    }

    /// Full (argon2) verifications run so far.
    pub fn verifications(&self) -> u64 {
        self.pool.done.load(Ordering::Relaxed)
    }

    /// Checks `address`/`secret` against the store.
    pub async fn check(&self, store: &Store, address: &str, secret: &str) -> Outcome {
        let deadline = Instant::now() + self.wait;
        let key = self.cache.key(address, secret);
        loop {
            let role = {
                let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
                match map.get(&key) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        map.insert(key, rx);
                        Ok(tx)
                    }
                }
            };
            match role {
                Ok(tx) => {
                    // Removes the entry however this ends (a session dropped mid-check too).
                    let _inflight = Inflight {
                        map: &self.inflight,
                        key,
                    };
                    let outcome = self.check_once(store, address, secret, key, deadline).await;
                    let _ = tx.send(Some(outcome.clone()));
                    return outcome;
                }
                Err(mut rx) => {
                    let answer =
                        tokio::time::timeout_at(deadline.into(), rx.wait_for(|o| o.is_some()))
                            .await;
                    match answer {
                        Ok(Ok(outcome)) => {
                            if let Some(o) = (*outcome).clone() {
                                return o;
                            }
                        }
                        // The check was abandoned without an answer: make our own.
                        Ok(Err(_)) => continue,
                        Err(_) => {
                            self.overload.note("waited too long for the same check");
                            return Err(LoginError::Unavailable);
                        }
                    }
                }
            }
        }
    }

    async fn check_once(
        &self,
        store: &Store,
        address: &str,
        secret: &str,
        key: Key,
        deadline: Instant,
    ) -> Outcome {
        let account = {
            let store = store.clone();
            let name = address.to_string();
            match tokio::task::spawn_blocking(move || account_named(&store, &name)).await {
                Ok(Ok(Named::One(a))) => Some(a),
                Ok(Ok(Named::Nobody)) => None,
                // Before any password check: the answer does not depend on the password.
                Ok(Ok(Named::Several(_))) => {
                    return Err(LoginError::Ambiguous {
                        name: address.trim().to_string(),
                    })
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "account lookup failed");
                    return Err(LoginError::Unavailable);
                }
                Err(e) => {
                    tracing::error!(error = %e, "account lookup task failed");
                    return Err(LoginError::Unavailable);
                }
            }
        };
        match &account {
            Some(a) if self.cache.hit(&key, a, Instant::now()) => return Ok(a.clone()),
            Some(_) => {}
            None => self.cache.forget(&key),
        }
        // A wrong password and an unknown user cost the same: one full verification.
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password: secret.to_string(),
            hash,
            deadline,
            reply,
        };
        if !self.pool.submit(job) {
            self.overload
                .note("too many logins waiting (limits.auth_queue)");
            return Err(LoginError::Unavailable);
        }
        let matched = match tokio::time::timeout_at(deadline.into(), answer).await {
            Ok(Ok(m)) => m,
            // Dropped unanswered: the deadline passed before a thread took it.
            Ok(Err(_)) | Err(_) => {
                self.overload
                    .note("waited too long for a thread (limits.auth_queue_timeout)");
                return Err(LoginError::Unavailable);
            }
        };
        match account {
            Some(a) if matched => {
                self.cache.insert(key, &a, Instant::now());
                Ok(a)
            }
            _ => Err(LoginError::Rejected),
        }
    }
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        self.pool.close();
    }
}

/// Removes a check's entry from the map of checks under way.
struct Inflight<'a> {
    map: &'a Mutex<HashMap<Key, watch::Receiver<Option<Outcome>>>>,
    key: Key,
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// Counts temporary failures and logs them at most every ten seconds (a login storm must not
/// become a log storm).
#[derive(Default)]
struct Overload {
    refused: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl Overload {
    fn note(&self, why: &'static str) {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
            *last = Some(now);
            tracing::warn!(
                reason = why,
                temporary_failures_since_start = total,
                "password checks are overloaded: logins get a temporary failure (see limits.auth_workers, auth_queue)"
            );
        }
    }
}

/// One password verification for a worker thread.
struct Job {
    password: String,
    /// The account's hash; `None` for an unknown user (checked against the dummy hash).
    hash: Option<String>,
    /// Not started after this: its login has given up waiting.
    deadline: Instant,
    reply: oneshot::Sender<bool>,
}

/// Password-checking threads and their bounded queue.
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
    capacity: usize,
    /// Verifications run (for tests and diagnostics).
    done: AtomicU64,
}

struct PoolState {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Pool {
    fn start(workers: usize, capacity: usize) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
            done: AtomicU64::new(0),
        });
        for i in 0..workers.max(1) {
            let p = pool.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mailroom-auth-{i}"))
                .spawn(move || p.work());
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-checking thread");
            }
        }
        pool
    }

    /// Queues a job; false when the queue is full (or the pool closed).
    fn submit(&self, job: Job) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.closed || st.jobs.len() >= self.capacity {
            return false;
        }
        st.jobs.push_back(job);
        drop(st);
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_all();
    }

    /// A worker thread: takes jobs until the pool is closed.
    fn work(&self) {
        let mut verifier = password::Verifier::new();
        while let Some(job) = self.next_job(&mut verifier) {
            // Its login gave up (deadline passed, session gone): no work for nobody.
            if job.reply.is_closed() || Instant::now() >= job.deadline {
                continue;
            }
            let hash = job.hash.as_deref().unwrap_or_else(|| dummy_hash());
            let matched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                verifier.verify(&job.password, hash)
            }))
            .unwrap_or(false);
            self.done.fetch_add(1, Ordering::Relaxed);
            let _ = job.reply.send(matched && job.hash.is_some());
        }
    }

    /// The next job, waiting for one; `None` once the pool is closed. An idle worker gives its
    /// argon2 memory back.
    fn next_job(&self, verifier: &mut password::Verifier) -> Option<Job> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.closed {
                return None;
            }
            if let Some(job) = st.jobs.pop_front() {
                return Some(job);
            }
            let (guard, waited) = self
                .ready
                .wait_timeout(st, IDLE_RELEASE)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            if waited.timed_out() && st.jobs.is_empty() {
                verifier.release();
            }
        }
    }
}

/// What a successful check proved: `password` matched `password_hash`, the hash of `account`.
struct Verified {
    account: AccountId,
    password_hash: String,
    at: Instant,
}

/// Successful password checks, remembered for a while (see the module documentation). Never
/// holds a password: entries are keyed by a keyed hash of address and password.
pub struct VerifiedCache {
    secret: [u8; 32],
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<Key, Verified>>,
}

impl VerifiedCache {
    /// A cache that keeps entries for `ttl` (zero: keeps nothing), at most `max` of them.
    pub fn new(ttl: Duration, max: usize) -> VerifiedCache {
        VerifiedCache {
            secret: rand::random(),
            ttl,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The key of an address (normalized as the store does) and password: SHA-256 of the
    /// per-process secret and both, each length-prefixed.
    pub fn key(&self, address: &str, password: &str) -> Key {
        let address = address.trim().to_ascii_lowercase();
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((address.len() as u64).to_be_bytes());
        h.update(address.as_bytes());
        h.update((password.len() as u64).to_be_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// True when `key` was verified, within the TTL, against the same account with the same
    /// password hash as `current` (the row as it is now). A stale entry is dropped.
    pub fn hit(&self, key: &Key, current: &Account, now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(v) = map.get(key) else {
            return false;
        };
        let fresh = now.saturating_duration_since(v.at) < self.ttl;
        if fresh && v.account == current.id && v.password_hash == current.password_hash {
            return true;
        }
        map.remove(key);
        false
    }

    /// Remembers a successful check of `key` against `account`.
    pub fn insert(&self, key: Key, account: &Account, now: Instant) {
        if self.ttl.is_zero() || self.max == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max && !map.contains_key(&key) {
            map.retain(|_, v| now.saturating_duration_since(v.at) < self.ttl);
            if map.len() >= self.max {
                if let Some(oldest) = map.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            key,
            Verified {
                account: account.id,
                password_hash: account.password_hash.clone(),
                at: now,
            },
        );
    }

    /// Forgets `key` (its account is gone).
    pub fn forget(&self, key: &Key) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Entries held (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The delay before answering the n-th failed authentication of a connection (n from 1):
/// the base delay doubled per failure, capped at eight times the base.
pub fn failure_delay(base: std::time::Duration, failures: u32) -> std::time::Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(3);
    base * factor
}

/// Addresses remembered at most (oldest forgotten first): bounds the memory an attacker with
/// many addresses can make the server use.
const MAX_TRACKED: usize = 10_000;

/// Recent authentication failures per client address, across connections and protocols, so
/// that opening a new connection does not reset the delay (the per-address dimension).
///
/// Where the store is shared by several nodes (PostgreSQL, [`MailStore::is_shared`]), the
/// count lives in the store ([`MailStore::auth_failure_record`]: one upsert per failure), so
/// guesses spread over the nodes add up as on one node; if the store cannot be reached the
/// node counts in memory meanwhile. A store of one server (SQLite) keeps the count in this
/// process's memory: no disk write per failed login.
///
/// [`MailStore::is_shared`]: mailroom_store::MailStore::is_shared
/// [`MailStore::auth_failure_record`]: mailroom_store::MailStore::auth_failure_record
pub struct FailureTracker {
    map: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
    /// How long a failure counts against its address (`limits.auth_failure_window`); zero
    /// turns the per-address count off.
    window: std::time::Duration,
    /// The shared store that keeps the count, if the store is shared.
    shared: Option<Store>,
}

impl FailureTracker {
    /// A tracker that counts in memory.
    pub fn new(window: std::time::Duration) -> Self {
        FailureTracker {
            map: Default::default(),
            window,
            shared: None,
        }
    }

    /// A tracker for a server on `store`: the count is kept in the store when the store is
    /// shared by several nodes, in memory otherwise.
    pub fn for_store(window: std::time::Duration, store: &Store) -> Self {
        FailureTracker {
            shared: store.is_shared().then(|| store.clone()),
            ..FailureTracker::new(window)
        }
    }

    /// Whether the count is kept in a shared store.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Records one failure from `ip` and returns how many it has within the window.
    pub async fn record(&self, ip: std::net::IpAddr) -> u32 {
        if self.window.is_zero() {
            return 1;
        }
        if let Some(store) = &self.shared {
            let (store, window) = (store.clone(), self.window_ms());
            let key = ip.to_string();
            match tokio::task::spawn_blocking(move || store.auth_failure_record(&key, window)).await
            {
                Ok(Ok(Some(n))) => return n,
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot count a failed login in the shared store; counting it on this node only")
                }
                Err(e) => tracing::warn!(error = %e, "failed-login count task failed"),
            }
        }
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

    /// Failures of `ip` within the window (0 when none): the store's count where it is
    /// shared (or this node's, whichever is larger, while the store could not be reached).
    pub async fn count(&self, ip: std::net::IpAddr) -> u32 {
        if self.window.is_zero() {
            return 0;
        }
        let local = self.count_local(ip);
        if let Some(store) = &self.shared {
            let (store, window) = (store.clone(), self.window_ms());
            let key = ip.to_string();
            match tokio::task::spawn_blocking(move || store.auth_failure_count(&key, window)).await
            {
                Ok(Ok(Some(n))) => return n.max(local),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the failed-login count of the shared store; using this node's")
                }
                Err(e) => tracing::warn!(error = %e, "failed-login count task failed"),
            }
        }
        local
    }

    fn count_local(&self, ip: std::net::IpAddr) -> u32 {
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
pub async fn note_failure(
    shared: &crate::Shared,
    proto: &str,
    peer: std::net::SocketAddr,
    user: &str,
    conn_failures: u32,
) -> std::time::Duration {
    let per_ip = shared.auth_failures.record(peer.ip()).await;
    if let Some(kind) = crate::current_listener() {
        shared.metrics.login(kind, false);
    }
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

    fn account(id: i64, hash: &str) -> Account {
        Account {
            id: AccountId(id),
            address: "alice@example.test".into(),
            password_hash: hash.into(),
            quota: None,
        }
    }

    #[test]
    fn cache_hits_only_the_same_account_with_the_same_hash() {
        let c = VerifiedCache::new(Duration::from_secs(3600), 100);
        let now = Instant::now();
        let k = c.key("alice@example.test", "secret");
        assert!(!c.hit(&k, &account(1, "h1"), now), "empty");
        c.insert(k, &account(1, "h1"), now);
        assert!(c.hit(&k, &account(1, "h1"), now));
        // The same address spelled otherwise is the same entry; another password is not.
        assert_eq!(c.key(" Alice@Example.TEST", "secret"), k);
        assert_ne!(c.key("alice@example.test", "Secret"), k);
        assert_ne!(
            c.key("alice@example.tes", "tsecret"),
            k,
            "fields are length-prefixed"
        );
        // Another process's key never matches (random per cache).
        assert_ne!(
            VerifiedCache::new(Duration::from_secs(1), 1).key("alice@example.test", "secret"),
            k
        );
        // The password changed (`mailroom user passwd`): the entry is dropped for good.
        assert!(!c.hit(&k, &account(1, "h2"), now));
        assert!(
            !c.hit(&k, &account(1, "h1"), now),
            "a stale entry is dropped"
        );
        assert!(c.is_empty());
        // Removed and created again with the same address and hash: another id, no hit.
        c.insert(k, &account(1, "h1"), now);
        assert!(!c.hit(&k, &account(2, "h1"), now));
        c.insert(k, &account(1, "h1"), now);
        c.forget(&k);
        assert!(!c.hit(&k, &account(1, "h1"), now));
    }

    #[test]
    fn cache_entries_expire() {
        let ttl = Duration::from_secs(60);
        let c = VerifiedCache::new(ttl, 100);
        let now = Instant::now();
        let k = c.key("alice@example.test", "secret");
        c.insert(k, &account(1, "h"), now);
        assert!(c.hit(&k, &account(1, "h"), now + ttl - Duration::from_millis(1)));
        assert!(!c.hit(&k, &account(1, "h"), now + ttl));
        assert!(c.is_empty());
        // A zero TTL keeps nothing.
        let off = VerifiedCache::new(Duration::ZERO, 100);
        off.insert(k, &account(1, "h"), now);
        assert!(off.is_empty());
        assert!(!off.hit(&k, &account(1, "h"), now));
    }

    #[test]
    fn cache_is_bounded_and_forgets_the_oldest() {
        let ttl = Duration::from_secs(60);
        let c = VerifiedCache::new(ttl, 3);
        let t0 = Instant::now();
        let keys: Vec<Key> = (0..5)
            .map(|i| c.key(&format!("u{i}@example.test"), "pw"))
            .collect();
        for (i, k) in keys.iter().take(3).enumerate() {
            c.insert(
                *k,
                &account(i as i64, "h"),
                t0 + Duration::from_secs(i as u64),
            );
        }
        c.insert(keys[3], &account(3, "h"), t0 + Duration::from_secs(3));
        assert_eq!(c.len(), 3);
        assert!(!c.hit(&keys[0], &account(0, "h"), t0 + Duration::from_secs(3)));
        assert!(c.hit(&keys[1], &account(1, "h"), t0 + Duration::from_secs(3)));
        // Expired entries go first, however many (those of t0+1 and t0+2 here).
        c.insert(keys[4], &account(4, "h"), t0 + ttl + Duration::from_secs(2));
        assert_eq!(c.len(), 2);
        assert!(c.hit(
            &keys[3],
            &account(3, "h"),
            t0 + ttl + Duration::from_secs(2)
        ));
    }

    /// A store in a fresh directory with alice (password "secret").
    fn store_with_alice() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store: Store =
            std::sync::Arc::new(mailroom_store::sqlite::SqliteStore::open(dir.path()).unwrap());
        let hash = password::hash_password("secret").unwrap();
        store.add_account("alice@example.test", &hash).unwrap();
        (dir, store)
    }

    fn authenticator(workers: usize, queue: usize, wait: Duration) -> Authenticator {
        let limits = crate::config::Limits {
            auth_workers: workers,
            auth_queue: queue,
            auth_queue_timeout: wait,
            ..Default::default()
        };
        Authenticator::new(&limits)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_logins_skip_argon2_and_failures_never_do() {
        let (_dir, store) = store_with_alice();
        let a = authenticator(2, 16, Duration::from_secs(10));
        let ok = a.check(&store, "alice@example.test", "secret").await;
        assert_eq!(ok.map(|a| a.address), Ok("alice@example.test".to_string()));
        assert_eq!(a.verifications(), 1);
        for _ in 0..3 {
            assert!(a
                .check(&store, "ALICE@example.test", "secret")
                .await
                .is_ok());
        }
        assert_eq!(a.verifications(), 1, "cache hits");
        // Wrong passwords and unknown users each cost one full verification, every time.
        for _ in 0..2 {
            let r = a.check(&store, "alice@example.test", "wrong").await;
            assert_eq!(r, Err(LoginError::Rejected));
            let r = a.check(&store, "nobody@example.test", "secret").await;
            assert_eq!(r, Err(LoginError::Rejected));
        }
        assert_eq!(a.verifications(), 5);
        assert_eq!(a.cache().len(), 1, "failures are not cached");

        // A new password (`mailroom user passwd`): the cached old one fails at once.
        let new_hash = password::hash_password("n3w").unwrap();
        store.set_password("alice@example.test", &new_hash).unwrap();
        let r = a.check(&store, "alice@example.test", "secret").await;
        assert_eq!(r, Err(LoginError::Rejected));
        assert!(a.check(&store, "alice@example.test", "n3w").await.is_ok());
        assert!(a.check(&store, "alice@example.test", "n3w").await.is_ok());
        assert_eq!(a.verifications(), 7);
        // Removed: the cached login fails.
        store.remove_account("alice@example.test").unwrap();
        let r = a.check(&store, "alice@example.test", "n3w").await;
        assert_eq!(r, Err(LoginError::Rejected));
        assert!(a.cache().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn short_user_names_mean_the_one_account_that_has_them() {
        let (_dir, store) = store_with_alice();
        let a = authenticator(2, 16, Duration::from_secs(10));
        // One account called alice, whatever the domains: the bare name is enough.
        let ok = a.check(&store, "alice", "secret").await;
        assert_eq!(ok.map(|a| a.address), Ok("alice@example.test".to_string()));
        assert_eq!(
            a.check(&store, " Alice ", "wrong").await,
            Err(LoginError::Rejected)
        );
        // Nobody by that name: the same answer (and cost) as a wrong password.
        let before = a.verifications();
        assert_eq!(
            a.check(&store, "nobody", "secret").await,
            Err(LoginError::Rejected)
        );
        assert_eq!(
            a.check(&store, "", "secret").await,
            Err(LoginError::Rejected)
        );
        assert_eq!(a.verifications(), before + 2);
        // A second alice in another domain: the bare name is ambiguous, whatever the password
        // (no verification), and the full addresses still work.
        let hash = password::hash_password("other").unwrap();
        store.add_account("alice@school.test", &hash).unwrap();
        let before = a.verifications();
        for pw in ["secret", "other", "wrong"] {
            assert_eq!(
                a.check(&store, "alice", pw).await,
                Err(LoginError::Ambiguous {
                    name: "alice".into()
                })
            );
        }
        assert_eq!(a.verifications(), before, "no password checked");
        assert!(a
            .check(&store, "alice@example.test", "secret")
            .await
            .is_ok());
        assert!(a.check(&store, "alice@school.test", "other").await.is_ok());
        assert_eq!(
            account_named(&store, "ALICE").unwrap(),
            Named::Several(vec![
                "alice@example.test".into(),
                "alice@school.test".into()
            ])
        );
        assert_eq!(account_named(&store, "bob").unwrap(), Named::Nobody);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_a_temporary_failure() {
        let (_dir, store) = store_with_alice();
        let a = std::sync::Arc::new(authenticator(1, 1, Duration::from_secs(10)));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (a, store) = (a.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                a.check(&store, "alice@example.test", &format!("wrong{i}"))
                    .await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let unavailable = results
            .iter()
            .filter(|r| **r == Err(LoginError::Unavailable))
            .count();
        let rejected = results
            .iter()
            .filter(|r| **r == Err(LoginError::Rejected))
            .count();
        assert!(unavailable >= 1, "{results:?}");
        assert!(rejected >= 1, "{results:?}");
        assert_eq!(unavailable + rejected, 12, "{results:?}");
        // The storm is over: a correct login works.
        assert!(a
            .check(&store, "alice@example.test", "secret")
            .await
            .is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_waits_only_until_its_deadline() {
        let (_dir, store) = store_with_alice();
        let a = std::sync::Arc::new(authenticator(1, 100, Duration::from_millis(30)));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (a, store) = (a.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                a.check(&store, "alice@example.test", &format!("wrong{i}"))
                    .await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert!(
            results.contains(&Err(LoginError::Unavailable)),
            "{results:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // Jobs whose login gave up are skipped, not verified.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(a.verifications() < 8, "{}", a.verifications());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_login_at_once_costs_one_verification() {
        let (_dir, store) = store_with_alice();
        // One thread, one queue place: 40 separate checks could not all be made.
        let a = std::sync::Arc::new(authenticator(1, 1, Duration::from_secs(10)));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (a, store) = (a.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                a.check(&store, "alice@example.test", "secret").await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(a.verifications(), 1);
    }

    #[tokio::test]
    async fn a_zero_window_counts_nothing_per_address() {
        let t = FailureTracker::new(Duration::ZERO);
        let a: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.record(a).await, 1);
        assert_eq!(t.record(a).await, 1);
        assert_eq!(t.count(a).await, 0);
    }

    #[tokio::test]
    async fn a_store_of_one_server_leaves_the_count_in_memory() {
        let (_dir, store) = store_with_alice();
        let t = FailureTracker::for_store(Duration::from_secs(60), &store);
        assert!(!t.is_shared());
        let a: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.record(a).await, 1);
        assert_eq!(t.record(a).await, 2);
        assert_eq!(t.count(a).await, 2);
        assert_eq!(t.count("127.0.0.3".parse().unwrap()).await, 0);
    }
}
