//! Keeping a session's view current: [`Session::verify`] before every command (the account
//! and the selected mailbox are still this session's), [`Session::sync`] after it (the
//! untagged EXISTS, EXPUNGE, FETCH and RECENT responses for what others changed, found by
//! polling the mailbox row, see [`super::selected`]; then the ADDTO / REMOVEFROM of updating
//! searches, see [`super::updates`]; then the STATUS of mailboxes watched with NOTIFY, see
//! [`super::notify`]).

use mailroom_proto::imap::response::{Response, Status};
use mailroom_store::{MailboxInfo, Store};

use super::error::ImapError;
use super::{Session, State};

impl Session {
    /// Checks, in one store call, that the account that logged in is still there with the
    /// same password, and that the selected mailbox (if any) is still the one selected: not
    /// deleted, not renamed (a new UIDVALIDITY). Either change ends the session with `* BYE`:
    /// the account's mail is no longer this session's to see, and the UIDs it holds name
    /// nothing any more. Returns the selected mailbox as it is now.
    pub(super) async fn verify(&mut self) -> Result<Option<MailboxInfo>, ImapError> {
        let (account, selected) = match &self.state {
            State::NotAuthenticated => return Ok(None),
            State::Authenticated(a) => (a.clone(), None),
            State::Selected(a, sel) => (a.clone(), Some((sel.id, sel.uidvalidity))),
        };
        let id = account.id;
        let mailbox = selected.map(|(m, _)| m);
        let (now, info) = self.quick(move |s| s.session_state(id, mailbox)).await?;
        if now.is_none_or(|a| a.password_hash != account.password_hash) {
            return Err(ImapError::Bye(
                "your account was removed or its password was changed; log in again".into(),
            ));
        }
        if let Some((_, uidvalidity)) = selected {
            match &info {
                None => {
                    return Err(ImapError::Bye(
                        "the selected mailbox was deleted by another session; closing".into(),
                    ))
                }
                Some(i) if i.uidvalidity != uidvalidity => {
                    return Err(ImapError::Bye(
                        "the selected mailbox was renamed or made again by another session (its UIDVALIDITY changed); closing".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(info)
    }

    /// Takes the messages up to `top` as this session's `\\Recent` ones (the store's
    /// `claim_recent`); returns the UID above which they are this session's. When the store
    /// cannot write (a full disk), the session only looks, as EXAMINE does (`seen`): reading a
    /// mailbox must never fail for want of recording who saw it first.
    pub(super) async fn claim_recent(
        &self,
        id: mailroom_store::MailboxId,
        top: u32,
        seen: u32,
    ) -> u32 {
        let store: Store = self.shared.store.clone();
        match tokio::task::spawn_blocking(move || store.claim_recent(id, top)).await {
            Ok(Ok(prev)) => prev,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot record \\Recent; the session only looks");
                seen
            }
            Err(_) => seen,
        }
    }

    /// A CONDSTORE-enabling command (RFC 7162 §3.1: FETCH MODSEQ, CHANGEDSINCE, STORE
    /// UNCHANGEDSINCE, SEARCH MODSEQ, STATUS HIGHESTMODSEQ). The first one while a mailbox
    /// is selected without CONDSTORE gets `* OK [HIGHESTMODSEQ n]` (§3.1.2.1: the client
    /// learns the value it would have had from SELECT).
    pub(super) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(modseq) = self.selected().map(|sel| sel.seen_modseq) {
            self.respond(&Response::untagged(
                Status::Ok,
                Some(&format!("HIGHESTMODSEQ {modseq}")),
                "highest mod-sequence",
            ));
        }
    }

    /// Brings the selected mailbox up to date and sends the untagged responses, then the
    /// updates of RFC 5267 contexts (`updates.rs`).
    pub(super) async fn sync(&mut self, allow_expunge: bool) -> Result<(), ImapError> {
        self.sync_mailbox(allow_expunge).await?;
        self.update_contexts().await?;
        self.notify_sync().await
    }

    /// Brings the selected mailbox up to date and queues the untagged responses.
    async fn sync_mailbox(&mut self, allow_expunge: bool) -> Result<(), ImapError> {
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let id = sel.id;
        let info = match self.checked.take() {
            Some(info) => info,
            None => self.verify().await?,
        };
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        if !sel.changed(info.as_ref()) {
            return Ok(());
        }
        let since = sel.seen_modseq;
        let list = if info.is_some() {
            let changes = self.store(move |s| s.mailbox_changes(id, since)).await?;
            match self.selected().and_then(|sel| sel.rebuild(changes)) {
                Some(list) => list,
                None => self.store(move |s| s.list_messages(id)).await?,
            }
        } else {
            Vec::new()
        };
        let with_modseq = self.condstore;
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let before = sel.msgs.last().map_or(0, |m| m.uid);
        let read_only = sel.read_only;
        let mut responses = sel.apply(info.as_ref(), &list, allow_expunge, with_modseq);
        // New messages: \Recent for this session if no other session was told of them first.
        let top = sel.msgs.last().map_or(0, |m| m.uid);
        if top > before {
            let seen = info.as_ref().map_or(top, |i| i.recent_uid);
            let after = if read_only {
                seen
            } else {
                self.claim_recent(id, top, seen).await
            };
            let rev1 = !self.rev2;
            if let Some(sel) = self.selected() {
                if rev1 {
                    let recent = sel.mark_recent(after.max(before), top);
                    // RFC 3501 §7.3.2: RECENT follows the EXISTS that announced them.
                    let exists = responses.iter().position(
                        |r| matches!(r, Response::Numbered { keyword, .. } if keyword == "EXISTS"),
                    );
                    if let Some(i) = exists {
                        responses.insert(i + 1, Response::recent(recent as u32));
                    }
                }
            }
        }
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        // New keywords (set by another session) are announced before the FETCH that shows them.
        if sel.learn_keywords() {
            for r in sel.flags_responses() {
                self.respond(&r);
            }
        }
        for r in &responses {
            self.respond(r);
        }
        Ok(())
    }
}
