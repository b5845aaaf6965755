//! One client connection as every protocol driver sees it: a stream, a bounded line reader,
//! an output buffer, an idle timer, the shutdown signal and the C:/S: trace.
//!
//! Replies are buffered and written when the driver is about to wait for input, so pipelined
//! commands (RFC 2920, RFC 2449 PIPELINING) get their replies in one write, in order.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use mailroom_proto::line::{LineError, LineReader};
pub use mailroom_proto::secrets::{mask_secrets, MASK};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Size of one socket read.
const READ_CHUNK: usize = 16 * 1024;
/// Buffered output beyond this is written out at once (message downloads).
const OUT_HIGH_WATER: usize = 64 * 1024;
/// `limits.min_data_rate`'s default, octets per second.
pub const DEFAULT_MIN_DATA_RATE: u64 = 1024;

/// The byte stream under a session: plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Only while the plain stream is being wrapped (STARTTLS); every I/O on it fails.
    Gone,
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Plain(s)
    }
}

impl Stream {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(t) => Some(t.get_ref().0),
            Stream::Gone => None,
        }
    }

    /// Runs the server side of a TLS handshake on a plain stream (implicit TLS listeners).
    pub async fn accept_tls(
        self,
        acceptor: &tokio_rustls::TlsAcceptor,
        timeout: Duration,
    ) -> std::io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                )),
            },
            Stream::Tls(_) => Err(std::io::Error::other("TLS is already active")),
            Stream::Gone => Err(gone()),
        }
    }
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

/// The per-session protocol trace: `[smtp 12] C: EHLO pc1` / `[smtp 12] S: 250-...`.
#[derive(Debug, Clone)]
pub struct Trace {
    pub enabled: bool,
    pub proto: &'static str,
    pub id: u64,
}

impl Trace {
    /// Traces a line the client sent (or a note standing for it), through [`mask_secrets`].
    pub fn client(&self, line: &str) {
        if self.enabled {
            self.client_masked(&mask_secrets(line));
        }
    }
    /// Traces text a driver built from a *parsed* command whose secret it has already replaced
    /// by [`MASK`], keeping what is safe to show (`a1 LOGIN alice ****`, `APOP alice ****`).
    /// Everything else goes through [`Trace::client`].
    pub fn client_masked(&self, text: &str) {
        if self.enabled {
            tracing::info!(target: "mailroom::trace", "[{} {}] C: {}", self.proto, self.id, text);
        }
    }
    pub fn server(&self, bytes: &[u8]) {
        if self.enabled {
            for line in String::from_utf8_lossy(bytes)
                .split("\r\n")
                .filter(|l| !l.is_empty())
            {
                tracing::info!(target: "mailroom::trace", "[{} {}] S: {}", self.proto, self.id, line);
            }
        }
    }
    pub fn note(&self, what: &str) {
        if self.enabled {
            tracing::info!(target: "mailroom::trace", "[{} {}] -- {}", self.proto, self.id, what);
        }
    }
}

/// What waiting for the next command produced.
#[derive(Debug)]
pub enum Event {
    Line(Result<Vec<u8>, LineError>),
    /// The client closed the connection (or it broke).
    Closed,
    /// No complete command within the idle timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

pub struct Conn {
    stream: Stream,
    pub lines: LineReader,
    out: Vec<u8>,
    pub trace: Trace,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub idle: Duration,
    /// The slowest a body (DATA, BDAT chunk, IMAP literal) may arrive, in octets per second
    /// (`limits.min_data_rate`); 0: only the idle timeout per read applies.
    pub min_data_rate: u64,
    shutdown: watch::Receiver<bool>,
    read_buf: Vec<u8>,
    /// The body phase under way: when it started and the octets received so far.
    body: Option<(Instant, u64)>,
}

impl Conn {
    pub fn new(
        stream: impl Into<Stream>,
        peer: SocketAddr,
        max_line: usize,
        idle: Duration,
        trace: Trace,
        shutdown: watch::Receiver<bool>,
    ) -> Conn {
        let stream = stream.into();
        let local = stream
            .tcp()
            .and_then(|t| {
                let _ = t.set_nodelay(true);
                t.local_addr().ok()
            })
            .unwrap_or(peer);
        Conn {
            stream,
            lines: LineReader::new(max_line),
            out: Vec::with_capacity(1024),
            trace,
            peer,
            local,
            idle,
            min_data_rate: DEFAULT_MIN_DATA_RATE,
            shutdown,
            read_buf: vec![0u8; READ_CHUNK],
            body: None,
        }
    }

    /// Queues bytes for the client and traces them.
    pub fn send(&mut self, bytes: &[u8]) {
        self.trace.server(bytes);
        self.out.extend_from_slice(bytes);
    }

