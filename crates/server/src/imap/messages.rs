//! The commands on the messages of the selected mailbox (RFC 9051 §6.4): CLOSE and UNSELECT
//! (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), STORE (CONDSTORE, RFC 7162), COPY and
//! MOVE (RFC 6851). FETCH and SEARCH have files of their own; NOOP and CHECK are answered by
//! the sync after every command.

use mailroom_proto::imap::response::{Response, Status, Value};
use mailroom_proto::imap::StoreMode;
use mailroom_store::{FlagOp, Flags};

use super::error::ImapError;
use super::selected::{compress, split_flags};
use super::{ok, ok_code, Done, Session, State};

/// The refusal of a change to a mailbox opened with EXAMINE.
fn read_only() -> ImapError {
    ImapError::no("READ-ONLY", "the mailbox was opened with EXAMINE")
}

impl Session {
    pub(super) async fn close_mailbox(&mut self, expunge: bool) -> Result<(), ImapError> {
        if expunge {
            if let Some(sel) = self.selected() {
                if !sel.read_only {
                    let id = sel.id;
                    // RFC 9051 §6.4.1: CLOSE removes \Deleted messages silently; read the
                    // current flags so \Deleted set by other sessions counts too.
                    let list = self.store(move |s| s.list_messages(id)).await?;
                    let uids: Vec<u32> = list
                        .iter()
                        .filter(|m| m.flags.contains(Flags::DELETED))
                        .map(|m| m.uid)
                        .collect();
                    if !uids.is_empty() {
                        self.store(move |s| s.expunge(id, &uids)).await?;
                    }
                }
            }
        }
        if let State::Selected(a, _) = std::mem::replace(&mut self.state, State::NotAuthenticated) {
            self.state = State::Authenticated(a);
        }
        Ok(())
    }

    pub(super) async fn expunge(
        &mut self,
        uids: Option<mailroom_proto::imap::SeqSet>,
    ) -> Result<Done, ImapError> {
        self.sync(true).await?;
        let sel = self.must_selected()?;
        if sel.read_only {
            return Err(read_only());
        }
        let largest = sel.msgs.last().map_or(0, |m| m.uid);
        let ranges = uids.as_ref().map(|s| s.normalized(largest));
        let targets: Vec<u32> = sel
            .msgs
            .iter()
            .filter(|m| m.flags.contains(Flags::DELETED))
            .filter(|m| {
                ranges
                    .as_ref()
                    .is_none_or(|r| mailroom_proto::imap::SeqSet::in_normalized(r, m.uid))
            })
            .map(|m| m.uid)
            .collect();
        let id = sel.id;
        let removed = if targets.is_empty() {
            Vec::new()
        } else {
            self.store(move |s| s.expunge(id, &targets)).await?
        };
        if let Some(sel) = self.selected() {
            let expunged = sel.remove_uids(&removed);
            for r in &expunged {
                self.respond(r);
            }
        }
        ok("EXPUNGE completed")
    }

