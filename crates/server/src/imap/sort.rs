//! SORT and THREAD, and their UID forms (RFC 5256; ESORT and CONTEXT=SORT's PARTIAL,
//! RFC 5267; SORT=DISPLAY, RFC 5957): the commands of the selected state.
//!
//! The search key is matched by SEARCH's [`run_search`]; what SORT and THREAD read of each
//! matching message ([`SortFields`]: base subject, sent date, first addresses, Message-ID,
//! references) comes from the process cache ([`ImapShared`]'s `sort`), else from the store's
//! copy (`message_search` rows of [`SORT_FORMAT`], read for the whole mailbox in one query
//! when many are missing), else from the message's header section, parsed and then kept in
//! the store for the next time (also after a restart). The ordering, the threading and the
//! responses are proto's (`imap::sort`, `imap::thread`).

use std::collections::HashMap;
use std::sync::Arc;

use mailroom_proto::imap::sort::{esort_data, sort, sort_data, SortFields, SortMessage};
use mailroom_proto::imap::thread::thread;
use mailroom_proto::imap::{CommandBody, SearchKey, SortCommand, SortKey, ThreadCommand};
use mailroom_store::{MailStore, MessageId, MessageRef, StoreError};

use super::cache::ImapShared;
use super::context;
use super::error::ImapError;
use super::search::{check_charset, run_search, SearchJob};
use super::selected::Msg;
use super::updates;
use super::{ok, Done, Session};

/// The `message_search` format of [`SortFields::to_bytes`] (SEARCH's header fields are
/// format 1). The bytes carry a version of their own: rows of an older version are parsed
/// again, not misread.
pub(super) const SORT_FORMAT: u32 = 2;

/// Below this many messages without cached fields, SORT parses their headers rather than
/// reading the store's copy for the whole mailbox (as SEARCH does).
const PRELOAD_MIN: usize = 32;

/// The header section is read in pieces of this size until its blank line.
const HEADER_CHUNK: usize = 8 * 1024;

/// Whether the command's answer names messages by sequence number (then no EXPUNGE response
/// may be sent with it, RFC 9051 §7.5.1).
pub(super) fn sequence_numbered(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::Sort(SortCommand { uid: false, .. })
            | CommandBody::Thread(ThreadCommand { uid: false, .. })
    )
}

impl Session {
    /// `[UID] SORT [RETURN (...)] (criteria) charset key...` (RFC 5256 §3, RFC 5267 §3).
    pub(super) async fn sort(&mut self, tag: &str, cmd: SortCommand) -> Result<Done, ImapError> {
        // RFC 5267 §3 / RFC 5182 §2.1: SORT's SAVE as SEARCH's; a failed one empties it.
        let save = cmd.ret.as_ref().is_some_and(|r| r.save);
        if save {
            if let Some(sel) = self.selected() {
                sel.saved.clear();
            }
        }
        check_charset(&cmd.charset)?;
        // RFC 5267 §4.3: CONTEXT=SORT's UPDATE, checked before the sort runs.
        let keep = match (&cmd.ret, self.selected()) {
            (Some(r), Some(sel)) => updates::check_update(sel, tag, r)?,
            _ => false,
        };
        let update = cmd.ret.as_ref().is_some_and(|r| r.update);
        let update_key = update.then(|| cmd.key.clone());
        let needs_fields = cmd
            .criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let msgs = self.sort_input(cmd.uid, cmd.key, needs_fields).await?;
        let sorted = sort(&msgs, &cmd.criteria, cmd.uid);
        if let Some(k) = update_key {
            if keep {
                let sel = self.must_selected()?;
                // The result in sort order, as UIDs.
                let in_order: Vec<u32> = sort(&msgs, &cmd.criteria, true);
                let u = updates::Update::new(
                    tag,
                    cmd.uid,
                    k,
                    Some(cmd.criteria.clone()),
                    in_order,
                    &sel.msgs,
                );
                sel.updates.push(u);
            } else {
                self.respond(&updates::noupdate(tag));
            }
        }
        if let Some(r) = cmd.ret.as_ref().filter(|r| r.save) {
            let sel = self.must_selected()?;
            let in_order: Vec<u32> = if cmd.uid {
                sorted.clone()
            } else {
                sorted
                    .iter()
                    .filter_map(|&s| sel.msgs.get((s as usize).wrapping_sub(1)).map(|m| m.uid))
                    .collect()
            };
            sel.saved = context::saved_of(r, &in_order);
        }
        let response = match &cmd.ret {
            None => Some(sort_data(&sorted)),
            Some(r) if context::save_only(r) => None,
            Some(r) => Some(esort_data(tag, cmd.uid, r, &sorted)),
        };
        if let Some(response) = response {
            self.respond(&response);
        }
        ok(if cmd.uid {
            "UID SORT completed"
        } else {
            "SORT completed"
        })
    }

