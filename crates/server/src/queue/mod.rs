//! The outbound queue: delivers mail for other domains, retries, bounces.
//!
//! # How mail leaves
//! The runner wakes when a message is queued, when a delivery finishes, or every second
//! (which also picks up `mailroom queue flush` from another process). Each round reads the
//! due recipients from the store, groups them by destination (recipients of one message for
//! the same destination share one SMTP transaction: a *job*), claims them in the store in one
//! commit (a lease, so no job is started twice) and appends the jobs to that destination's
//! backlog in memory. Each destination is served by up to `queue.per_destination`
//! connections (and the whole queue by up to `queue.workers`): a connection task takes jobs
//! from the backlog one after another over the same SMTP session until the backlog is
//! empty, then parks the session in the pool of idle sessions.
//!
//! Mail a session of this node queues skips the first round: the session claims it in the
//! commit that stores it and hands it to the runner with its octets ([`Handoffs`]), which
//! puts it in its destination's backlog at once — no read of the queue, no claim commit and
//! no read of the message. Past [`HELD_MAX`] jobs held in memory, sessions stop claiming and
//! rounds take the rest.
//!
//! # Claims
//! A claim is a lease in the store: the recipient's `lease` column holds the time it ends,
//! and only the attempt holding that exact value records a result. A round claims for
//! `queue.claim_lease` (5 minutes by default); the runner renews the claims of every job
//! still waiting in a backlog every fifth of that, in one commit. An attempt must hold its
//! claim until its result is recorded: a connection task that takes a job whose claim lasts
//! the attempt's budget and a margin starts at once; one whose claim has a few seconds or
//! more left also starts at once and renews the claim (to now + the attempt budget + the
//! margin) only if the attempt is still running after a quarter of that time — most
//! attempts take milliseconds, so relaying a message costs no store write for its claim —
//! and stops the attempt, while the old claim still holds, if that renewal fails; a claim
//! with less left is renewed before the attempt. The job carries the claim's current value.
//! A claim that could not be renewed (it expired and another node took it, or the store
//! failed) drops its job unsent: the holder of the claim, or a later round once it expires,
//! sends it, so nothing is sent by two claims at once and nothing is left unsent. A node
//! that dies leaves its claims to expire: after `queue.claim_lease` at most for waiting jobs
//! and for attempts that had not yet renewed, after the attempt's budget for the ones that
//! had; another node on the same PostgreSQL store then takes them (a SQLite store releases
//! all claims at start-up).
//!
//! # Connection reuse
//! Several messages go over one session (RFC 5321 §3.3 allows any number of transactions):
//! each transaction after the first opens with RSET (§4.1.1.5), sent in the same write as
//! MAIL, RCPT and DATA when the peer offers PIPELINING (RFC 2920 §3.1), so reuse costs no
//! round trip. An idle session is kept for `queue.idle_session_timeout` and carries at most
//! `queue.messages_per_session` messages; an idle session holds its destination's slot, and
//! so does a closing one until its QUIT is answered, so `per_destination` bounds busy, idle
//! and closing connections together. A pooled session that the
//! peer closed (or that answers 4xx to RSET or MAIL) fails before the message could have been
//! taken: the job goes again at once over a new session and no failure is counted.
//!
//! # Outcomes
//! Per recipient (RFC 5321 §4.2.5, §4.5.4.1):
//! - 2xx after DATA → delivered;
//! - 5xx to MAIL, RCPT or DATA → failed: a DSN goes to the sender (not for `<>`);
//! - 4xx, connection refused, timeout, DNS failure → retried after `queue.retry[n]`, the last
//!   step repeating, until `queue.max_age`, then failed and bounced.
//!
//! # Durability
//! A job's results and its bounce are written in one commit: a crash can neither lose a bounce
//! nor send it twice. The commit is started as soon as the peer's reply is in, while the
//! session goes on with the next job, so the results of many jobs (of all connections) share
//! one group commit; results without a bounce go to the store's writer without a blocking
//! thread waiting for them (`MailStore::queue_update_async`). A message leaves the queue
//! only in the commit that records its last recipient as finished; a crash before that
//! commit sends it again after the restart (at least once, never zero times: RFC 5321 §6.1).

pub mod bounce;
pub mod route;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailroom_client::smtp::{SmtpClient, SmtpReply};
use mailroom_client::ClientTls;
use mailroom_client::{Direction, TraceFn};
use mailroom_store::{now_unix, Delivery, Outbound, QueueEntry, QueueRecipient, RecipientUpdate};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::config::TlsMode;
use crate::delivery::{self, Route, Target};
use crate::Shared;
use bounce::Failure;
use route::Destination;

/// How often the runner looks for due mail when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);
/// Seconds a claim outlasts the attempt it covers: time to record the result after the
/// attempt was cut off at its budget (one group commit, even on a busy store).
const CLAIM_MARGIN: i64 = 60;
/// Claims on jobs waiting in a backlog are renewed every `queue.claim_lease / RENEW_PARTS`:
/// four renewals may fail or come late (a store briefly unavailable, a stalled runtime)
/// before a claim the node still holds in memory expires.
const RENEW_PARTS: u32 = 5;
/// A claim with at least this many seconds left when its job is taken is renewed only if the
/// attempt outlives a quarter of them (see `Runner::renewal_for`); one with less is renewed
/// before the attempt starts.
const RENEW_IN_ATTEMPT_FROM: i64 = 4;
/// The least time between two rounds.
const ROUND_GAP: Duration = Duration::from_millis(20);
/// Entries read from the store per round.
const BATCH: usize = 500;
/// Jobs waiting in memory per connection a destination may have: enough to keep every session
/// busy between rounds, few enough that one node does not hold (and renew claims on) mail
/// that another node's free connections could send.
const BACKLOG_PER_CONNECTION: usize = 64;

