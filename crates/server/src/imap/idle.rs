//! IDLE (RFC 2177, RFC 9051 §6.3.13): the session polls its mailbox and sends what changed
//! until the client sends DONE. With a store that other servers share (PostgreSQL), their
//! changes also wake it at once (`Shared::mailbox_changed`), so the poll is only the fallback.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use mailroom_proto::imap::response::Response;

use super::error::ImapError;
use super::{ok, Done, Session};
use crate::conn::Event;

/// How often IDLE looks for changes ("within a second").
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Waits until another server changed the mailbox `mine` (or anything may have changed);
/// never returns when nothing can tell (no selected mailbox, or no sender).
async fn change_of(changes: &mut broadcast::Receiver<i64>, mine: Option<i64>) {
    loop {
        match changes.recv().await {
            Ok(id) if id == -1 || Some(id) == mine => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

impl Session {
    pub(super) async fn idle(&mut self) -> Result<Done, ImapError> {
        self.respond(&Response::continuation("idling; send DONE to stop"));
        let started = Instant::now();
        let limit = self.conn.idle;
        let mut changes = self.shared.mailbox_changed.subscribe();
        loop {
            if self.selected().is_none() {
                // Not selected: no sync, but the account is still checked at every poll.
                self.verify().await?;
            }
            self.sync(true).await?;
            if self.conn.flush().await.is_err() {
                return Ok(Done::Close);
            }
            let mine = self.selected().map(|s| s.id.id);
            let wait = tokio::select! {
                r = tokio::time::timeout(IDLE_POLL, self.conn.next_line()) => Some(r),
                _ = change_of(&mut changes, mine) => None,
            };
            let Some(wait) = wait else {
                // Another server changed a mailbox: look now.
                continue;
            };
            match wait {
                Err(_) => {
                    if started.elapsed() > limit {
                        self.bye("autologout: idle for too long");
                        return Ok(Done::Close);
                    }
                }
                Ok(Event::Line(Ok(l))) => {
                    let text = String::from_utf8_lossy(&l).trim().to_string();
                    self.conn.trace.client(&text);
                    if text.eq_ignore_ascii_case("DONE") {
                        return ok("IDLE terminated");
                    }
                    return Err(ImapError::bad("expected DONE to end IDLE"));
                }
                Ok(Event::Line(Err(_))) => {
                    return Err(ImapError::bad("expected DONE to end IDLE"));
                }
                Ok(Event::Shutdown) => {
                    self.bye("the server is shutting down; reconnect later");
                    return Ok(Done::Close);
                }
                Ok(Event::Timeout) => {
                    self.bye("autologout: idle for too long");
                    return Ok(Done::Close);
                }
                Ok(Event::Closed) => return Ok(Done::Close),
            }
        }
    }
}
