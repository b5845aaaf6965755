//! The commands on whole mailboxes of the authenticated state (RFC 9051 §6.3): SELECT and
//! EXAMINE (the way into the selected state), CREATE, DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE and NAMESPACE (RFC 2342); and the lookup of a mailbox by name that the
//! other commands share. LIST, LSUB and STATUS are in `list.rs`.

use mailroom_proto::imap::response::{Response, Status, Value};
use mailroom_store::MailboxInfo;

use super::error::ImapError;
use super::names::{normalize_mailbox, DELIM};
use super::selected::Selected;
use super::{ok, ok_code, Done, Session, State};

impl Session {
    pub(super) async fn find_mailbox(&self, name: &str) -> Result<Option<MailboxInfo>, ImapError> {
        let Some(acct) = self.account().map(|a| a.id) else {
            return Ok(None);
        };
        let name = normalize_mailbox(name);
        self.quick(move |s| s.mailbox(acct, &name)).await
    }

    pub(super) async fn must_mailbox(
        &self,
        name: &str,
        code: &'static str,
    ) -> Result<MailboxInfo, ImapError> {
        self.find_mailbox(name)
            .await?
            .ok_or_else(|| self.no_mailbox(name, code))
    }

    /// `NO [code] there is no mailbox ...` (with a hint to CREATE it for TRYCREATE).
    pub(super) fn no_mailbox(&self, name: &str, code: &'static str) -> ImapError {
        ImapError::no(
            code,
            format!(
                "there is no mailbox {}{}",
                self.show_name(&normalize_mailbox(name)),
                if code == "TRYCREATE" {
                    "; CREATE it first"
                } else {
                    ""
                }
            ),
        )
    }