/// Jobs in the backlogs and handed over but not yet taken, beyond which sessions stop
/// claiming what they queue (it then waits for a round, unclaimed).
const HELD_MAX: usize = 2048;
/// A message up to this size is handed over with its octets; a larger one is read from the
/// store when its turn comes.
const CARRY_MAX: usize = 64 * 1024;

/// A message a session of this node queued and claimed in the same commit, for this node's
/// runner.
pub struct Handoff {
    /// The entry as stored, its recipients with their ids.
    pub entry: QueueEntry,
    /// The claim the commit set ([`mailroom_store::Outbound::claim_until`]).
    pub lease: i64,
    pub message: Option<Arc<[u8]>>,
}

/// The way from the sessions that queue mail to this node's runner: a session claims what it
/// queues in the commit that stores it and hands it over, so the runner sends it without a
/// read of the queue, a claim commit or (up to [`CARRY_MAX`]) a read of the message.
#[derive(Default)]
pub struct Handoffs {
    /// Set once the runner is running (its start-up releases the claims of the last run);
    /// nothing is claimed before.
    ready: AtomicBool,
    /// Jobs the backlogs held at the runner's last look.
    held: AtomicUsize,
    waiting: Mutex<Vec<Handoff>>,
}

impl Handoffs {
    /// The claim a session sets on a message it queues now: now + `queue.claim_lease` while
    /// the runner runs and holds fewer than [`HELD_MAX`] jobs, else 0 (no claim: the message
    /// waits for a round).
    pub fn claim_until(&self, config: &crate::config::Config) -> i64 {
        let held = self.held.load(Ordering::Relaxed) + lock(&self.waiting).len();
        if self.ready.load(Ordering::Acquire) && held < HELD_MAX {
            now_unix() + config.queue.claim_lease.as_secs() as i64
        } else {
            0
        }
    }

    /// The octets to hand over with a message of this size (None: the runner reads it).
    pub fn carry(message: &[u8]) -> Option<Arc<[u8]>> {
        (message.len() <= CARRY_MAX).then(|| Arc::from(message))
    }

    /// Hands a claimed message to the runner (the session then wakes it).
    pub fn push(&self, h: Handoff) {
        lock(&self.waiting).push(h);
    }

    fn take(&self) -> Vec<Handoff> {
        std::mem::take(&mut *lock(&self.waiting))
    }
}

/// The result of one attempt for one recipient.
#[derive(Debug, Clone)]
enum Outcome {
    Delivered,
    Transient {
        diagnostic: String,
        host: Option<String>,
    },
    Permanent {
        diagnostic: String,
        status: String,
        host: Option<String>,
    },
}

/// One message's recipients for one destination, claimed until `lease` (the value the store
/// holds: renewing a claim changes it, and only the current value records a result).
struct Job {
    entry: QueueEntry,
    rcpts: Vec<QueueRecipient>,
    lease: i64,
    /// The message, when the session that queued it handed it over (else read from the store).
    message: Option<Arc<[u8]>>,
}

/// Whether a job's claim is renewed for its attempt: not at all (it lasts long enough),
/// before the attempt starts, or only if the attempt is still running after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    None,
    Before,
    During(Duration),
}

/// A destination's jobs waiting for a connection, and how many connection tasks serve it.
struct Backlog {
    dest: Destination,
    jobs: VecDeque<Job>,
    active: usize,
}

/// An open SMTP session to a destination.
struct Session {
    client: SmtpClient,
    /// "host:port" it is connected to.
    server: String,
    /// Transactions it has carried.
    messages: usize,
}

/// A session waiting in the pool, with the destination slot it holds.
struct Idle {
    session: Session,
    slot: OwnedSemaphorePermit,
    since: Instant,
}

struct Runner {
    shared: Arc<Shared>,
    /// Connection slots per destination key (`queue.per_destination` each).
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    workers: Arc<Semaphore>,
    /// Jobs per destination key. Lock order: `backlogs`, then `idle`.
    backlogs: Mutex<HashMap<String, Backlog>>,
    /// Idle sessions per destination key, the most recently used last.
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    /// Held for reading by a connection task from taking a job out of a backlog until its
    /// claim is renewed for the attempt, for writing by the renewal of the backlogs' claims:
    /// a job's lease in memory is always the one the store holds (else the other renewal,
    /// carrying the old value, would renew nothing and drop the job).
    renewing: tokio::sync::RwLock<()>,
}

/// Starts the queue runner; it stops when `shutdown` becomes true.
pub fn spawn(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let workers = Arc::new(Semaphore::new(shared.config.queue.workers));
    let runner = Arc::new(Runner {
        shared,
        destinations: Mutex::new(HashMap::new()),
        workers,
        backlogs: Mutex::new(HashMap::new()),
        idle: Mutex::new(HashMap::new()),
        renewing: tokio::sync::RwLock::new(()),
    });
    let renew_every = runner.shared.config.queue.claim_lease / RENEW_PARTS;
    let span = tracing::Span::current();
    tokio::spawn(
        async move {
            // Claims left by a previous run were held by attempts that died with it.
            let store = runner.shared.store.clone();
            match tokio::task::spawn_blocking(move || store.queue_release_claims()).await {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(
                        recipients = n,
                        "released the claims of attempts interrupted by the last stop"
                    )
                }
                Ok(Err(e)) => tracing::error!(error = %e, "releasing old queue claims failed"),
                _ => {}
            }
            runner
                .shared
                .queue_handoffs
                .ready
                .store(true, Ordering::Release);
            let mut renewed_at = Instant::now();
            loop {
                if *shutdown.borrow() {
                    break;
                }
                if renewed_at.elapsed() >= renew_every {
                    renewed_at = Instant::now();
                    runner.renew_backlogs().await;
                }
                runner.close_expired_sessions();
                let started = tokio::time::Instant::now();
                runner.clone().round().await;
                // Every accepted message wakes the runner; reading the queue for each one
                // took CPU from the sessions accepting them. Rounds are at least ROUND_GAP
                // apart, and one round takes all that came meanwhile.
                tokio::time::sleep_until(started + ROUND_GAP).await;
                let notify = runner.shared.queue_notify.clone();
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = notify.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
            runner.close_all_sessions();
        }
        .instrument(span),
    );
}

