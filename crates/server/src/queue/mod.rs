//! The outbound queue: delivers mail for other domains, retries, bounces.
//!
//! The runner wakes when a message is queued (or every second, which also picks up
//! `mailroom queue flush` from another process), takes the due recipients from the store,
//! groups them by destination — recipients for the same destination share one SMTP
//! transaction — and runs one attempt per group, at most `queue.workers` at once and at most
//! `queue.per_destination` per destination.
//!
//! Per recipient (RFC 5321 §4.2.5, §4.5.4.1):
//! - 2xx after DATA → delivered;
//! - 5xx to MAIL, RCPT or DATA → failed: a DSN goes to the sender (not for `<>`);
//! - 4xx, connection refused, timeout, DNS failure → retried after `queue.retry[n]`, the last
//!   step repeating, until `queue.max_age`, then failed and bounced.
//!
//! The results and the bounce are written in one commit: a crash can neither lose a bounce nor
//! send it twice. A message whose recipients are all finished leaves the queue.

pub mod bounce;
pub mod route;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
/// Seconds a claim outlasts the longest attempt: time to record the result.
const CLAIM_MARGIN: i64 = 60;
/// Entries taken from the store per round.
const BATCH: usize = 200;

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

struct Runner {
    shared: Arc<Shared>,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    workers: Arc<Semaphore>,
}

/// One attempt planned by a round: its slots are held, its recipients not yet claimed.
struct Planned {
    entry: QueueEntry,
    dest: Destination,
    rcpts: Vec<QueueRecipient>,
    permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// Starts the queue runner; it stops when `shutdown` becomes true.
pub fn spawn(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let workers = Arc::new(Semaphore::new(shared.config.queue.workers));
    let runner = Arc::new(Runner {
        shared,
        destinations: Mutex::new(HashMap::new()),
        workers,
    });
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
            loop {
                if *shutdown.borrow() {
                    break;
                }
                runner.clone().round().await;
                let notify = runner.shared.queue_notify.clone();
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = notify.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        .instrument(span),
    );
}

impl Runner {
    /// How long one attempt may take in all (connects, EHLO, STARTTLS, the transaction); it is
    /// cut off after this, so it always records its result while its claim holds.
    fn attempt_budget(&self) -> Duration {
        let q = &self.shared.config.queue;
        q.connect_timeout * 2 + q.command_timeout * 8
    }

    /// One round: read the due recipients (longest-due first, none that an attempt holds),
    /// plan one attempt per (entry, destination) for which a worker and a destination slot
    /// are free now, claim their recipients in the store in one commit, and start the
    /// attempts. What finds no free slot stays due for a later round, unclaimed, so a slow
    /// destination holds only its own slots and never the rest of the queue.
    async fn round(self: Arc<Self>) {
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
        let mut planned: Vec<Planned> = Vec::new();
        'entries: for entry in due {
            let mut groups: HashMap<String, (Destination, Vec<QueueRecipient>)> = HashMap::new();
            for r in &entry.recipients {
                if r.status != "pending" || r.next_attempt > now {
                    continue;
                }
                let dest = route::choose(
                    &self.shared.config,
                    &mailroom_store::domain_of(&r.recipient),
                );
                groups
                    .entry(dest.key())
                    .or_insert_with(|| (dest, Vec::new()))
                    .1
                    .push(r.clone());
            }
            for (key, (dest, rcpts)) in groups {
                let Ok(worker) = self.workers.clone().try_acquire_owned() else {
                    break 'entries;
                };
                let Ok(slot) = self.destination_slot(&key).try_acquire_owned() else {
                    continue;
                };
                planned.push(Planned {
                    entry: QueueEntry {
                        recipients: Vec::new(),
                        ..entry.clone()
                    },
                    dest,
                    rcpts,
                    permits: (worker, slot),
                });
            }
        }
        if planned.is_empty() {
            return;
        }
        // The claim: only recipients still pending, due and unclaimed are taken, in the same
        // statement that marks them, so no attempt is started twice.
        let lease = now + self.attempt_budget().as_secs() as i64 + CLAIM_MARGIN;
        let ids: Vec<i64> = planned
            .iter()
            .flat_map(|p| p.rcpts.iter().map(|r| r.id))
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
        for mut p in planned {
            p.rcpts.retain(|r| claimed.contains(&r.id));
            if p.rcpts.is_empty() {
                continue;
            }
            let runner = self.clone();
            tokio::spawn(
                async move {
                    let _permits = p.permits;
                    runner.attempt(p.entry, p.dest, p.rcpts, lease).await;
                }
                .instrument(tracing::Span::current()),
            );
        }
    }

