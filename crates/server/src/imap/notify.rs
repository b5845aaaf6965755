//! NOTIFY (RFC 5465): the session watches mailboxes other than the selected one and sends an
//! untagged STATUS when one changes.
//!
//! What is supported: the filters `selected`, `selected-delayed`, `inboxes` (INBOX),
//! `personal` (all the account's mailboxes), `subscribed`, `subtree` and `mailboxes`; the
//! events MessageNew (without fetch attributes), MessageExpunge and FlagChange; the STATUS
//! indicator. The selected mailbox keeps its usual EXISTS / EXPUNGE / FETCH (whatever the
//! `selected` group says). Any other event (AnnotationChange, MailboxName,
//! SubscriptionChange, the METADATA ones, MessageNew with fetch attributes) is answered
//! `NO [BADEVENT]` and the previous notify set stays.
//!
//! Changes are found where the session already looks for them: at the sync after every
//! command and at every IDLE poll, [`Session::notify_sync`] lists the account's mailboxes (one
//! store call) and compares each watched one with a small snapshot (UIDVALIDITY, UIDNEXT,
//! HIGHESTMODSEQ, messages); only one whose row changed is counted again. Names are only
//! ever looked up in the session's own account: a name of another account's mailbox is a
//! name that does not exist, and nothing is ever said about it.

use std::collections::HashMap;

use mailroom_proto::imap::response::{Response, Status};
use mailroom_proto::imap::{NotifyEvent, NotifyFilter, NotifySet};
use mailroom_store::{MailboxId, MailboxInfo};

use super::error::ImapError;
use super::names::{normalize_mailbox, DELIM};
use super::{ok, Done, Session};

/// How many mailboxes one session may watch. Every sync point compares each of them (and
/// counts the changed ones again), so the work per command grows with this; beyond it the
/// request is refused with `NO [NOTIFICATIONOVERFLOW]` (RFC 5465 §5.8 lets the server give
/// up on notifications it cannot keep up with), and a set that grows past it later (new
/// mailboxes under `personal`) is dropped with an untagged `OK [NOTIFICATIONOVERFLOW]`.
const MAX_WATCHED: usize = 1000;

/// The events a group asks for, as far as STATUS goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Events {
    new: bool,
    expunge: bool,
    flags: bool,
}

impl Events {
    fn any(self) -> bool {
        self.new || self.expunge || self.flags
    }
    /// The STATUS attributes for these events (as Dovecot sends them).
    fn items(self) -> Vec<&'static str> {
        let mut items = Vec::new();
        if self.new || self.expunge {
            items.push("MESSAGES");
        }
        if self.new {
            items.push("UIDNEXT");
        }
        if self.new || self.flags {
            items.push("UIDVALIDITY");
        }
        if self.flags {
            items.push("HIGHESTMODSEQ");
        }
        items
    }
}

/// What the session last knew of a watched mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    uidvalidity: u32,
    uidnext: u32,
    modseq: u64,
    messages: u64,
}

/// The session's notify set (RFC 5465 §3.1): replaced by every NOTIFY SET, gone with NOTIFY
/// NONE and with the session.
#[derive(Debug, Default)]
pub(super) struct Notify {
    /// The groups about other mailboxes than the selected one (names in the store's UTF-8).
    groups: Vec<(NotifyFilter, Events)>,
    watched: HashMap<MailboxId, Snapshot>,
}

impl Notify {
    /// The events watched for `b`, if any group names it.
    fn events_for(&self, b: &MailboxInfo) -> Option<Events> {
        let mut ev = Events::default();
        for (filter, e) in &self.groups {
            let hit = match filter {
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
                NotifyFilter::Inboxes => b.name == "INBOX",
                NotifyFilter::Personal => true,
                NotifyFilter::Subscribed => b.subscribed,
                NotifyFilter::Mailboxes(names) => names.contains(&b.name),
                NotifyFilter::Subtree(names) => names.iter().any(|n| {
                    b.name == *n
                        || b.name
                            .strip_prefix(n.as_str())
                            .is_some_and(|r| r.starts_with(DELIM))
                }),
            };
            if hit {
                ev.new |= e.new;
                ev.expunge |= e.expunge;
                ev.flags |= e.flags;
            }
        }
        ev.any().then_some(ev)
    }
}

/// The events of a group, or the first one this server does not support.
fn events(list: &[NotifyEvent]) -> Result<Events, String> {
    let mut ev = Events::default();
    for e in list {
        match e {
            NotifyEvent::MessageNew(atts) if atts.is_empty() => ev.new = true,
            NotifyEvent::MessageNew(_) => {
                return Err("MessageNew with fetch attributes".into());
            }
            NotifyEvent::MessageExpunge => ev.expunge = true,
            NotifyEvent::FlagChange => ev.flags = true,
            NotifyEvent::AnnotationChange => return Err("AnnotationChange".into()),
            NotifyEvent::MailboxName => return Err("MailboxName".into()),
            NotifyEvent::SubscriptionChange => return Err("SubscriptionChange".into()),
            NotifyEvent::MailboxMetadataChange => return Err("MailboxMetadataChange".into()),
            NotifyEvent::ServerMetadataChange => return Err("ServerMetadataChange".into()),
            NotifyEvent::Other(name) => return Err(name.chars().take(40).collect()),
        }
    }
    Ok(ev)
}