/// Locks a mutex, also one a panicking task left poisoned (the maps stay consistent: every
/// change to them is a single insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runner {
    /// How long one job may take in all (connects, EHLO, STARTTLS, the transaction); it is
    /// cut off after this, so it always records its result while its claim holds.
    fn attempt_budget(&self) -> Duration {
        let q = &self.shared.config.queue;
        q.connect_timeout * 2 + q.command_timeout * 8
    }

    /// One round: take what sessions handed over ([`Handoffs`]), then read the due recipients
    /// (longest-due first, none that a job holds), make
    /// one job per (entry, destination) while the destination's backlog has room, claim their
    /// recipients in the store in one commit, queue the jobs and start connections for them.
    /// What finds no room stays due for a later round, unclaimed, so a slow destination holds
    /// only its own slots and never the rest of the queue.
    async fn round(self: Arc<Self>) {
        self.take_handoffs();
        self.clone().round_from_store().await;
        self.count_held();
    }

    /// The part of a round that reads the store (see [`Runner::round`]).
    async fn round_from_store(self: Arc<Self>) {
        if self.workers.available_permits() == 0 {
            return;
        }
        let store = self.shared.store.clone();
        let now = now_unix();
        let due = match tokio::task::spawn_blocking(move || store.queue_due(now, BATCH)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "reading the queue failed");
                return;
            }
            Err(_) => return,
        };
        if due.is_empty() {
            return;
        }
        let per = self.shared.config.queue.per_destination;
        let room_of = |key: &str| {
            let waiting = lock(&self.backlogs).get(key).map_or(0, |b| b.jobs.len());
            (per * BACKLOG_PER_CONNECTION).saturating_sub(waiting)
        };
        let mut rooms: HashMap<String, usize> = HashMap::new();
        let mut planned: Vec<(String, Destination, QueueEntry, Vec<QueueRecipient>)> = Vec::new();
        for entry in due {
            for (key, dest, rcpts) in self.by_destination(&entry.recipients, now) {
                let room = rooms.entry(key.clone()).or_insert_with(|| room_of(&key));
                if *room == 0 {
                    continue;
                }
                *room -= 1;
                let entry = QueueEntry {
                    recipients: Vec::new(),
                    ..entry.clone()
                };
                planned.push((key, dest, entry, rcpts));
            }
        }
        if planned.is_empty() {
            return;
        }
        // The claim: only recipients still pending, due and unclaimed are taken, in the same
        // statement that marks them, so no job is started twice. It is short
        // (`queue.claim_lease`) and renewed while the job waits in the backlog, then once more
        // for the attempt when a connection takes the job: a node that dies leaves its claims
        // to expire soon, for another node to take.
        let lease = now + self.shared.config.queue.claim_lease.as_secs() as i64;
        let ids: Vec<i64> = planned
            .iter()
            .flat_map(|p| p.3.iter().map(|r| r.id))
            .collect();
        let store = self.shared.store.clone();
        let claimed: HashSet<i64> =
            match tokio::task::spawn_blocking(move || store.queue_claim(&ids, now, lease)).await {
                Ok(Ok(c)) => c.into_iter().collect(),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "claiming queued recipients failed");
                    return;
                }
                Err(_) => return,
            };
        let mut keys = Vec::new();
        {
            let mut backlogs = lock(&self.backlogs);
            for (key, dest, entry, mut rcpts) in planned {
                rcpts.retain(|r| claimed.contains(&r.id));
                if rcpts.is_empty() {
                    continue;
                }
                let b = backlogs.entry(key.clone()).or_insert_with(|| Backlog {
                    dest,
                    jobs: VecDeque::new(),
                    active: 0,
                });
                b.jobs.push_back(Job {
                    entry,
                    rcpts,
                    lease,
                    message: None,
                });
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        for key in keys {
            self.clone().start_connections(&key);
        }
    }

    /// The recipients pending and due at `now`, grouped by destination (one job each).
    fn by_destination(
        &self,
        recipients: &[QueueRecipient],
        now: i64,
    ) -> Vec<(String, Destination, Vec<QueueRecipient>)> {
        let mut groups: Vec<(String, Destination, Vec<QueueRecipient>)> = Vec::new();
        for r in recipients {
            if r.status != "pending" || r.next_attempt > now {
                continue;
            }
            let dest = route::choose(
                &self.shared.config,
                &mailroom_store::domain_of(&r.recipient),
            );
            let key = dest.key();
            match groups.iter_mut().find(|(k, _, _)| *k == key) {
                Some(g) => g.2.push(r.clone()),
                None => groups.push((key, dest, vec![r.clone()])),
            }
        }
        groups
    }

    /// Takes the messages sessions queued and claimed for this runner ([`Handoffs`]) into the
    /// backlogs, and starts connections for them: no read of the queue, no claim and (for a
    /// message carried along) no read of the message.
    fn take_handoffs(self: &Arc<Self>) {
        let handed = self.shared.queue_handoffs.take();
        if handed.is_empty() {
            return;
        }
        let now = now_unix();
        let mut keys: Vec<String> = Vec::new();
        {
            let mut backlogs = lock(&self.backlogs);
            for h in handed {
                for (key, dest, rcpts) in self.by_destination(&h.entry.recipients, now) {
                    let b = backlogs.entry(key.clone()).or_insert_with(|| Backlog {
                        dest,
                        jobs: VecDeque::new(),
                        active: 0,
                    });
                    b.jobs.push_back(Job {
                        entry: QueueEntry {
                            recipients: Vec::new(),
                            ..h.entry.clone()
                        },
                        rcpts,
                        lease: h.lease,
                        message: h.message.clone(),
                    });
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
        for key in keys {
            self.clone().start_connections(&key);
        }
    }

    /// Tells sessions how many jobs the backlogs hold (see [`Handoffs::claim_until`]).
    fn count_held(&self) {
        let held = lock(&self.backlogs).values().map(|b| b.jobs.len()).sum();
        self.shared
            .queue_handoffs
            .held
            .store(held, Ordering::Relaxed);
    }

    /// Renews the claims of every job waiting in a backlog to now + `queue.claim_lease`, in one
    /// commit. A job whose claim was not renewed (it expired and another claim took it, or
    /// the store failed) is dropped from the backlog unsent: whoever holds the claim now, or
    /// a later round once it expires, delivers it.
    async fn renew_backlogs(&self) {
        let _renewing = self.renewing.write().await;
        let claims: Vec<(i64, i64)> = lock(&self.backlogs)
            .values()
            .flat_map(|b| b.jobs.iter())
            .flat_map(|j| j.rcpts.iter().map(|r| (r.id, j.lease)))
            .collect();
        if claims.is_empty() {
            return;
        }
        let until = now_unix() + self.shared.config.queue.claim_lease.as_secs() as i64;
        let store = self.shared.store.clone();
        let asked: HashSet<i64> = claims.iter().map(|c| c.0).collect();
        let renewed: HashSet<i64> = match tokio::task::spawn_blocking(move || {
            store.queue_renew(&claims, until)
        })
        .await
        {
            Ok(Ok(r)) => r.into_iter().collect(),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "renewing queue claims failed; the jobs go back to the queue");
                HashSet::new()
            }
            Err(_) => HashSet::new(),
        };
        // No job left a backlog meanwhile (connections take jobs under the read lock); jobs a
        // round added meanwhile hold none of the recipients asked about and are left as they are.
        let mut dropped = 0usize;
        let mut backlogs = lock(&self.backlogs);
        for b in backlogs.values_mut() {
            b.jobs.retain_mut(|j| {
                if !j.rcpts.iter().any(|r| asked.contains(&r.id)) {
                    return true;
                }
                let before = j.rcpts.len();
                j.rcpts.retain(|r| renewed.contains(&r.id));
                dropped += before - j.rcpts.len();
                j.lease = until;
                !j.rcpts.is_empty()
            });
        }
        backlogs.retain(|_, b| b.active > 0 || !b.jobs.is_empty());
        if dropped > 0 {
            tracing::warn!(
                recipients = dropped,
                "queue claims no longer held were dropped from the backlog"
            );
        }
    }

    /// When a job just taken from its backlog must have its claim renewed for the attempt.
    /// The attempt needs the claim for its budget and CLAIM_MARGIN to record the result
    /// (now + both, the renewed value); a claim with that much left needs nothing. Else, when
    /// the claim has more than RENEW_IN_ATTEMPT_FROM left, the attempt starts at once and the
    /// claim is renewed only if the attempt is still running after a quarter of that time
    /// (most attempts take milliseconds: no store write); a claim with less is renewed first.
    fn renewal_for(&self, job: &Job) -> Renewal {
        let left = job.lease - now_unix();
        let needed = self.attempt_budget().as_secs() as i64 + CLAIM_MARGIN;
        if left >= needed {
            Renewal::None
        } else if left >= RENEW_IN_ATTEMPT_FROM {
            Renewal::During(Duration::from_secs((left / 4) as u64))
        } else {
            Renewal::Before
        }
    }

    /// Renews the job's claim for the attempt: now + the attempt budget + CLAIM_MARGIN, so the
    /// claim outlasts the attempt (cut off at the budget) and the recording of its result.
    /// Recipients whose claim was not renewed are dropped (another claim holds them); false
    /// when none is left.
    async fn renew_claim(&self, job: &mut Job) -> bool {
        let budget = self.attempt_budget().as_secs() as i64;
        let until = now_unix() + budget + CLAIM_MARGIN;
        let claims: Vec<(i64, i64)> = job.rcpts.iter().map(|r| (r.id, job.lease)).collect();
        let store = self.shared.store.clone();
        let renewed: HashSet<i64> = match tokio::task::spawn_blocking(move || {
            store.queue_renew(&claims, until)
        })
        .await
        {
            Ok(Ok(r)) => r.into_iter().collect(),
            Ok(Err(e)) => {
                tracing::error!(queue_id = job.entry.id.0, error = %e, "renewing a queue claim failed; the job goes back to the queue");
                return false;
            }
            Err(_) => return false,
        };
        let before = job.rcpts.len();
        job.rcpts.retain(|r| renewed.contains(&r.id));
        if job.rcpts.len() < before {
            tracing::warn!(
                queue_id = job.entry.id.0,
                recipients = before - job.rcpts.len(),
                "queue claims no longer held; left to the claim that holds them"
            );
        }
        job.lease = until;
        !job.rcpts.is_empty()
    }

    /// Starts connection tasks for a destination's backlog: one per waiting job at most,
    /// while a worker and a destination slot (an idle session's, or a free one) are to be had.
    fn start_connections(self: Arc<Self>, key: &str) {
        loop {
            let mut backlogs = lock(&self.backlogs);
            let Some(b) = backlogs.get_mut(key) else {
                return;
            };
            if b.jobs.len() <= b.active {
                return;
            }
            let Ok(worker) = self.workers.clone().try_acquire_owned() else {
                return;
            };
            let (slot, session) = match self.take_idle(key) {
                Some(idle) => (idle.slot, Some(idle.session)),
                None => match self.destination_slot(key).try_acquire_owned() {
                    Ok(slot) => (slot, None),
                    Err(_) => return,
                },
            };
            b.active += 1;
            let dest = b.dest.clone();
            drop(backlogs);
            let runner = self.clone();
            let key = key.to_string();
            tokio::spawn(
                async move {
                    runner.connection(key, dest, session, slot).await;
                    drop(worker);
                }
                .instrument(tracing::Span::current()),
            );
        }
    }

    /// An idle session of `key` still fit for use; the stale ones are closed.
    fn take_idle(&self, key: &str) -> Option<Idle> {
        let timeout = self.shared.config.queue.idle_session_timeout;
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(key)?;
        while let Some(i) = list.pop() {
            if i.since.elapsed() < timeout {
                return Some(i);
            }
            close_session(i.session, i.slot);
        }
        None
    }

    /// Sends QUIT to idle sessions older than `queue.idle_session_timeout` (their slots go).
    fn close_expired_sessions(&self) {
        let timeout = self.shared.config.queue.idle_session_timeout;
        let mut idle = lock(&self.idle);
        for list in idle.values_mut() {
            let (old, fresh): (Vec<Idle>, Vec<Idle>) =
                list.drain(..).partition(|i| i.since.elapsed() >= timeout);
            *list = fresh;
            for i in old {
                close_session(i.session, i.slot);
            }
        }
        idle.retain(|_, l| !l.is_empty());
    }

    fn close_all_sessions(&self) {
        let mut idle = lock(&self.idle);
        for (_, list) in idle.drain() {
            for i in list {
                close_session(i.session, i.slot);
            }
        }
    }

    fn destination_slot(&self, key: &str) -> Arc<Semaphore> {
        let per = self.shared.config.queue.per_destination;
        lock(&self.destinations)
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(per)))
            .clone()
    }

    /// One connection to a destination: takes its jobs one after another over one session
    /// (a new one when there is none, when it failed, or when it carried
    /// `messages_per_session`), then parks the session in the pool.
    async fn connection(
        self: Arc<Self>,
        key: String,
        dest: Destination,
        mut session: Option<Session>,
        slot: OwnedSemaphorePermit,
    ) {
        // Set when no new session could be opened: the jobs still waiting for this
        // destination get the same outcome without trying again (a dead host is tried once
        // per round, not once per message).
        let mut unreachable: Option<Outcome> = None;
        loop {
            // Until the job's claim is renewed for the attempt (see `renewing`).
            let renewing = self.renewing.read().await;
            let job = {
                let mut backlogs = lock(&self.backlogs);
                let next = backlogs.get_mut(&key).and_then(|b| b.jobs.pop_front());
                // Half the backlog done: a round may find room for more.
                let left = backlogs.get(&key).map_or(0, |b| b.jobs.len());
                let full = self.shared.config.queue.per_destination * BACKLOG_PER_CONNECTION;
                if next.is_some() && left == full / 2 {
                    self.shared.queue_notify.notify_one();
                }
                if next.is_none() {
                    if let Some(b) = backlogs.get_mut(&key) {
                        b.active -= 1;
                        if b.active == 0 && b.jobs.is_empty() {
                            backlogs.remove(&key);
                        }
                    }
                    // Parked while the backlog is locked, so a round that adds jobs now finds
                    // this session (lock order: backlogs, then idle).
                    if let Some(s) = session.take() {
                        lock(&self.idle).entry(key.clone()).or_default().push(Idle {
                            session: s,
                            slot,
                            since: Instant::now(),
                        });
                    }
                    break;
                }
                next
            };
            let Some(mut job) = job else { break };
            let renewal = self.renewal_for(&job);
            if renewal == Renewal::Before && !self.renew_claim(&mut job).await {
                continue;
            }
            drop(renewing);
            self.run_job(&dest, &mut session, &mut unreachable, job, renewal)
                .await;
        }
        self.shared.queue_notify.notify_one();
    }

    /// Reads the job's message, delivers it over `session`, and starts recording the result
    /// (the commit runs beside the next job).
    async fn run_job(
        self: &Arc<Self>,
        dest: &Destination,
        session: &mut Option<Session>,
        unreachable: &mut Option<Outcome>,
        mut job: Job,
        renewal: Renewal,
    ) {
        let store = self.shared.store.clone();
        let at = mailroom_store::MessageRef::Queued(job.entry.id);
        let carried = job.message.take();
        let message = match carried {
            Some(m) => Ok(Ok(m.to_vec())),
            None => tokio::task::spawn_blocking(move || store.message_octets(at)).await,
        };
        let message = match message {
            Ok(Ok(m)) => m,
            Ok(Err(mailroom_store::StoreError::NotFound(_))) => return, // removed meanwhile
            _ => {
                tracing::error!(
                    queue_id = job.entry.id.0,
                    "cannot read a queued message; will retry"
                );
                // Recorded like any temporary failure, so the claim goes and a retry comes.
                let why = Outcome::Transient {
                    diagnostic: "the queued message could not be read from the store".into(),
                    host: None,
                };
                let outcomes = vec![why; job.rcpts.len()];
                self.clone().spawn_record(job, outcomes, Vec::new());
                return;
            }
        };
        let addresses: Vec<String> = job.rcpts.iter().map(|r| r.recipient.clone()).collect();
        if let Some(o) = unreachable {
            let outcomes = vec![o.clone(); addresses.len()];
            self.clone().spawn_record(job, outcomes, message);
            return;
        }
        let budget = self.attempt_budget();
        let sender = job.entry.sender.clone();
        let result = {
            let attempt = tokio::time::timeout(
                budget,
                self.deliver(dest, session, &sender, &addresses, &message),
            );
            tokio::pin!(attempt);
            let first = match renewal {
                Renewal::During(after) => tokio::time::timeout(after, &mut attempt).await.ok(),
                _ => Some((&mut attempt).await),
            };
            match first {
                Some(r) => Some(r),
                // Still running after a quarter of what its claim had left: the claim is
                // renewed for the rest of the attempt, or the attempt stops here while the
                // old claim still holds (no other claim can have sent it).
                None if self.renew_claim(&mut job).await && job.rcpts.len() == addresses.len() => {
                    Some(attempt.await)
                }
                None => None,
            }
        };
        let Some(result) = result else {
            // The session is in an unknown state: never reused.
            *session = None;
            if job.rcpts.is_empty() {
                return;
            }
            let why = Outcome::Transient {
                diagnostic:
                    "the attempt was stopped: its claim on the message could not be renewed".into(),
                host: None,
            };
            let outcomes = vec![why; job.rcpts.len()];
            self.clone().spawn_record(job, outcomes, message);
            return;
        };
        let outcomes = match result {
            Ok(Ok(o)) => o,
            Ok(Err(o)) => {
                *unreachable = Some(o.clone());
                vec![o; addresses.len()]
            }
            Err(_) => {
                // The session is in an unknown state: never reused.
                *session = None;
                vec![
                    Outcome::Transient {
                        diagnostic: format!(
                            "the attempt took longer than {} s and was cut off",
                            budget.as_secs()
                        ),
                        host: None,
                    };
                    addresses.len()
                ]
            }
        };
        self.clone().spawn_record(job, outcomes, message);
    }

    fn spawn_record(self: Arc<Self>, job: Job, outcomes: Vec<Outcome>, message: Vec<u8>) {
        tokio::spawn(
            async move {
                self.record(&job.entry, &job.rcpts, outcomes, &message, job.lease)
                    .await;
            }
            .instrument(tracing::Span::current()),
        );
    }

    /// One transaction for one job: over the session given (then RSET first), else over a new
    /// one. A reused session that fails before the message could have been taken — closed by
    /// the peer while idle, RSET refused, a 4xx to MAIL — is dropped and the job goes again
    /// at once over a new session: that is not a failed attempt. `Err` when no new session
    /// could be opened: the outcome for every recipient of the job.
    async fn deliver(
        &self,
        dest: &Destination,
        session: &mut Option<Session>,
        sender: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<Vec<Outcome>, Outcome> {
        let all = |o: Outcome| Ok(vec![o; rcpts.len()]);
        let q = &self.shared.config.queue;
        loop {
            let mut s = match session.take() {
                Some(s) => s,
                None => self.connect(dest).await?,
            };
            let reused = s.messages > 0;
            let limit = q.command_timeout * 4;
            let result = if reused {
                tokio::time::timeout(limit, s.client.send_next_mail(sender, rcpts, message)).await
            } else {
                tokio::time::timeout(limit, s.client.send_mail(sender, rcpts, message)).await
            };
            let server = s.server.clone();
            match result {
                Ok(Ok(outcome)) => {
                    s.messages += 1;
                    // RFC 5321 §4.2.5: a 4xx to MAIL on a reused session is often the peer's
                    // limit of transactions per connection: try a new session before taking
                    // it as a failure.
                    if reused && (400..500).contains(&outcome.mail.code) {
                        tracing::debug!(%server, reply = %outcome.mail, "reused session refused MAIL; trying a new one");
                        // Closed before the next one opens: this task's slot stands for one
                        // connection at the peer at a time.
                        let _ = s.client.quit().await;
                        continue;
                    }
                    if s.messages < q.messages_per_session {
                        *session = Some(s);
                    } else {
                        // As above: gone before this slot opens another connection.
                        let _ = s.client.quit().await;
                    }
                    return Ok(outcomes_of(
                        &server,
                        rcpts,
                        &outcome.mail,
                        &outcome.rcpts,
                        outcome.data.as_ref(),
                    ));
                }
                Ok(Err(e)) => {
                    let content_sent = s.client.content_sent();
                    drop(s);
                    if reused && !content_sent {
                        tracing::debug!(%server, error = %e, "reused session failed before the message; trying a new one");
                        continue;
                    }
                    return all(Outcome::Transient {
                        diagnostic: e.to_string(),
                        host: Some(server),
                    });
                }
                Err(_) => {
                    return all(Outcome::Transient {
                        diagnostic: format!("{server} timed out during the transaction"),
                        host: Some(server),
                    })
                }
            }
        }
    }

    /// A new session to one of the destination's hosts (tried in order), logged in when the
    /// route says so; else the outcome for the job's recipients.
    async fn connect(&self, dest: &Destination) -> Result<Session, Outcome> {
        let (hosts, auth, tls) = match dest {
            Destination::Fixed {
                host,
                port,
                auth,
                tls,
            } => (vec![(host.clone(), *port)], auth.clone(), tls.clone()),
            Destination::Mx { domain } => {
                // Through `[dns] servers` when given (RFC 5321 §5.1 MX lookup).
                let answer = self
                    .shared
                    .dns
                    .mx(domain)
                    .await
                    .map_err(|e| Outcome::Transient {
                        diagnostic: e,
                        host: None,
                    })?;
                match route::mx_hosts(domain, answer) {
                    Ok(h) => (
                        h.into_iter().map(|h| (h, 25)).collect(),
                        None,
                        route::mx_policy(&self.shared.config),
                    ),
                    Err(e) => {
                        return Err(Outcome::Permanent {
                            diagnostic: e,
                            status: "5.1.2".into(),
                            host: None,
                        })
                    }
                }
            }
        };
        let trace = self.trace_fn();
        let mut last_error = String::from("no host to try");
        for (host, port) in hosts {
            let server = format!("{host}:{port}");
            let mut client = match self.open(&server, &tls, trace.clone()).await {
                Ok(c) => c,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            if let Some((user, password)) = &auth {
                if let Err(e) = client.authenticate(user, password).await {
                    last_error = e.to_string();
                    continue;
                }
            }
            return Ok(Session {
                client,
                server,
                messages: 0,
            });
        }
        Err(Outcome::Transient {
            diagnostic: last_error,
            host: None,
        })
    }

    /// Connects, says EHLO and upgrades with STARTTLS when the peer offers it (RFC 3207).
    /// Opportunistic by default: a failed handshake is retried once in plaintext (RFC 7435
    /// §3); with `require` there is no delivery without TLS, and with `verify` the peer's
    /// certificate must check out; with `none` the dialogue stays in clear even when the
    /// peer offers STARTTLS.
    async fn open(
        &self,
        server: &str,
        tls: &route::TlsPolicy,
        trace: Option<TraceFn>,
    ) -> Result<SmtpClient, String> {
        let cfg = &self.shared.config;
        let connect = || async {
            let mut c = SmtpClient::connect(server, cfg.queue.connect_timeout, trace.clone())
                .await
                .map_err(|e| e.to_string())?;
            // The connection and the greeting had `connect_timeout`; each reply from here on
            // has `command_timeout` (RFC 5321 §4.5.3.2: minutes, 10 for the end of data).
            c.set_timeout(cfg.queue.command_timeout);
            c.hello(&cfg.hostname).await.map_err(|e| e.to_string())?;
            Ok::<SmtpClient, String>(c)
        };
        let mut client = connect().await?;
        if tls.mode == TlsMode::None {
            tracing::debug!(%server, "tls = \"none\": delivering in clear");
            return Ok(client);
        }
        let require = tls.mode == TlsMode::Require;
        if !client.extensions().starttls {
            if require {
                let _ = client.quit().await;
                return Err(format!(
                    "{server} does not offer STARTTLS, and the route requires TLS (tls = \"require\")"
                ));
            }
            return Ok(client);
        }
        let client_tls = if tls.verify {
            let made = match &tls.ca {
                Some(ca) => ClientTls::with_ca_file(ca),
                None => ClientTls::webpki_roots(),
            };
            made.map_err(|e| e.to_string())?
        } else {
            ClientTls::insecure()
        };
        let upgraded = match client.starttls(&client_tls).await {
            Ok(()) => client.hello(&cfg.hostname).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match upgraded {
            Ok(()) => Ok(client),
            Err(e) if require => Err(format!("STARTTLS with {server} failed: {e}")),
            Err(e) => {
                tracing::info!(%server, error = %e, "STARTTLS failed; delivering without TLS");
                connect().await
            }
        }
    }

    fn trace_fn(&self) -> Option<TraceFn> {
        if !self.shared.config.trace.smtp {
            return None;
        }
        let id = self.shared.next_session_id();
        Some(Arc::new(move |dir: Direction, line: &str| {
            let who = match dir {
                Direction::Client => "C",
                Direction::Server => "S",
            };
            // The client escapes what the peer sent already; the same rule as the sessions'.
            let line = crate::conn::escape_controls(line);
            tracing::info!(target: "mailroom::trace", "[queue {id}] {who}: {line}");
        }))
    }

    /// Turns outcomes into store updates (and a bounce), committed together.
    async fn record(
        &self,
        entry: &QueueEntry,
        rcpts: &[QueueRecipient],
        outcomes: Vec<Outcome>,
        message: &[u8],
        lease: i64,
    ) {
        let cfg = &self.shared.config.queue;
        let now = now_unix();
        let expired = now.saturating_sub(entry.created) >= cfg.max_age.as_secs() as i64;
        let mut updates = Vec::new();
        let mut failures = Vec::new();
        for (r, outcome) in rcpts.iter().zip(outcomes) {
            let attempts = r.attempts + 1;
            let (status, next, last_error) = match outcome {
                Outcome::Delivered => {
                    tracing::info!(queue_id = entry.id.0, rcpt = %r.recipient, "delivered");
                    ("delivered", now, None)
                }
                Outcome::Permanent {
                    diagnostic,
                    status,
                    host,
                } => {
                    tracing::warn!(queue_id = entry.id.0, rcpt = %r.recipient, %diagnostic, "delivery failed permanently");
                    failures.push(Failure {
                        recipient: r.recipient.clone(),
                        status,
                        diagnostic: diagnostic.clone(),
                        remote_mta: host,
                    });
                    ("failed", now, Some(diagnostic))
                }
                Outcome::Transient { diagnostic, host } => {
                    if expired {
                        let text = format!(
                            "delivery time expired after {} attempts; last error: {diagnostic}",
                            attempts
                        );
                        failures.push(Failure {
                            recipient: r.recipient.clone(),
                            status: "4.4.7".into(),
                            diagnostic: text.clone(),
                            remote_mta: host,
                        });
                        ("failed", now, Some(text))
                    } else {
                        let step = cfg.retry[(attempts as usize - 1).min(cfg.retry.len() - 1)];
                        tracing::info!(queue_id = entry.id.0, rcpt = %r.recipient, %diagnostic, retry_in = step.as_secs(), "delivery deferred");
                        ("pending", now + step.as_secs() as i64, Some(diagnostic))
                    }
                }
            };
            updates.push(RecipientUpdate {
                id: r.id,
                lease,
                status: status.into(),
                attempts,
                next_attempt: next,
                last_error,
            });
        }
        let counts = {
            let n = |s: &str| updates.iter().filter(|u| u.status == s).count();
            [n("delivered"), n("pending"), n("failed")]
        };
        let store = self.shared.store.clone();
        // RFC 3464 §2 / RFC 5321 §4.5.5: never bounce a bounce (null sender).
        let res = if failures.is_empty() || entry.sender.is_empty() {
            // The common case: the results alone, committed without a thread waiting.
            Ok(store
                .queue_update_async(updates, None)
                .await
                .map(|()| false))
        } else {
            self.record_with_bounce(entry, updates, failures, message)
                .await
        };
        match res {
            Ok(Ok(bounced)) => {
                use crate::metrics::Remote;
                let m = &self.shared.metrics;
                for (outcome, n) in [Remote::Delivered, Remote::Deferred, Remote::Failed]
                    .into_iter()
                    .zip(counts)
                {
                    (0..n).for_each(|_| m.remote(outcome));
                }
                if bounced {
                    m.bounce();
                }
                self.shared.queue_notify.notify_one()
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "recording delivery results failed; they will be retried")
            }
            Err(e) => tracing::error!(error = %e, "recording delivery results panicked"),
        }
    }

    /// Records results that fail recipients of a message with a sender: the DSN is built,
    /// signed and stored in the commit that records them.
    async fn record_with_bounce(
        &self,
        entry: &QueueEntry,
        updates: Vec<RecipientUpdate>,
        failures: Vec<Failure>,
        message: &[u8],
    ) -> Result<Result<bool, mailroom_store::StoreError>, tokio::task::JoinError> {
        let store = self.shared.store.clone();
        let hostname = self.shared.config.hostname.clone();
        let sender = entry.sender.clone();
        let created = entry.created;
        let message = message.to_vec();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let bounce = {
                let dsn = bounce::build_dsn(&hostname, &sender, created, &failures, &message);
                // Signed by the local domain the hostname lies in (From MAILER-DAEMON@host).
                let mut signed =
                    delivery::dkim_signature(&shared.store, &shared.dkim, &shared.config, &[&dsn])
                        .into_bytes();
                signed.extend_from_slice(&dsn);
                bounce_delivery(&store, &sender, signed)?
            };
            let bounced = bounce.is_some();
            store.queue_update(updates, bounce).map(|()| bounced)
        })
        .await
    }
}