    fn destination_slot(&self, key: &str) -> Arc<Semaphore> {
        let per = self.shared.config.queue.per_destination;
        match self.destinations.lock() {
            Ok(mut m) => m
                .entry(key.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(per)))
                .clone(),
            Err(_) => Arc::new(Semaphore::new(per)),
        }
    }

    async fn attempt(
        &self,
        entry: QueueEntry,
        dest: Destination,
        rcpts: Vec<QueueRecipient>,
        lease: i64,
    ) {
        let store = self.shared.store.clone();
        let at = mailroom_store::MessageRef::Queued(entry.id);
        let message = match tokio::task::spawn_blocking(move || {
            mailroom_store::read_message(store.as_ref(), at)
        })
        .await
        {
            Ok(Ok(m)) => m,
            Ok(Err(mailroom_store::StoreError::NotFound(_))) => return, // removed meanwhile
            _ => {
                tracing::error!(
                    queue_id = entry.id.0,
                    "cannot read a queued message; will retry"
                );
                // Recorded like any temporary failure, so the claim goes and a retry comes.
                let why = Outcome::Transient {
                    diagnostic: "the queued message could not be read from the store".into(),
                    host: None,
                };
                let outcomes = vec![why; rcpts.len()];
                self.record(&entry, &rcpts, outcomes, &[], lease).await;
                return;
            }
        };
        let addresses: Vec<String> = rcpts.iter().map(|r| r.recipient.clone()).collect();
        let budget = self.attempt_budget();
        let outcomes = match tokio::time::timeout(
            budget,
            self.deliver(&dest, &entry.sender, &addresses, &message),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => vec![
                Outcome::Transient {
                    diagnostic: format!(
                        "the attempt took longer than {} s and was cut off",
                        budget.as_secs()
                    ),
                    host: None,
                };
                addresses.len()
            ],
        };
        self.record(&entry, &rcpts, outcomes, &message, lease).await;
    }

    /// One attempt at one destination: tries its hosts in order until one answers.
    async fn deliver(
        &self,
        dest: &Destination,
        sender: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Vec<Outcome> {
        let all = |o: Outcome| vec![o; rcpts.len()];
        let (hosts, auth, tls) = match dest {
            Destination::Fixed {
                host,
                port,
                auth,
                tls,
            } => (vec![(host.clone(), *port)], auth.clone(), tls.clone()),
            Destination::Mx { domain } => {
                // Through `[dns] servers` when given (RFC 5321 §5.1 MX lookup).
                let answer = match self.shared.dns.mx(domain).await {
                    Ok(a) => a,
                    Err(e) => {
                        return all(Outcome::Transient {
                            diagnostic: e,
                            host: None,
                        })
                    }
                };
                match route::mx_hosts(domain, answer) {
                    Ok(h) => (
                        h.into_iter().map(|h| (h, 25)).collect(),
                        None,
                        route::mx_policy(&self.shared.config),
                    ),
                    Err(e) => {
                        return all(Outcome::Permanent {
                            diagnostic: e,
                            status: "5.1.2".into(),
                            host: None,
                        })
                    }
                }
            }
        };
        let cfg = &self.shared.config;
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
            let result = tokio::time::timeout(
                cfg.queue.command_timeout * 4,
                client.send_mail(sender, rcpts, message),
            )
            .await;
            let outcome = match result {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    return all(Outcome::Transient {
                        diagnostic: e.to_string(),
                        host: Some(server),
                    })
                }
                Err(_) => {
                    return all(Outcome::Transient {
                        diagnostic: format!("{server} timed out during the transaction"),
                        host: Some(server),
                    })
                }
            };
            // The outcome is recorded at once; QUIT goes on beside it. Each moment between
            // the peer's 250 and our commit is one in which a crash sends the message twice
            // (RFC 5321 §6.1); waiting for the 221 first made that window a round trip
            // longer (the chaos test saw most deliveries in flight at a kill arrive twice).
            tokio::spawn(async move {
                let _ = client.quit().await;
            });
            return outcomes_of(
                &server,
                rcpts,
                &outcome.mail,
                &outcome.rcpts,
                outcome.data.as_ref(),
            );
        }
        all(Outcome::Transient {
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
        let store = self.shared.store.clone();
        let hostname = self.shared.config.hostname.clone();
        let sender = entry.sender.clone();
        let created = entry.created;
        let message = message.to_vec();
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            // RFC 3464 §2 / RFC 5321 §4.5.5: never bounce a bounce (null sender).
            let bounce = if failures.is_empty() || sender.is_empty() {
                None
            } else {
                let dsn = bounce::build_dsn(&hostname, &sender, created, &failures, &message);
                // Signed by the local domain the hostname lies in (From MAILER-DAEMON@host).
                let mut signed =
                    delivery::dkim_signature(&shared.store, &shared.dkim, &shared.config, &[&dsn])
                        .into_bytes();
                signed.extend_from_slice(&dsn);
                bounce_delivery(&store, &sender, signed)?
            };
            store.queue_update(updates, bounce)
        })
        .await;
        match res {
            Ok(Ok(())) => self.shared.queue_notify.notify_one(),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "recording delivery results failed; they will be retried")
            }
            Err(e) => tracing::error!(error = %e, "recording delivery results panicked"),
        }
    }
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
        }),
    }))
}