    /// `[UID] THREAD algorithm charset key...` (RFC 5256 §3).
    pub(super) async fn thread(&mut self, cmd: ThreadCommand) -> Result<Done, ImapError> {
        check_charset(&cmd.charset)?;
        let msgs = self.sort_input(cmd.uid, cmd.key, true).await?;
        let response = thread(&msgs, cmd.algorithm, cmd.uid).to_response();
        self.respond(&response);
        ok(if cmd.uid {
            "UID THREAD completed"
        } else {
            "THREAD completed"
        })
    }

    /// The messages matching `key`, each with its sort fields (empty ones when the sort
    /// program reads none), run on a blocking thread.
    async fn sort_input(
        &mut self,
        uid: bool,
        key: SearchKey,
        needs_fields: bool,
    ) -> Result<Vec<SortMessage>, ImapError> {
        // As SEARCH: expunges are reported first only where the answer is UIDs.
        self.sync(uid).await?;
        let sel = self.must_selected()?;
        let job = SearchJob {
            mailbox: sel.id,
            key,
            msgs: sel.msgs.clone(),
        };
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            sort_messages(shared.store.as_ref(), &shared.imap, &job, needs_fields)
        })
        .await;
        match res {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(ImapError::store(e)),
            Err(_) => Err(ImapError::no("SERVERBUG", "internal error while sorting")),
        }
    }
}