/// Says QUIT to an idle session in the background; its destination slot is held until the
/// connection is closed, so `queue.per_destination` counts it until then (a new connection
/// in its place before it is gone would be one too many at the peer).
fn close_session(s: Session, slot: OwnedSemaphorePermit) {
    tokio::spawn(async move {
        let _ = s.client.quit().await;
        drop(slot);
    });
}

/// Per-recipient outcomes from the replies of one transaction.
fn outcomes_of(
    server: &str,
    rcpts: &[String],
    mail: &SmtpReply,
    rcpt_replies: &[(String, SmtpReply)],
    data: Option<&SmtpReply>,
) -> Vec<Outcome> {
    let failed = |r: &SmtpReply| {
        // The reply's lines as received, enhanced codes included.
        let texts: Vec<_> = r.texts().collect();
        let diagnostic = format!("{} {}", r.code, texts.join(" "));
        if r.code >= 500 {
            Outcome::Permanent {
                status: bounce::status_of(r.code, texts.first().map_or("", |t| t.as_ref())),
                diagnostic,
                host: Some(server.to_string()),
            }
        } else {
            Outcome::Transient {
                diagnostic,
                host: Some(server.to_string()),
            }
        }
    };
    if !(200..300).contains(&mail.code) {
        return vec![failed(mail); rcpts.len()];
    }
    rcpts
        .iter()
        .enumerate()
        .map(|(i, _)| match rcpt_replies.get(i) {
            Some((_, r)) if !(200..300).contains(&r.code) => failed(r),
            Some(_) => match data {
                Some(d) if (200..300).contains(&d.code) => Outcome::Delivered,
                Some(d) => failed(d),
                None => Outcome::Transient {
                    diagnostic: format!("{server} did not take the message data"),
                    host: Some(server.to_string()),
                },
            },
            None => Outcome::Transient {
                diagnostic: format!("{server} gave no reply for this recipient"),
                host: Some(server.to_string()),
            },
        })
        .collect()
}