    /// Back to the authenticated state with `* OK [CLOSED]` (RFC 9051 §7.1) if a mailbox
    /// is selected.
    pub(super) fn leave_selected(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Selected(a, _) => {
                self.respond(&Response::untagged(
                    Status::Ok,
                    Some("CLOSED"),
                    "previous mailbox closed",
                ));
                State::Authenticated(a)
            }
            other => other,
        };
    }

    pub(super) async fn select(&mut self, name: &str, read_only: bool) -> Result<Done, ImapError> {
        // RFC 9051 §6.3.2: a SELECT first deselects the current mailbox, even if it fails.
        self.leave_selected();
        let account = match &self.state {
            State::Authenticated(a) => a.clone(),
            _ => return Err(ImapError::bad("log in first")),
        };
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let id = info.id;
        let listed = self.listing(&info).await?;
        let first_unseen = listed.first_unseen;
        let mut sel = Selected::shared(id, info.name.clone(), read_only, &info, listed);
        // RFC 3501 §2.3.2: the messages no session was told of yet are \Recent for this one;
        // a read-write session takes them (later sessions do not see them recent), EXAMINE
        // only looks. RFC 9051 dropped \Recent: IMAP4rev2 sessions see none, but still take.
        let top = sel.msgs.last().map_or(0, |m| m.uid);
        let after = if read_only {
            info.recent_uid
        } else {
            self.claim_recent(id, top, info.recent_uid).await
        };
        let recent = if self.rev2 {
            0
        } else {
            sel.mark_recent(after, top)
        };
        let [flags, permanent] = sel.flags_responses();
        let code_ok = |code: String, text: &str| Response::untagged(Status::Ok, Some(&code), text);
        let mut responses = vec![flags, sel.exists()];
        if !self.rev2 {
            // RFC 3501 §7.3.2.
            responses.push(Response::recent(recent as u32));
            if let Some(i) = first_unseen {
                responses.push(code_ok(format!("UNSEEN {}", i + 1), "first unseen message"));
            }
        }
        responses.extend([
            code_ok(format!("UIDVALIDITY {}", sel.uidvalidity), "UIDs valid"),
            code_ok(format!("UIDNEXT {}", info.uidnext), "predicted next UID"),
            // RFC 7162 §3.1.2.1.
            code_ok(
                format!("HIGHESTMODSEQ {}", info.highest_modseq),
                "highest mod-sequence",
            ),
            permanent,
        ]);
        if self.rev2 {
            // RFC 9051 §6.3.2: the mailbox's name as LIST gives it.
            let name = self.name_to_wire(&info.name);
            responses.push(Response::list("LIST", &[] as &[&str], "/", name.as_bytes()));
        }
        for r in &responses {
            self.respond(r);
        }
        self.state = State::Selected(account, Box::new(sel));
        if read_only {
            ok_code("READ-ONLY".into(), "EXAMINE completed")
        } else {
            ok_code("READ-WRITE".into(), "SELECT completed")
        }
    }

    pub(super) async fn create(&mut self, name: &str) -> Result<Done, ImapError> {
        let n = self.check_name(name)?;
        if n == "INBOX" {
            return Err(ImapError::no("ALREADYEXISTS", "INBOX always exists"));
        }
        let acct = self.account_id()?;
        if self.find_mailbox(&n).await?.is_some() {
            return Err(ImapError::no(
                "ALREADYEXISTS",
                format!("mailbox {} already exists", self.show_name(&n)),
            ));
        }
        // RFC 9051 §6.3.4: create the superior levels that are missing.
        let levels: Vec<&str> = n.split(DELIM).collect();
        for i in 1..levels.len() {
            let parent = levels[..i].join("/");
            if parent != "INBOX" && self.find_mailbox(&parent).await?.is_none() {
                let p2 = parent.clone();
                self.store(move |s| s.create_mailbox(acct, &p2))
                    .await
                    .map_err(|e| self.name_store_error(e, &parent, &parent))?;
            }
        }
        let n2 = n.clone();
        self.store(move |s| s.create_mailbox(acct, &n2))
            .await
            .map_err(|e| self.name_store_error(e, &n, &n))?;
        ok("CREATE completed")
    }

    pub(super) async fn delete(&mut self, name: &str) -> Result<Done, ImapError> {
        let n = normalize_mailbox(name);
        if n == "INBOX" {
            return Err(ImapError::no("CANNOT", "INBOX cannot be deleted"));
        }
        let info = self.must_mailbox(&n, "NONEXISTENT").await?;
        let id = info.id;
        self.store(move |s| s.delete_mailbox(id)).await?;
        if self.selected().is_some_and(|s| s.id == id) {
            // The selected mailbox is gone: back to Authenticated (RFC 9051 §6.3.5).
            self.close_mailbox(false).await?;
            self.respond(&Response::untagged(
                Status::Ok,
                Some("CLOSED"),
                "the selected mailbox was deleted",
            ));
        }
        ok("DELETE completed")
    }

    pub(super) async fn rename(&mut self, from: &str, to: &str) -> Result<Done, ImapError> {
        let from = normalize_mailbox(from);
        let to = self.check_name(to)?;
        let acct = self.account_id()?;
        let src = self.must_mailbox(&from, "NONEXISTENT").await?;
        if self.find_mailbox(&to).await?.is_some() || to == "INBOX" {
            return Err(ImapError::no(
                "ALREADYEXISTS",
                format!("mailbox {} already exists", self.show_name(&to)),
            ));
        }
        if from == "INBOX" {
            // RFC 9051 §6.3.6: renaming INBOX moves its messages to the new mailbox and
            // leaves INBOX empty.
            let to2 = to.clone();
            let new_id = self
                .store(move |s| s.create_mailbox(acct, &to2))
                .await
                .map_err(|e| self.name_store_error(e, &to, &from))?;
            let src_id = src.id;
            let list = self.store(move |s| s.list_messages(src_id)).await?;
            let uids: Vec<u32> = list.iter().map(|m| m.uid).collect();
            self.store(move |s| s.copy_messages(src_id, &uids, new_id, true))
                .await?;
            return ok("RENAME completed");
        }
        let (f, t) = (from.clone(), to.clone());
        self.store(move |s| s.rename_mailbox(acct, &f, &t))
            .await
            .map_err(|e| self.name_store_error(e, &to, &from))?;
        // This session renamed its own selected mailbox (or one above it): it stays
        // selected under the new name and UIDVALIDITY (other sessions that have it selected
        // see the UIDVALIDITY change and are closed by `verify`).
        if let Some(id) = self.selected().map(|sel| sel.id) {
            if let Some(info) = self.quick(move |s| s.mailbox_by_id(id)).await? {
                if let Some(sel) = self.selected() {
                    sel.name = info.name;
                    sel.uidvalidity = info.uidvalidity;
                }
            }
        }
        ok("RENAME completed")
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): a subscription is a name, kept
    /// whether or not the mailbox exists (and after it is deleted).
    pub(super) async fn subscribe(&mut self, name: &str, on: bool) -> Result<Done, ImapError> {
        let acct = self.account_id()?;
        let name = self.check_name(name)?;
        let key = name.clone();
        let changed = self.store(move |s| s.subscribe(acct, &key, on)).await?;
        if on {
            return ok("SUBSCRIBE completed");
        }
        if !changed {
            return Err(ImapError::no(
                "NONEXISTENT",
                format!(
                    "{} is not subscribed; LSUB \"\" * lists what is",
                    self.show_name(&name)
                ),
            ));
        }
        ok("UNSUBSCRIBE completed")
    }

    /// NAMESPACE (RFC 2342): one personal namespace (prefix "", delimiter "/"), no others.
    pub(super) fn namespace(&mut self) -> Result<Done, ImapError> {
        let personal = Value::List(vec![Value::string(b""), Value::string(b"/")]);
        self.respond(&Response::data(
            "NAMESPACE",
            vec![Value::List(vec![personal]), Value::Nil, Value::Nil],
        ));
        ok("NAMESPACE completed")
    }
}
