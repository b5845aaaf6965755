//! The message itself: DATA (RFC 5321 §4.1.1.4) through the sans-IO receiver, BDAT chunks
//! (RFC 3030), the shared memory budget for messages being received, and the hand-off to the
//! store with the trace headers (RFC 5321 §4.4), the fields a submission server completes
//! (RFC 6409 §8) and the empty line a message typed without header lines needs (RFC 5322
//! §2.1): a 250 means the message is on disk.

use mailroom_proto::smtp::{
    normalize_body, DataError, DataProgress, DataReceiver, Reply, ReversePath,
};
use mailroom_store::Direction;

use super::{auth_checks, Envelope, Flow, Refusal, Session, State};
use crate::config::CheckMode;
use crate::delivery::{self, Accepted, Target};
use crate::metrics::FaultStage;
use crate::ListenerKind;

impl Session {
    pub(super) async fn data(&mut self) -> Flow {
        let env = match std::mem::replace(&mut self.state, State::Greeted) {
            State::Rcpt(env) => env,
            other => {
                let refusal = match &other {
                    State::Mail(_) => Refusal::RcptFirst,
                    State::Bdat { .. } => Refusal::DataAfterBdat,
                    State::Connected => Refusal::HeloFirst,
                    _ => Refusal::MailFirst,
                };
                self.state = other;
                return self.refuse(refusal);
            }
        };
        self.ok(354, "", "End data with <CR><LF>.<CR><LF>");
        // SPF needs only the envelope: it runs while the data arrives.
        let checks = self.start_checks(&env);
        let limits = &self.shared.config.limits;
        let max_size = usize::try_from(limits.max_message_size).unwrap_or(usize::MAX);
        let mut rx = DataReceiver::new(max_size, limits.max_line_length);
        // The message is held in memory until stored: its share of the budget for all sessions.
        let mut held = self.shared.incoming.reserve();
        loop {
            let chunk = match self.conn.read_raw().await {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => {
                    // The client went away (or stayed silent) mid-message: nothing is stored.
                    self.conn
                        .trace
                        .note("connection lost during DATA; message discarded");
                    let host = self.host().to_string();
                    self.ok(
                        421,
                        "4.4.2",
                        format!(
                            "{host} Timeout or connection lost during DATA; nothing was stored"
                        ),
                    );
                    return Flow::Close;
                }
            };
            let progress = rx.feed(&chunk);
            if rx.error().is_none() && !held.grow_to(rx.kept() as u64) {
                self.over_budget(rx.kept());
                rx.abandon();
            }
            match progress {
                DataProgress::NeedMore => continue,
                DataProgress::Done { consumed } => {
                    self.conn.unread(&chunk[consumed..]);
                    break;
                }
            }
        }
        self.conn
            .trace
            .client(&format!("({} octets of message data) .", rx.received()));
        self.conn
            .record_client(format!("<message, {} octets>", rx.received()));
        let flow = match rx.finish() {
            Ok(body) => self.accept(env, body, checks).await,
            Err(e) => self.refuse(Refusal::Data(e)),
        };
        self.shared
            .metrics
            .smtp_message(self.listener, self.last_code);
        flow
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Flow {
        // RFC 3030 §2: the chunk is always read, even when the command is refused.
        let limit = self.shared.config.limits.max_message_size;
        let (mut env_body, refusal) = match std::mem::replace(&mut self.state, State::Greeted) {
            State::Rcpt(env) => (
                Some((env, Vec::new(), self.shared.incoming.reserve(), None)),
                None,
            ),
            State::Bdat {
                env,
                body,
                held,
                dropped,
            } => (Some((env, body, held, dropped)), None),
            State::Mail(env) => {
                self.state = State::Mail(env);
                (None, Some(Refusal::BdatWithoutRecipients))
            }
            other => {
                self.state = other;
                (None, Some(Refusal::BdatWithoutRecipients))
            }
        };
        let mut remaining = size;
        while remaining > 0 {
            let chunk = match self.conn.read_raw().await {
                Ok(Some(c)) => c,
                _ => {
                    self.conn
                        .trace
                        .note("connection lost during BDAT; message discarded");
                    return Flow::Close;
                }
            };
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            if let Some((_, body, held, dropped)) = env_body.as_mut() {
                if dropped.is_none() {
                    let total = (body.len() + take) as u64;
                    if total > limit {
                        *dropped = Some(DataError::TooBig {
                            limit: usize::try_from(limit).unwrap_or(usize::MAX),
                        });
                        *body = Vec::new();
                    } else if !held.grow_to(total) {
                        self.over_budget(body.len() + take);
                        *dropped = Some(DataError::Abandoned);
                        *body = Vec::new();
                    } else {
                        body.extend_from_slice(&chunk[..take]);
                    }
                }
            }
            remaining -= take as u64;
            self.conn.unread(&chunk[take..]);
        }
        self.conn.trace.client(&format!(
            "({size} octets of BDAT data{})",
            if last { ", LAST" } else { "" }
        ));
        self.conn
            .record_client(format!("<message chunk, {size} octets>"));
        if let Some(r) = refusal {
            return self.refuse(r);
        }
        let Some((env, body, held, dropped)) = env_body else {
            return self.refuse(Refusal::BdatWithoutRecipients);
        };
        if !last {
            let total = body.len();
            self.state = State::Bdat {
                env,
                body,
                held,
                dropped,
            };
            self.ok(
                250,
                "2.0.0",
                format!("{size} octets received ({total} so far)"),
            );
            return Flow::Continue;
        }
        if let Some(e) = dropped {
            return self.refuse(Refusal::Data(e));
        }
        let flow = match normalize_body(body, self.shared.config.limits.max_line_length) {
            Ok(body) => self.accept(env, body, None).await,
            Err(e) => self.refuse(Refusal::Data(e)),
        };
        drop(held);
        self.shared
            .metrics
            .smtp_message(self.listener, self.last_code);
        flow
    }

    /// The memory budget for incoming messages is used up: this message is not kept.
    fn over_budget(&mut self, octets: usize) {
        let limit = self.shared.config.limits.max_incoming_memory;
        tracing::warn!(
            octets,
            limit,
            "limits.max_incoming_memory reached: a message is refused with 452 4.3.1"
        );
        self.conn.trace.note(&format!(
            "memory budget for incoming messages ({limit} octets) used up; this message is refused"
        ));
    }

    /// The inbound checks (auth_checks.rs) this transaction gets, started: mail from a
    /// session without AUTH at the MX listener, not from loopback unless `[checks] loopback`,
    /// in the strictest mode of the recipients' domains unless that is `off`.
    fn start_checks(&self, env: &Envelope) -> Option<auth_checks::Pending> {
        let cfg = &self.shared.config.checks;
        if self.kind != ListenerKind::Smtp || self.auth.is_some() {
            return None;
        }
        if !cfg.loopback && crate::config::is_loopback(self.conn.peer.ip()) {
            return None;
        }
        if self.checks_mode(env) == CheckMode::Off {
            return None;
        }
        Some(auth_checks::start(
            self.shared.dns.clone(),
            auth_checks::Envelope {
                ip: self.conn.peer.ip(),
                helo: self.helo.clone().unwrap_or_default(),
                mail_from: match &env.from {
                    ReversePath::Null => String::new(),
                    ReversePath::Address(a) => a.to_string(),
                },
                hostname: self.host().to_string(),
            },
        ))
    }

    /// The strictest `[checks]` mode among the recipients' domains (one reply answers for
    /// all of them).
    fn checks_mode(&self, env: &Envelope) -> CheckMode {
        let cfg = &self.shared.config.checks;
        env.rcpts
            .iter()
            .map(|r| cfg.mode_for(mailroom_store::domain_of(&r.address).as_str()))
            .max()
            .unwrap_or(CheckMode::Off)
    }

    /// Adds the trace headers and stores the message for every recipient, durably.
    async fn accept(
        &mut self,
        env: Envelope,
        body: Vec<u8>,
        checks: Option<auth_checks::Pending>,
    ) -> Flow {
        // Capture mode's fault for the data: the message is not stored.
        if let Some(flow) = self.injected(FaultStage::Data) {
            return flow;
        }
        let hops = delivery::count_received(&body);
        if hops >= self.shared.config.limits.max_hops {
            return self.refuse(Refusal::TooManyHops(hops));
        }
        let checks = checks.or_else(|| self.start_checks(&env));
        let (body, verdict) = match checks {
            Some(pending) => {
                // Our domains, read on a blocking thread (the checks run on async ones).
                let store = self.shared.store.clone();
                let mut ours = self.shared.config.local_domains();
                if let Ok(Ok(more)) =
                    tokio::task::spawn_blocking(move || store.list_domains()).await
                {
                    ours.extend(more);
                }
                let is_local = std::sync::Arc::new(move |d: &str| {
                    ours.iter().any(|c| c.eq_ignore_ascii_case(d))
                });
                let (verdict, body) = auth_checks::finish(
                    self.shared.dns.clone(),
                    pending,
                    body,
                    self.checks_mode(&env),
                    is_local,
                )
                .await;
                (body, Some(verdict))
            }
            None => (body, None),
        };
        let mut quarantine = false;
        if let Some(v) = &verdict {
            self.conn
                .trace
                .note(v.header.trim_end().replace("\r\n", "").as_str());
            match &v.action {
                auth_checks::Action::Deliver => {}
                auth_checks::Action::Junk(why) => {
                    self.conn.trace.note(&format!("to Junk: {why}"));
                    quarantine = true;
                }
                auth_checks::Action::Refuse(why) => {
                    tracing::info!(session = self.id, reason = %why, "message refused by the inbound checks");
                    return self.refuse(Refusal::NotAuthenticated(why.clone()));
                }
            }
        }
        // RFC 8601 §5: what arrives from outside may not speak in our name.
        let body = if self.kind == ListenerKind::Smtp && self.auth.is_none() {
            auth_checks::strip_our_results(body, self.host())
        } else {
            body
        };
        let id = delivery::new_id();
        // RFC 3848 / RFC 6531 §3.7.4: S for TLS, A for AUTH.
        let with = match (
            env.smtputf8,
            self.esmtp,
            self.conn.is_tls(),
            self.auth.is_some() || self.captured_login.is_some(),
        ) {
            (true, _, true, true) => "UTF8SMTPSA",
            (true, _, true, false) => "UTF8SMTPS",
            (true, _, false, true) => "UTF8SMTPA",
            (true, _, false, false) => "UTF8SMTP",
            (false, true, true, true) => "ESMTPSA",
            (false, true, true, false) => "ESMTPS",
            (false, true, false, true) => "ESMTPA",
            (false, true, false, false) => "ESMTP",
            (false, false, _, true) => "SMTPA",
            (false, false, _, false) => "SMTP",
        };
        let single = match env.rcpts.as_slice() {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        let helo = self.helo.clone().unwrap_or_default();
        let received = delivery::received_header(&delivery::Trace {
            helo: &helo,
            peer: self.conn.peer,
            hostname: self.host(),
            with,
            id: &id,
            single_recipient: single,
        });
        let sender = match &env.from {
            ReversePath::Null => String::new(),
            ReversePath::Address(a) => a.to_string(),
        };
        // RFC 6409 §8 on submission; on every listener the empty line that ends the header
        // section when the client sent none (RFC 5322 §2.1): see `delivery::message_prefix`.
        let submitted = (self.kind == ListenerKind::Submission).then(|| delivery::Submitted {
            hostname: self.host(),
            id: &id,
            sender: (!sender.is_empty()).then_some(sender.as_str()),
        });
        let mut prefix = delivery::message_prefix(received, submitted, &body);
        if let Some(v) = verdict {
            // RFC 8601 §5: added at the top, with the trace fields.
            prefix = v.header + &prefix;
        }
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for t in env.rcpts.iter().flat_map(|r| r.targets.iter()) {
            match t {
                Target::Account { account, .. } => local.push(*account),
                Target::Remote { address } => remote.push(address.clone()),
            }
        }
        let n_rcpt = env.rcpts.len();
        // The reply goes out only after the commit; the transcript kept with the message
        // already holds it, as the client will see it.
        let done = Reply::new(250, "2.0.0", format!("Ok: queued as {id}"));
        let transcript = self.conn.recorder.as_ref().map(|r| {
            let last = String::from_utf8_lossy(&done.to_bytes())
                .trim_end()
                .to_string();
            r.snapshot(
                &[(Direction::Server, last)],
                self.conn.peer.to_string(),
                self.listener.name(),
            )
        });
        let store = self.shared.store.clone();
        // RFC 6376: mail an authenticated user sends out is signed once, here, before it is
        // queued, so every retry sends the same signed octets. Signing reads the store and
        // hashes the message: on a blocking thread, and only when DKIM signing is on.
        let sign = self.auth.is_some() && !remote.is_empty() && self.shared.dkim.enabled();
        let (prefix, body) = if sign {
            let shared = self.shared.clone();
            let signed = tokio::task::spawn_blocking(move || {
                let signature = delivery::dkim_signature(
                    &shared.store,
                    &shared.dkim,
                    &shared.config,
                    &[prefix.as_bytes(), &body],
                );
                (signature + &prefix, body)
            })
            .await;
            match signed {
                Ok(signed) => signed,
                Err(e) => return self.stored(Err(e), &id, n_rcpt, done),
            }
        } else {
            (prefix, body)
        };
        let accepted = Accepted {
            sender,
            local,
            remote,
            prefix,
            body,
            transcript,
        };
        if quarantine {
            let result =
                tokio::task::spawn_blocking(move || delivery::store_quarantined(&store, accepted))
                    .await;
            return self.stored(result, &id, n_rcpt, done);
        }
        // The common case: only the commit to wait for, which the store does without a
        // thread waiting on it. Mail for other domains is claimed in the same commit for this
        // node's queue runner and handed to it (queue::Handoffs).
        let handoffs = &self.shared.queue_handoffs;
        let claim_until = if accepted.remote.is_empty() {
            0
        } else {
            handoffs.claim_until(&self.shared.config)
        };
        let delivery = delivery::delivery_of(accepted, claim_until);
        let carried = delivery
            .outbound
            .as_ref()
            .filter(|_| claim_until > 0)
            .and_then(|o| crate::queue::Handoffs::carry(&o.message));
        let result = store.deliver_async(delivery).await;
        if let Ok(entry) = result.as_ref().map(|r| r.queued_entry.as_ref()) {
            if let Some(entry) = entry.filter(|_| claim_until > 0) {
                handoffs.push(crate::queue::Handoff {
                    entry: entry.clone(),
                    lease: claim_until,
                    message: carried,
                });
            }
        }
        self.stored(Ok(result), &id, n_rcpt, done)
    }

    /// Answers the end of data after the store's commit: `done` when it is durable.
    fn stored(
        &mut self,
        result: Result<
            Result<mailroom_store::Receipt, mailroom_store::StoreError>,
            tokio::task::JoinError,
        >,
        id: &str,
        n_rcpt: usize,
        done: Reply,
    ) -> Flow {
        match result {
            Ok(Ok(receipt)) => {
                if receipt.queued.is_some() {
                    self.shared.queue_notify.notify_one();
                }
                tracing::info!(
                    session = self.id,
                    id = %id,
                    recipients = n_rcpt,
                    local = receipt.local.len(),
                    queued = receipt.queued.map(|q| q.0),
                    "message accepted"
                );
                self.shared.metrics.local_deliveries(receipt.local.len());
                self.reply(done);
                if let Some(r) = self.conn.recorder.as_mut() {
                    r.end_transaction();
                }
                Flow::Continue
            }
            Ok(Err(e)) if e.is_storage_full() => {
                // Not the client's mistake: not counted towards max_errors.
                tracing::error!(session = self.id, error = %e, "storing a message failed: storage full");
                self.reply(Refusal::StorageFull.reply());
                Flow::Continue
            }
            Ok(Err(e)) => {
                tracing::error!(session = self.id, error = %e, "storing a message failed");
                self.refuse(Refusal::StoreFailed)
            }
            Err(e) => {
                tracing::error!(session = self.id, error = %e, "storing a message panicked");
                self.refuse(Refusal::StoreFailed)
            }
        }
    }
}
