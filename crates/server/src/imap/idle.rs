//! IDLE (RFC 2177, RFC 9051 §6.3.13): the session polls its mailbox and sends what changed
//! until the client sends DONE.

use std::time::{Duration, Instant};

use mailroom_proto::imap::response::Response;

use super::error::ImapError;
use super::{ok, Done, Session};
use crate::conn::Event;

/// How often IDLE looks for changes ("within a second").
const IDLE_POLL: Duration = Duration::from_millis(500);

impl Session {
    pub(super) async fn idle(&mut self) -> Result<Done, ImapError> {
        self.respond(&Response::continuation("idling; send DONE to stop"));
        let started = Instant::now();
        let limit = self.conn.idle;
        loop {
            if self.selected().is_none() {
                // Not selected: no sync, but the account is still checked at every poll.
                self.verify().await?;
            }
            self.sync(true).await?;
            if self.conn.flush().await.is_err() {
                return Ok(Done::Close);
            }
            match tokio::time::timeout(IDLE_POLL, self.conn.next_line()).await {
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