impl Session {
    /// The names of a NOTIFY SET from the wire into the store's UTF-8 (with INBOX's case).
    pub(super) fn notify_names_from_wire(
        &self,
        mut set: NotifySet,
    ) -> Result<NotifySet, ImapError> {
        for g in &mut set.groups {
            if let NotifyFilter::Mailboxes(names) | NotifyFilter::Subtree(names) = &mut g.filter {
                for n in names.iter_mut() {
                    *n = normalize_mailbox(&self.name_from_wire(std::mem::take(n))?);
                }
            }
        }
        Ok(set)
    }

    /// NOTIFY NONE / NOTIFY SET (RFC 5465 §3.1).
    pub(super) async fn notify(&mut self, set: Option<NotifySet>) -> Result<Done, ImapError> {
        let Some(set) = set else {
            self.notify = None;
            return ok("NOTIFY completed; no more notifications");
        };
        let mut groups = Vec::new();
        for g in &set.groups {
            let ev = events(&g.events).map_err(|e| {
                ImapError::no(
                    "BADEVENT",
                    format!("{e} is not supported; this server notifies of MessageNew, MessageExpunge and FlagChange"),
                )
            })?;
            if !g.filter.is_selected() {
                groups.push((g.filter.clone(), ev));
            }
        }
        let mut notify = Notify {
            groups,
            watched: HashMap::new(),
        };
        let account = self.account_id()?;
        let boxes = self.quick(move |s| s.list_mailboxes(account)).await?;
        let watched: Vec<(MailboxInfo, Events)> = boxes
            .into_iter()
            .filter_map(|b| notify.events_for(&b).map(|e| (b, e)))
            .collect();
        if watched.len() > MAX_WATCHED {
            return Err(ImapError::no(
                "NOTIFICATIONOVERFLOW",
                format!("a session may watch at most {MAX_WATCHED} mailboxes; name fewer"),
            ));
        }
        let selected = self.selected().map(|s| s.id);
        for (b, ev) in watched {
            let id = b.id;
            let counts = self.quick(move |s| s.mailbox_counts(id)).await?;
            notify.watched.insert(b.id, snapshot(&b, counts.messages));
            // RFC 5465 §3.1: with STATUS, the state of each mailbox now (not the selected one).
            if set.status && Some(b.id) != selected {
                self.send_status(&b, counts.messages, ev);
            }
        }
        self.notify = Some(notify);
        ok("NOTIFY completed")
    }

    fn send_status(&mut self, b: &MailboxInfo, messages: u64, ev: Events) {
        let parts: Vec<(&str, u64)> = ev
            .items()
            .into_iter()
            .map(|i| {
                let v = match i {
                    "MESSAGES" => messages,
                    "UIDNEXT" => u64::from(b.uidnext),
                    "UIDVALIDITY" => u64::from(b.uidvalidity),
                    _ => b.highest_modseq,
                };
                (i, v)
            })
            .collect();
        let name = self.name_to_wire(&b.name);
        self.respond(&Response::status(name.as_bytes(), &parts));
    }

    /// At a sync point: an untagged STATUS for each watched mailbox (not the selected one)
    /// that changed in a way its events ask about.
    pub(super) async fn notify_sync(&mut self) -> Result<(), ImapError> {
        let Some(mut notify) = self.notify.take() else {
            return Ok(());
        };
        let account = self.account_id()?;
        let boxes = self.quick(move |s| s.list_mailboxes(account)).await?;
        let selected = self.selected().map(|s| s.id);
        let mut seen = HashMap::new();
        for b in boxes {
            let Some(ev) = notify.events_for(&b) else {
                continue;
            };
            if seen.len() >= MAX_WATCHED {
                self.respond(&Response::untagged(
                    Status::Ok,
                    Some("NOTIFICATIONOVERFLOW"),
                    "too many mailboxes to watch; notifications are off (NOTIFY SET again with fewer)",
                ));
                return Ok(());
            }
            let before = notify.watched.get(&b.id).copied();
            let row_same = before.is_some_and(|s| {
                s.uidvalidity == b.uidvalidity
                    && s.uidnext == b.uidnext
                    && s.modseq == b.highest_modseq
            });
            if row_same {
                seen.insert(b.id, before.expect("checked"));
                continue;
            }
            let id = b.id;
            let counts = self.quick(move |s| s.mailbox_counts(id)).await?;
            let now = snapshot(&b, counts.messages);
            seen.insert(b.id, now);
            // A mailbox new to the set (created since) is only noted; the selected one keeps
            // its own updates.
            let Some(before) = before else { continue };
            if Some(b.id) == selected {
                continue;
            }
            let added = u64::from(now.uidnext.saturating_sub(before.uidnext));
            let new = now.uidnext != before.uidnext || now.uidvalidity != before.uidvalidity;
            let expunged = now.messages < before.messages + added;
            let changed = now.modseq != before.modseq;
            if (new && ev.new) || (expunged && ev.expunge) || (changed && ev.flags) {
                self.send_status(&b, now.messages, ev);
            }
        }
        notify.watched = seen;
        self.notify = Some(notify);
        Ok(())
    }
}

fn snapshot(b: &MailboxInfo, messages: u64) -> Snapshot {
    Snapshot {
        uidvalidity: b.uidvalidity,
        uidnext: b.uidnext,
        modseq: b.highest_modseq,
        messages,
    }
}