/// Where a bounce for `sender` goes: local accounts directly, other addresses through the
/// queue with the null sender. None when the sender is a local address that does not exist.
fn bounce_delivery(
    store: &mailroom_store::Store,
    sender: &str,
    dsn: Vec<u8>,
) -> mailroom_store::Result<Option<Delivery>> {
    let targets = match delivery::resolve(store, sender)? {
        Route::Local(t) => t,
        Route::Remote { address } => vec![Target::Remote { address }],
        Route::UnknownUser => {
            tracing::warn!(%sender, "bounce dropped: the sender is not a local address any more");
            return Ok(None);
        }
    };
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for t in targets {
        match t {
            Target::Account { account, .. } => local.push(account),
            Target::Remote { address } => remote.push(address),
        }
    }
    let mut local_message = b"Return-Path: <>\r\n".to_vec();
    local_message.extend_from_slice(&dsn);
    Ok(Some(Delivery {
        transcript: None,
        local_message: if local.is_empty() {
            Vec::new()
        } else {
            local_message
        },
        local,
        outbound: (!remote.is_empty()).then(|| Outbound {
            sender: String::new(),
            recipients: remote,
            message: dsn,
            first_attempt: now_unix(),
            claim_until: 0,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoff(id: i64) -> Handoff {
        Handoff {
            entry: QueueEntry {
                id: mailroom_store::QueueId(id),
                message: mailroom_store::MessageId(id),
                sender: "a@x.test".into(),
                created: 0,
                recipients: Vec::new(),
            },
            lease: 1,
            message: None,
        }
    }

    #[test]
    fn sessions_claim_only_while_the_runner_runs_and_has_room() {
        let config = crate::config::Config::parse("", "t.toml").expect("config");
        let h = Handoffs::default();
        // Before the runner released the last run's claims, nothing is claimed (the release
        // would take the claim from under the handed-over job).
        assert_eq!(h.claim_until(&config), 0);
        h.ready.store(true, Ordering::Release);
        let until = h.claim_until(&config);
        let lease = config.queue.claim_lease.as_secs() as i64;
        assert!((until - now_unix() - lease).abs() <= 1, "{until}");
        // Jobs in the backlogs and handed over count together against the bound.
        h.held.store(HELD_MAX - 2, Ordering::Relaxed);
        h.push(handoff(1));
        assert!(h.claim_until(&config) > 0);
        h.push(handoff(2));
        assert_eq!(h.claim_until(&config), 0);
        let taken: Vec<i64> = h.take().iter().map(|x| x.entry.id.0).collect();
        assert_eq!(taken, vec![1, 2]);
        assert!(h.claim_until(&config) > 0);
    }

    #[test]
    fn only_small_messages_are_carried() {
        assert_eq!(Handoffs::carry(b"abc").as_deref(), Some(&b"abc"[..]));
        assert!(Handoffs::carry(&vec![b'x'; CARRY_MAX]).is_some());
        assert!(Handoffs::carry(&vec![b'x'; CARRY_MAX + 1]).is_none());
    }
}
