//! Blocking (std::net) client helpers around the sans-IO codecs, shared by `mailroom sntp`
//! and the tests. A client of a UDP service needs a timeout: a lost request, a lost answer and
//! a server that is not there all look the same, silence.
use crate::sntp::{self, Measurement, NtpTimestamp, ReplyError};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no answer from {addr} within {timeout:?} (the request or the answer may have been lost, or nothing serves there: UDP does not tell)")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("nothing is listening on {0} (ICMP port unreachable)")]
    Refused(SocketAddr),
    #[error("{0}")]
    Reply(#[from] ReplyError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    }
}

/// Sends one SNTP client request to `addr` and waits up to `timeout` for the matching reply.
/// Replies whose originate timestamp does not match (stale or forged) are skipped, as
/// RFC 4330 §5 asks; any other bad reply is an error.
pub fn sntp_query(addr: SocketAddr, timeout: Duration) -> Result<Measurement, QueryError> {
    let sock = UdpSocket::bind(unspecified_for(addr))?;
    // connect(): the kernel drops datagrams from other sources and reports ICMP errors.
    sock.connect(addr)?;
    let t1 = NtpTimestamp::from_system_time(SystemTime::now());
    sock.send(&sntp::client_request(t1).encode())?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(QueryError::Timeout { addr, timeout });
        }
        sock.set_read_timeout(Some(left))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(QueryError::Timeout { addr, timeout })
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(QueryError::Refused(addr))
            }
            Err(e) => return Err(e.into()),
        };
        let t4 = NtpTimestamp::from_system_time(SystemTime::now());
        match sntp::parse_reply(&buf[..n], t1, t4) {
            Err(ReplyError::OriginMismatch) => continue,
            r => return Ok(r?),
        }
    }
}