    /// Queues bytes without tracing them (message bodies).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.extend_from_slice(bytes);
        if self.out.len() >= OUT_HIGH_WATER {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let res = tokio::time::timeout(self.idle, self.stream.write_all(&self.out)).await;
            self.out.clear();
            match res {
                Ok(r) => r?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "write timed out",
                    ))
                }
            }
        }
        Ok(())
    }

    /// True when the shutdown signal has been given.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The next command line. Pending output is flushed before the session waits for input.
    /// While waiting, the idle timeout and the shutdown signal both end the wait.
    ///
    /// The timeout is a deadline for the whole line, set when the wait starts: a client that
    /// trickles a byte every few seconds does not extend it (it did when the timer ran per
    /// socket read, and such clients could hold a connection slot for ever).
    pub async fn next_line(&mut self) -> Event {
        // A new command: any body phase is over.
        self.body = None;
        let deadline = Instant::now() + self.idle;
        loop {
            if let Some(line) = self.lines.next_line() {
                return Event::Line(line);
            }
            if self.flush().await.is_err() {
                return Event::Closed;
            }
            if self.shutting_down() {
                return Event::Shutdown;
            }
            let mut shutdown = self.shutdown.clone();
            let read = tokio::select! {
                r = tokio::time::timeout_at(deadline, self.stream.read(&mut self.read_buf)) => r,
                _ = shutdown.changed() => return Event::Shutdown,
            };
            match read {
                Err(_) => return Event::Timeout,
                Ok(Err(_)) | Ok(Ok(0)) => return Event::Closed,
                Ok(Ok(n)) => self.lines.push(&self.read_buf[..n]),
            }
        }
    }

    /// Raw bytes for a body phase (DATA, BDAT, IMAP literals): first whatever the line reader
    /// holds, then one socket read. `Ok(None)` means the client closed or timed out.
    ///
    /// The body phase (from its first read until the next command line) has a deadline that
    /// trickling does not extend: the idle timeout plus the time its octets so far would take at
    /// `min_data_rate`. A client sending at least that fast is never cut off, however large the
    /// message; one that sends a byte every few seconds is, after about the idle timeout.
    pub async fn read_raw(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let (started, got) = *self.body.get_or_insert((Instant::now(), 0));
        if self.lines.buffered_len() > 0 {
            let bytes = self.lines.take_buffered();
            self.body = Some((started, got + bytes.len() as u64));
            return Ok(Some(bytes));
        }
        self.flush().await?;
        let deadline = if self.min_data_rate == 0 {
            Instant::now() + self.idle
        } else {
            let earned = Duration::from_secs_f64(got as f64 / self.min_data_rate as f64);
            started + self.idle + earned
        };
        match tokio::time::timeout_at(deadline, self.stream.read(&mut self.read_buf)).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => Err(e),
            Ok(Ok(0)) => Ok(None),
            Ok(Ok(n)) => {
                self.body = Some((started, got + n as u64));
                Ok(Some(self.read_buf[..n].to_vec()))
            }
        }
    }

    /// Returns bytes read past the end of a body phase to the line reader.
    pub fn unread(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            let rest = self.lines.take_buffered();
            self.lines.push(bytes);
            self.lines.push(&rest);
        }
    }

    /// True when the session runs over TLS (implicit, or after STARTTLS/STLS).
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Acknowledges the client's next segments at once instead of after the delayed-ACK timer.
    /// Used while a client sends a literal: clients that write the literal and its CRLF in two
    /// writes (Python's imaplib, with Nagle on) otherwise wait about 40 ms for our ACK before
    /// the CRLF goes out. Linux only; elsewhere a no-op.
    pub fn quick_ack(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = match &self.stream {
                Stream::Plain(s) => s.as_raw_fd(),
                Stream::Tls(s) => s.get_ref().0.as_raw_fd(),
                Stream::Gone => return,
            };
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on a socket we own, with a pointer to a c_int that outlives the call.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    /// STARTTLS/STLS: sends the queued replies (the "go ahead") in clear, throws away whatever
    /// the client pipelined behind the command (RFC 3207 §4.2, RFC 2595 §4; the CVE-2011-0411
    /// class of command injection), then runs the TLS handshake. Returns how many plaintext
    /// octets were discarded. On an error the connection is unusable and must be closed.
    pub async fn start_tls(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
    ) -> std::io::Result<usize> {
        self.flush().await?;
        let discarded = self.lines.take_buffered().len();
        if discarded > 0 {
            self.trace.note(&format!(
                "discarded {discarded} octets sent in clear behind the TLS command"
            ));
        }
        let plain = std::mem::replace(&mut self.stream, Stream::Gone);
        self.stream = plain.accept_tls(acceptor, self.idle).await?;
        self.trace.note("TLS established");
        Ok(discarded)
    }

    /// Sends what is queued and closes the write side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
    }
}
