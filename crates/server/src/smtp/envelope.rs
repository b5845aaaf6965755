//! The envelope of a mail transaction: MAIL FROM with its parameters (RFC 5321 §4.1.1.2,
//! SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531), RCPT TO with recipient resolution,
//! relay policy and quotas (§4.1.1.3) and RSET (§4.1.1.5).

use mailroom_proto::smtp::{Address, ForwardPath, Param, ReversePath};

use super::{Envelope, Flow, Recipient, Refusal, Session, State};
use crate::delivery::{self, Route, Target};
use crate::metrics::FaultStage;
use crate::ListenerKind;

impl Session {
    pub(super) async fn mail(&mut self, from: ReversePath, params: Vec<Param>) -> Flow {
        match self.state {
            State::Connected => return self.refuse(Refusal::HeloFirst),
            State::Greeted => {}
            _ => return self.refuse(Refusal::NestedMail),
        }
        if let Some(flow) = self.injected(FaultStage::Mail) {
            return flow;
        }
        // Capture mode: no listener insists on AUTH.
        if self.kind == ListenerKind::Submission && self.auth.is_none() && self.capture().is_none()
        {
            if !self.auth_allowed() {
                return self.refuse(Refusal::StartTlsFirst);
            }
            return self.refuse(Refusal::AuthRequired);
        }
        // A session sends only as the account that logged in, as it is now: once that
        // account is removed or its password changed, the session ends.
        if let Some(account) = self.auth.clone() {
            let id = account.id;
            let now =
                crate::session::quick_read(&self.shared.store, move |s| s.account_by_id(id)).await;
            match now {
                Ok(Ok(now))
                    if now
                        .as_ref()
                        .is_some_and(|a| a.password_hash == account.password_hash) => {}
                Ok(Ok(_)) => {
                    let host = self.host().to_string();
                    self.conn
                        .trace
                        .note("account removed or password changed; closing");
                    self.ok(
                        421,
                        "4.7.0",
                        format!("{host} Your account was removed or its password was changed; log in again. Closing connection"),
                    );
                    return Flow::Close;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot check the session's account");
                    return self.refuse(Refusal::StoreFailed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "account check task failed");
                    return self.refuse(Refusal::StoreFailed);
                }
            }
        }
        let mut smtputf8 = false;
        let mut declared_size = None;
        let limit = self.shared.config.limits.max_message_size;
        for p in &params {
            match p.keyword.as_str() {
                // RFC 1870 §6: a declared size over the limit is refused at MAIL.
                "SIZE" => match p.value.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                    Some(n) if n > limit => {
                        return self.refuse(Refusal::SizeDeclaredTooBig { limit })
                    }
                    // Kept for the quota check at RCPT; SIZE=0 tells nothing.
                    Some(n) => declared_size = (n > 0).then_some(n),
                    None => {
                        return self.refuse(Refusal::BadParamValue {
                            keyword: "SIZE".into(),
                            hint: "SIZE=<number of octets>",
                        })
                    }
                },
                // RFC 6152: BODY=7BIT or BODY=8BITMIME.
                "BODY" => match p.value.as_deref().map(|v| v.to_ascii_uppercase()) {
                    Some(v) if v == "7BIT" || v == "8BITMIME" => {}
                    _ => {
                        return self.refuse(Refusal::BadParamValue {
                            keyword: "BODY".into(),
                            hint: "use BODY=7BIT or BODY=8BITMIME",
                        })
                    }
                },
                "SMTPUTF8" if p.value.is_none() => smtputf8 = true,
                // RFC 4954 §5: AUTH= on MAIL is informational; we trust only our own AUTH.
                "AUTH" => {}
                other => {
                    return self.refuse(Refusal::UnknownParam {
                        verb: "MAIL",
                        keyword: other.to_string(),
                    })
                }
            }
        }
        if let ReversePath::Address(a) = &from {
            // RFC 6531 §3.4: non-ASCII addresses need SMTPUTF8.
            if !a.is_ascii() && !smtputf8 {
                return self.refuse(Refusal::NeedSmtpUtf8);
            }
        }
        if let Some(user) = &self.auth {
            let owned = match &from {
                ReversePath::Address(a) => a.to_string().eq_ignore_ascii_case(&user.address),
                ReversePath::Null => false,
            };
            if !owned {
                let user = user.address.clone();
                return self.refuse(Refusal::SenderNotOwned {
                    sender: from.to_string(),
                    user,
                });
            }
        }
        let shown = from.to_string();
        self.state = State::Mail(Envelope {
            from,
            smtputf8,
            declared_size,
            rcpts: Vec::new(),
        });
        self.ok(250, "2.1.0", format!("Sender {shown} ok"));
        Flow::Continue
    }

    pub(super) async fn rcpt(&mut self, to: ForwardPath, params: Vec<Param>) -> Flow {
        let env = match &self.state {
            State::Mail(e) | State::Rcpt(e) => e,
            State::Bdat { .. } => return self.refuse(Refusal::NestedMail),
            _ => return self.refuse(Refusal::MailFirst),
        };
        if let Some(p) = params.first() {
            return self.refuse(Refusal::UnknownParam {
                verb: "RCPT",
                keyword: p.keyword.clone(),
            });
        }
        let limit = self.shared.config.limits.max_recipients;
        if env.rcpts.len() >= limit {
            return self.refuse(Refusal::TooManyRecipients { limit });
        }
        let smtputf8 = env.smtputf8;
        let declared_size = env.declared_size;
        if let Some(flow) = self.injected(FaultStage::Rcpt) {
            return flow;
        }
        let to_postmaster = match &to {
            ForwardPath::Postmaster => true,
            ForwardPath::Address(a) => a.local.eq_ignore_ascii_case("postmaster"),
        };
        let address: Address = match to {
            ForwardPath::Address(a) => a,
            // RFC 5321 §4.5.1: <Postmaster> must be accepted; it goes to postmaster@ a local domain.
            ForwardPath::Postmaster => match self.postmaster().await {
                Some(a) => a,
                None => return self.refuse(Refusal::NoPostmaster),
            },
        };
        if !address.is_ascii() && !smtputf8 {
            return self.refuse(Refusal::NeedSmtpUtf8);
        }
        let text = address.to_string();
        let shared = self.shared.clone();
        let lookup = text.clone();
        // RFC 5321 §4.5.1: mail to the postmaster must get through, so that people can report
        // problems (a full mailbox among them): no quota check for it.
        let check_quota = !to_postmaster;
        let looked = if shared.capture.is_some() {
            // Capture mode: every address is filed under its own account, made on first use
            // (a write: on a blocking thread).
            tokio::task::spawn_blocking(move || {
                let Some(capture) = &shared.capture else {
                    return Ok((Route::UnknownUser, None));
                };
                let account = capture.account_for(&shared.store, &lookup)?;
                let target = Target::Account {
                    account: account.id,
                    address: account.address,
                };
                Ok::<_, mailroom_store::StoreError>((Route::Local(vec![target]), None))
            })
            .await
        } else {
            // The lookups read a few rows by key (alias, account, its usage).
            let store = shared.store.clone();
            crate::session::quick_read(&store, move |_| {
                let route = delivery::resolve(&shared.store, &lookup)?;
                let full = match &route {
                    Route::Local(targets) if check_quota => delivery::full_target(
                        shared.store.as_ref(),
                        &shared.config,
                        targets,
                        declared_size,
                    )?,
                    _ => None,
                };
                Ok::<_, mailroom_store::StoreError>((route, full))
            })
            .await
        };
        let (route, full) = match looked {
            Ok(Ok(r)) => r,
            other => {
                if let Ok(Err(e)) = other {
                    tracing::error!(session = self.id, error = %e, "recipient lookup failed");
                }
                self.ok(
                    451,
                    "4.3.0",
                    "Temporary failure looking up the recipient; try again later",
                );
                return Flow::Continue;
            }
        };
        if let Some(full) = full {
            // RFC 5321 §4.2.5 452 / RFC 3463 X.2.2: a full mailbox refuses this recipient
            // only, for now; the others of the transaction go on. Not the client's mistake,
            // so not counted towards max_errors (a list server with many full recipients is
            // not cut off).
            tracing::info!(session = self.id, rcpt = %text, account = %full, declared = ?declared_size, "recipient refused: mailbox over quota");
            let r = Refusal::MailboxFull {
                address: text,
                declared: declared_size,
            };
            self.reply(r.reply());
            return Flow::Continue;
        }
        let (targets, relayed) = match route {
            Route::Local(targets) => (targets, false),
            Route::UnknownUser => return self.refuse(Refusal::UnknownUser(text)),
            Route::Remote { address } => {
                if self.auth.is_none() {
                    return self.refuse(Refusal::RelayDenied(text));
                }
                (vec![Target::Remote { address }], true)
            }
        };
        let rcpt = Recipient {
            address: text.clone(),
            targets,
        };
        let env = match std::mem::replace(&mut self.state, State::Greeted) {
            State::Mail(e) | State::Rcpt(e) => e,
            other => {
                self.state = other;
                return self.refuse(Refusal::MailFirst);
            }
        };
        let mut env = env;
        env.rcpts.push(rcpt);
        self.state = State::Rcpt(env);
        if relayed {
            self.ok(
                250,
                "2.1.5",
                format!("Recipient <{text}> ok (will be relayed)"),
            );
        } else {
            self.ok(250, "2.1.5", format!("Recipient <{text}> ok"));
        }
        Flow::Continue
    }

    /// The local address that receives mail for `<Postmaster>`: `postmaster@` the host name's
    /// domain or a local domain, whichever resolves (account, alias or catch-all).
    pub(super) async fn postmaster(&self) -> Option<Address> {
        let store = self.shared.store.clone();
        let host = self.host().to_string();
        tokio::task::spawn_blocking(move || {
            let mut domains = vec![host.to_ascii_lowercase()];
            domains.extend(store.list_domains().ok()?);
            domains.into_iter().find_map(|d| {
                let a = format!("postmaster@{d}");
                match delivery::resolve(&store, &a) {
                    Ok(Route::Local(_)) => Address::parse(&a).ok(),
                    _ => None,
                }
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// RSET (RFC 5321 §4.1.1.5): the transaction is forgotten, the greeting is kept.
    pub(super) fn rset(&mut self) -> Flow {
        if !matches!(self.state, State::Connected) {
            self.state = State::Greeted;
        }
        self.ok(250, "2.0.0", "Ok, transaction reset");
        Flow::Continue
    }
}