    pub(super) async fn store_cmd(
        &mut self,
        uid: bool,
        set: &mailroom_proto::imap::SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: &[mailroom_proto::imap::Flag],
        unchanged_since: Option<u64>,
    ) -> Result<Done, ImapError> {
        let (bits, kws) = split_flags(flags)?;
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let condstore = self.condstore;
        self.sync(uid).await?;
        let sel = self.must_selected()?;
        if sel.read_only {
            return Err(read_only());
        }
        let idx = sel.resolve(set, uid)?;
        let uids: Vec<u32> = idx
            .iter()
            .map(|&i| &sel.msgs[i])
            .filter(|m| !m.gone)
            .map(|m| m.uid)
            .collect();
        let id = sel.id;
        let op = match mode {
            StoreMode::Replace => FlagOp::Replace,
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
        };
        let targets = uids.clone();
        let (changed, modified) = if targets.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            self.store(move |s| s.store_flags(id, &targets, op, bits, &kws, unchanged_since))
                .await?
        };
        let mut responses = Vec::new();
        let mut modified_set: Vec<u32> = Vec::new();
        if let Some(sel) = self.selected() {
            for m in &changed {
                sel.update(m);
            }
            // A keyword this STORE created is announced before the FETCH that shows it.
            if sel.learn_keywords() {
                responses.extend(sel.flags_responses());
            }
            for u in &uids {
                let Some(s) = sel.seq_of_uid(*u) else {
                    continue;
                };
                if modified.contains(u) {
                    modified_set.push(if uid { *u } else { s as u32 });
                    continue;
                }
                let m = &sel.msgs[s - 1];
                if !silent {
                    // RFC 9051 §6.4.6: the new flags of every message in the set.
                    responses.push(m.flags_fetch(s, condstore));
                } else if condstore && changed.iter().any(|c| c.uid == *u) {
                    // RFC 7162 §3.1.3: the new MODSEQ even with .SILENT.
                    let mut items = vec![Value::Atom("UID".into()), Value::num(m.uid)];
                    items.extend(m.modseq_item());
                    responses.push(Response::fetch(s as u32, items));
                }
            }
        }
        for r in &responses {
            self.respond(r);
        }
        let word = if uid { "UID STORE" } else { "STORE" };
        if !modified_set.is_empty() {
            modified_set.sort_unstable();
            // RFC 7162 §3.1.3: these were changed since UNCHANGEDSINCE and left alone.
            return ok_code(
                format!("MODIFIED {}", compress(&modified_set)),
                &format!("{word} completed, except for messages changed meanwhile"),
            );
        }
        ok(&format!("{word} completed"))
    }

    pub(super) async fn copy(
        &mut self,
        uid: bool,
        set: &mailroom_proto::imap::SeqSet,
        target: &str,
        is_move: bool,
    ) -> Result<Done, ImapError> {
        let word = match (uid, is_move) {
            (false, false) => "COPY",
            (true, false) => "UID COPY",
            (false, true) => "MOVE",
            (true, true) => "UID MOVE",
        };
        let dest = self.must_mailbox(target, "TRYCREATE").await?;
        let sel = self.must_selected()?;
        if is_move && sel.read_only {
            return Err(read_only());
        }
        let idx = sel.resolve(set, uid)?;
        let picked: Vec<(u32, u64)> = idx
            .iter()
            .map(|&i| &sel.msgs[i])
            .filter(|m| !m.gone)
            .map(|m| (m.uid, m.size))
            .collect();
        let uids: Vec<u32> = picked.iter().map(|p| p.0).collect();
        let octets: u64 = picked.iter().map(|p| p.1).sum();
        let src = sel.id;
        if uids.is_empty() {
            return ok(&format!("{word} completed (no messages)"));
        }
        // RFC 9208 §4.3: a COPY adds the messages' sizes to the account's usage and is refused
        // when they do not fit. A MOVE stays within the account and changes nothing (the
        // copy and the removal are one transaction), so it is never refused: an account over
        // its quota can still move mail to Trash, which is how clients delete.
        if !is_move {
            let what = if uids.len() == 1 {
                "the message".to_string()
            } else {
                format!("the {} messages", uids.len())
            };
            self.must_fit(octets, &what).await?;
        }
        let dest_id = dest.id;
        let (uv, pairs) = self
            .store(move |s| s.copy_messages(src, &uids, dest_id, is_move))
            .await?;
        if pairs.is_empty() {
            return ok(&format!("{word} completed (no messages)"));
        }
        let from: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let to: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        // RFC 4315 §3 COPYUID (the source set in the order of the target UIDs).
        let code = format!("COPYUID {uv} {} {}", compress(&from), compress(&to));
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs.
            self.respond(&Response::untagged(Status::Ok, Some(&code), "moved"));
            if let Some(sel) = self.selected() {
                let expunged = sel.remove_uids(&from);
                for r in &expunged {
                    self.respond(r);
                }
            }
            return ok(&format!("{word} completed"));
        }
        ok_code(code, &format!("{word} completed"))
    }
}