/// The messages of `job` that match its key, as [`SortMessage`]s (sequence numbers from the
/// snapshot). Without `needs_fields` every message gets empty fields and no header is read.
pub(super) fn sort_messages(
    store: &dyn MailStore,
    cache: &ImapShared,
    job: &SearchJob,
    needs_fields: bool,
) -> Result<Vec<SortMessage>, StoreError> {
    let hits = run_search(store, cache, job)?;
    let empty = Arc::new(SortFields::default());
    let mut stored: HashMap<u32, Arc<SortFields>> = HashMap::new();
    if needs_fields {
        let missing = hits
            .iter()
            .filter(|&&s| cache.sort.get(job.msgs[s - 1].message).is_none())
            .count();
        if missing >= PRELOAD_MIN {
            // A mailbox that fits the cache well is kept there; a larger one would only push
            // everything else out, and is read from the store each time.
            let keep = job.msgs.len() <= cache.sort.capacity() / 2;
            let ids: HashMap<u32, MessageId> =
                job.msgs.iter().map(|m| (m.uid, m.message)).collect();
            for (uid, data) in store.search_data(job.mailbox, SORT_FORMAT)? {
                if let (Some(f), Some(&id)) = (SortFields::from_bytes(&data), ids.get(&uid)) {
                    let f = Arc::new(f);
                    if keep {
                        cache.sort.put(id, f.clone());
                    }
                    stored.insert(uid, f);
                }
            }
        }
    }
    let mut parsed = Vec::new();
    let mut out = Vec::with_capacity(hits.len());
    for s in hits {
        let m: &Msg = &job.msgs[s - 1];
        let fields = if !needs_fields {
            empty.clone()
        } else if let Some(f) = cache.sort.get(m.message) {
            f
        } else if let Some(f) = stored.get(&m.uid) {
            f.clone()
        } else {
            let header = match header_section(store, job.mailbox, m.uid) {
                Ok(h) => h,
                // Expunged by another session meanwhile: it is not sorted.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let f = Arc::new(SortFields::parse(&header));
            cache.sort.put(m.message, f.clone());
            parsed.push((m.uid, f.to_bytes()));
            f
        };
        out.push(SortMessage::with_fields(
            fields,
            s as u32,
            m.uid,
            m.internal_date,
            m.size,
        ));
    }
    if !parsed.is_empty() {
        // A copy for later sorts: losing it (a full disk, say) costs only speed.
        if let Err(e) = store.put_search_data(job.mailbox, SORT_FORMAT, parsed) {
            tracing::debug!(error = %e, "cannot keep SORT fields in the store");
        }
    }
    Ok(out)
}

/// A message's header section (up to and including its blank line, or the whole message when
/// there is none), read in pieces through the session's mailbox so a large body is not read.
fn header_section(
    store: &dyn MailStore,
    mailbox: mailroom_store::MailboxId,
    uid: u32,
) -> Result<Vec<u8>, StoreError> {
    let at = MessageRef::Mailbox { mailbox, uid };
    let mut out = Vec::new();
    let mut buf = vec![0u8; HEADER_CHUNK];
    loop {
        let n = store.read_message_at(at, out.len() as u64, &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        // Look for the blank line from a little before the new piece (it may straddle).
        let from = out.len().saturating_sub(3);
        out.extend_from_slice(&buf[..n]);
        if let Some(end) = blank_line_end(&out, from) {
            out.truncate(end);
            return Ok(out);
        }
    }
}

/// The end of the first blank line (`\n\r\n` or `\n\n`, or one at the very start) at or
/// after `from`.
fn blank_line_end(data: &[u8], from: usize) -> Option<usize> {
    if from == 0 {
        if data.starts_with(b"\r\n") {
            return Some(2);
        }
        if data.starts_with(b"\n") {
            return Some(1);
        }
    }
    let mut i = from;
    while let Some(off) = data.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let rest = &data[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        i = nl + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_proto::imap::{SortCriterion, ThreadAlgorithm};

    /// A store with the given messages in one INBOX, a second apart.
    fn mailbox(messages: &[Vec<u8>]) -> (tempfile::TempDir, mailroom_store::Store, SearchJob) {
        let dated: Vec<(&[u8], i64)> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.as_slice(), 1_700_000_000 + i as i64))
            .collect();
        crate::imap::search::tests::mailbox_dated(&dated)
    }

    fn by(key: SortKey) -> Vec<SortCriterion> {
        vec![SortCriterion {
            reverse: false,
            key,
        }]
    }

    #[test]
    fn blank_line_is_found_across_pieces() {
        assert_eq!(blank_line_end(b"\r\nbody", 0), Some(2));
        assert_eq!(blank_line_end(b"A: b\r\n\r\nbody", 0), Some(8));
        assert_eq!(blank_line_end(b"A: b\n\nbody", 0), Some(6));
        assert_eq!(blank_line_end(b"A: b\r\n", 0), None);
        assert_eq!(blank_line_end(b"A: b\r\n\r\n", 3), Some(8));
        // A long header: the blank line lies past the first piece.
        let mut m = Vec::new();
        for i in 0..2000 {
            m.extend_from_slice(format!("X-Long-{i}: {}\r\n", "v".repeat(20)).as_bytes());
        }
        m.extend_from_slice(b"Subject: late\r\n\r\nbody text\r\n");
        let (_d, store, job) = mailbox(&[m.clone()]);
        let h = header_section(store.as_ref(), job.mailbox, job.msgs[0].uid).unwrap();
        assert_eq!(h.len(), m.len() - b"body text\r\n".len());
        assert!(h.ends_with(b"Subject: late\r\n\r\n"));
    }

    #[test]
    fn sorts_and_threads_a_mailbox() {
        let msgs: Vec<Vec<u8>> = [
            "Subject: b\r\nMessage-ID: <1@x>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\n.",
            "Subject: Re: b\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nDate: Tue, 3 Jan 2023 10:00:00 +0000\r\n\r\n.",
            "Subject: a\r\nMessage-ID: <3@x>\r\nDate: Sun, 1 Jan 2023 10:00:00 +0000\r\n\r\n.",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let (_d, store, job) = mailbox(&msgs);
        let cache = ImapShared::default();
        let m = sort_messages(store.as_ref(), &cache, &job, true).unwrap();
        assert_eq!(sort(&m, &by(SortKey::Subject), false), vec![3, 1, 2]);
        assert_eq!(sort(&m, &by(SortKey::Date), false), vec![3, 1, 2]);
        assert_eq!(
            thread(&m, ThreadAlgorithm::References, false).response(),
            "* THREAD (3)(1 2)"
        );
        // What was parsed is cached and kept in the store.
        assert_eq!(cache.sort.len(), 3);
        assert_eq!(
            store.search_data(job.mailbox, SORT_FORMAT).unwrap().len(),
            3
        );
        // ARRIVAL alone reads no header.
        let fresh = ImapShared::default();
        let m = sort_messages(store.as_ref(), &fresh, &job, false).unwrap();
        assert_eq!(sort(&m, &by(SortKey::Arrival), true), vec![1, 2, 3]);
        assert_eq!(fresh.sort.len(), 0);
    }

    #[test]
    fn fields_are_read_back_from_the_store() {
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("Subject: note {:02}\r\n\r\nbody\r\n", 39 - i).into_bytes())
            .collect();
        let (_d, store, job) = mailbox(&msgs);
        let first = sort_messages(store.as_ref(), &ImapShared::default(), &job, true).unwrap();
        let want: Vec<u32> = (1..=40).rev().collect();
        assert_eq!(sort(&first, &by(SortKey::Subject), false), want);
        // A new process (empty cache) reads the store's copy: a planted record shows it.
        let planted = SortFields {
            subject: "AAA".into(),
            ..SortFields::default()
        };
        store
            .put_search_data(job.mailbox, SORT_FORMAT, vec![(20, planted.to_bytes())])
            .unwrap();
        let again = sort_messages(store.as_ref(), &ImapShared::default(), &job, true).unwrap();
        assert_eq!(sort(&again, &by(SortKey::Subject), false)[0], 20);
        // Rows of SEARCH's format are not SORT's: damaged or foreign data is parsed again.
        store
            .put_search_data(job.mailbox, SORT_FORMAT, vec![(20, b"junk".to_vec())])
            .unwrap();
        let fixed = sort_messages(store.as_ref(), &ImapShared::default(), &job, true).unwrap();
        assert_eq!(sort(&fixed, &by(SortKey::Subject), false), want);
    }

    #[test]
    fn the_search_key_selects_what_is_sorted() {
        let msgs: Vec<Vec<u8>> = [
            "Subject: x\r\n\r\n.",
            "Subject: y\r\n\r\n.",
            "Subject: x\r\n\r\n.",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let (_d, store, mut job) = mailbox(&msgs);
        job.key = SearchKey::Subject("x".into());
        let m = sort_messages(store.as_ref(), &ImapShared::default(), &job, true).unwrap();
        let mut r = by(SortKey::Arrival);
        r[0].reverse = true;
        assert_eq!(sort(&m, &r, false), vec![3, 1]);
        assert_eq!(sort(&m, &r, true), vec![3, 1]);
    }
}
