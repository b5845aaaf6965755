//! One client connection as every protocol driver sees it: a stream, a bounded line reader,
//! an output buffer, an idle timer, the shutdown signal and the C:/S: trace.
//!
//! The stream is a TCP socket (plain or TLS) for the listeners, or any other
//! `AsyncRead + AsyncWrite` stream ([`Stream::other`]), so a whole session can be driven from
//! memory over `tokio::io::duplex` in tests; the socket-only parts (TCP_NODELAY, the local
//! address, TCP_QUICKACK) are skipped for such streams, and STARTTLS works over both.
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

/// Any byte stream a session can run over besides TCP: an in-memory pipe
/// (`tokio::io::duplex`) in tests, say. `Sync` because drivers hold `&Session` across awaits
/// in tasks that must be `Send`.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + ?Sized> Io for T {}

/// The byte stream under a session: plain TCP or TLS over TCP, as the listeners accept them;
/// or any other [`Io`] stream, plain or with TLS, for sessions driven from memory.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A stream that is not a socket: no socket options, no addresses of its own.
    Other(Box<dyn Io>),
    /// TLS over an [`Stream::Other`] stream (STARTTLS in a session driven from memory).
    OtherTls(Box<tokio_rustls::server::TlsStream<Box<dyn Io>>>),
    /// Only while the plain stream is being wrapped (STARTTLS); every I/O on it fails.
    Gone,
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Plain(s)
    }
}

impl Stream {
    /// A session stream over anything that reads and writes bytes (not a socket: use
    /// [`Stream::Plain`] for a `TcpStream`, which keeps its socket options working).
    pub fn other(io: impl Io + 'static) -> Stream {
        Stream::Other(Box::new(io))
    }

    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(t) => Some(t.get_ref().0),
            Stream::Other(_) | Stream::OtherTls(_) | Stream::Gone => None,
        }
    }

    fn io(&mut self) -> std::io::Result<&mut dyn Io> {
        match self {
            Stream::Plain(s) => Ok(s),
            Stream::Tls(s) => Ok(s.as_mut()),
            Stream::Other(s) => Ok(s.as_mut()),
            Stream::OtherTls(s) => Ok(s.as_mut()),
            Stream::Gone => Err(gone()),
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_) | Stream::OtherTls(_))
    }

    /// Runs the server side of a TLS handshake on a plain stream (implicit TLS listeners).
    pub async fn accept_tls(
        self,
        acceptor: &tokio_rustls::TlsAcceptor,
        timeout: Duration,
    ) -> std::io::Result<Stream> {
        let timed_out =
            || std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out");
        match self {
            Stream::Plain(tcp) => match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(timed_out()),
            },
            Stream::Other(io) => match tokio::time::timeout(timeout, acceptor.accept(io)).await {
                Ok(Ok(tls)) => Ok(Stream::OtherTls(Box::new(tls))),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(timed_out()),
            },
            Stream::Tls(_) | Stream::OtherTls(_) => {
                Err(std::io::Error::other("TLS is already active"))
            }
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
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// The per-session protocol trace: `[smtp 12] C: EHLO pc1` / `[smtp 12] S: 250-...`.
///
/// Every line is written through [`escape_controls`]: a CR, NUL, ESC or any other control
/// character a client (or a reply echoing it) carries shows as `\xNN`, so a trace line can
/// neither hide itself (a CR returns the terminal's cursor) nor drive the reader's terminal.
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
            let text = escape_controls(text);
            tracing::info!(target: "mailroom::trace", "[{} {}] C: {}", self.proto, self.id, text);
        }
    }
    pub fn server(&self, bytes: &[u8]) {
        if self.enabled {
            for line in String::from_utf8_lossy(bytes)
                .split("\r\n")
                .filter(|l| !l.is_empty())
            {
                let line = escape_controls(line);
                tracing::info!(target: "mailroom::trace", "[{} {}] S: {}", self.proto, self.id, line);
            }
        }
    }
    pub fn note(&self, what: &str) {
        if self.enabled {
            let what = escape_controls(what);
            tracing::info!(target: "mailroom::trace", "[{} {}] -- {}", self.proto, self.id, what);
        }
    }
}

/// Trace text with every control character escaped as `\xNN`: C0 (CR `\x0d`, LF `\x0a`, NUL
/// `\x00`, TAB `\x09`, ESC `\x1b`, ...), DEL `\x7f` and C1 (`\x80`-`\x9f`). The same
/// notation as the agent's trace (`mailroom_client::trace::printable`) and as the log
/// formatter's own escaping of ESC; TAB is escaped too, so that the trace shows exactly what
/// was typed (`MAIL FROM:\x09<a@b>`). Text without control characters is returned as it is.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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
    /// The dialogue being recorded for the messages this session delivers (SMTP), if it is.
    pub recorder: Option<crate::transcript::Recorder>,
}

impl Conn {
    /// A connection over `stream` from `peer`. For a stream that is not a socket, `local` is
    /// set to `peer` (set it afterwards if a test needs another).
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
            recorder: None,
        }
    }

    /// Queues bytes for the client and traces (and records) them.
    pub fn send(&mut self, bytes: &[u8]) {
        self.trace.server(bytes);
        if let Some(r) = &mut self.recorder {
            for line in String::from_utf8_lossy(bytes)
                .split("\r\n")
                .filter(|l| !l.is_empty())
            {
                r.push(
                    mailroom_store::Direction::Server,
                    escape_controls(line).into_owned(),
                );
            }
        }
        self.out.extend_from_slice(bytes);
    }

    /// Traces (and records) a line the client sent, through [`mask_secrets`].
    pub fn client_line(&mut self, line: &str) {
        self.trace.client(line);
        if let Some(r) = &mut self.recorder {
            r.push(
                mailroom_store::Direction::Client,
                escape_controls(&mask_secrets(line)).into_owned(),
            );
        }
    }

    /// Traces (and records) text built from a parsed client line whose secret is already
    /// replaced (see [`Trace::client_masked`]).
    pub fn client_masked(&mut self, text: &str) {
        self.trace.client_masked(text);
        if let Some(r) = &mut self.recorder {
            r.push(
                mailroom_store::Direction::Client,
                escape_controls(text).into_owned(),
            );
        }
    }

    /// Records a client line for the transcript only (the trace says it its own way).
    pub fn record_client(&mut self, text: String) {
        if let Some(r) = &mut self.recorder {
            r.push(mailroom_store::Direction::Client, text);
        }
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
        self.stream.is_tls()
    }

    /// Acknowledges the client's next segments at once instead of after the delayed-ACK timer.
    /// Used while a client sends a literal: clients that write the literal and its CRLF in two
    /// writes (Python's imaplib, with Nagle on) otherwise wait about 40 ms for our ACK before
    /// the CRLF goes out. Linux only; elsewhere a no-op.
    pub fn quick_ack(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let Some(fd) = self.stream.tcp().map(|s| s.as_raw_fd()) else {
                // Not a socket (a session driven from memory): nothing to acknowledge.
                return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncBufReadExt, BufReader};

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    /// A Conn over one end of an in-memory pipe; the other end plays the client.
    fn conn(
        max_line: usize,
        idle: Duration,
    ) -> (Conn, tokio::io::DuplexStream, watch::Sender<bool>) {
        let (server, client) = duplex(64 * 1024);
        let (tx, rx) = watch::channel(false);
        let trace = Trace {
            enabled: false,
            proto: "test",
            id: 1,
        };
        let c = Conn::new(Stream::other(server), peer(), max_line, idle, trace, rx);
        (c, client, tx)
    }

    #[test]
    fn trace_text_escapes_every_control_character() {
        let cases: &[(&str, &str)] = &[
            ("EHLO pc1", "EHLO pc1"),
            // What telnet sends for a CR typed before the line end (RFC 854: CR NUL).
            ("EHLO x\r\0", "EHLO x\\x0d\\x00"),
            ("a\nb", "a\\x0ab"),
            ("MAIL FROM:\t<a@b.test>", "MAIL FROM:\\x09<a@b.test>"),
            ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
            ("bell\x07 del\x7f", "bell\\x07 del\\x7f"),
            ("c1\u{85}\u{9b}", "c1\\x85\\x9b"),
            ("é ü 日本", "é ü 日本"),
            ("back\\slash", "back\\slash"),
            ("", ""),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape_controls(raw), *shown, "{raw:?}");
        }
        assert!(matches!(
            escape_controls("plain text"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    fn line(ev: Event) -> Vec<u8> {
        match ev {
            Event::Line(Ok(l)) => l,
            other => panic!("expected a line, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lines_in_replies_out_over_a_pipe() {
        let (mut c, client, _tx) = conn(512, Duration::from_secs(5));
        assert!(!c.is_tls());
        assert_eq!(c.local, peer(), "no socket: local is the peer");
        c.quick_ack(); // a no-op without a socket
        let (rd, mut wr) = tokio::io::split(client);
        let mut rd = BufReader::new(rd);
        // Two pipelined commands: both lines come out before anything is written back.
        wr.write_all(b"FIRST\r\nSECOND\r\n").await.unwrap();
        assert_eq!(line(c.next_line().await), b"FIRST");
        c.send(b"250 one\r\n");
        assert_eq!(line(c.next_line().await), b"SECOND");
        c.send(b"250 two\r\n");
        // Waiting for the third line flushes both replies in order.
        let waiter = tokio::spawn(async move {
            let ev = c.next_line().await;
            (c, ev)
        });
        let mut got = String::new();
        rd.read_line(&mut got).await.unwrap();
        rd.read_line(&mut got).await.unwrap();
        assert_eq!(got, "250 one\r\n250 two\r\n");
        // An over-long line is reported in order, then the next line is whole.
        wr.write_all(&[b'x'; 600]).await.unwrap();
        wr.write_all(b"\r\nTHIRD\r\n").await.unwrap();
        let (mut c, ev) = waiter.await.unwrap();
        assert!(
            matches!(ev, Event::Line(Err(LineError::TooLong { limit: 512 }))),
            "{ev:?}"
        );
        assert_eq!(line(c.next_line().await), b"THIRD");
        drop(wr);
        drop(rd);
        assert!(matches!(c.next_line().await, Event::Closed));
    }

    #[tokio::test]
    async fn body_bytes_and_unread() {
        let (mut c, mut client, _tx) = conn(512, Duration::from_secs(5));
        client
            .write_all(b"DATA\r\nbody\r\n.\r\nQUIT\r\n")
            .await
            .unwrap();
        assert_eq!(line(c.next_line().await), b"DATA");
        // The rest was read with the command: the line reader hands it over as raw bytes.
        let raw = c.read_raw().await.unwrap().unwrap();
        assert_eq!(raw, b"body\r\n.\r\nQUIT\r\n");
        // The body ends after ".\r\n"; what follows goes back to the line reader.
        c.unread(&raw[9..]);
        assert_eq!(line(c.next_line().await), b"QUIT");
    }

    #[tokio::test]
    async fn idle_timeout_and_shutdown() {
        let (mut c, _client, tx) = conn(512, Duration::from_millis(50));
        assert!(matches!(c.next_line().await, Event::Timeout));
        let waiter = tokio::spawn(async move { c.next_line().await });
        let _ = tx.send(true);
        let ev = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(ev, Event::Shutdown), "{ev:?}");
    }

    /// STARTTLS over a pipe: the go-ahead goes out in clear, the plaintext pipelined behind the
    /// command is discarded, and the next line arrives over TLS.
    #[tokio::test]
    async fn start_tls_over_a_pipe() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::config::Config::embedded();
        cfg.data_dir = dir.path().to_path_buf();
        let server_tls = crate::tls::load_or_create(&cfg).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&server_tls.cert_path).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let client_cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_cfg));

        let (mut c, mut client, _tx) = conn(512, Duration::from_secs(10));
        client.write_all(b"STARTTLS\r\nINJECTED\r\n").await.unwrap();
        assert_eq!(line(c.next_line().await), b"STARTTLS");
        c.send(b"220 go ahead\r\n");
        let acceptor = server_tls.acceptor.clone();
        let server = tokio::spawn(async move {
            let discarded = c.start_tls(&acceptor).await.unwrap();
            let ev = c.next_line().await;
            (c, discarded, ev)
        });
        let mut go = [0u8; 14];
        client.read_exact(&mut go).await.unwrap();
        assert_eq!(&go, b"220 go ahead\r\n");
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, client).await.unwrap();
        tls.write_all(b"EHLO again\r\n").await.unwrap();
        tls.flush().await.unwrap();
        let (c, discarded, ev) = server.await.unwrap();
        assert_eq!(discarded, b"INJECTED\r\n".len());
        assert!(c.is_tls());
        assert_eq!(line(ev), b"EHLO again");
    }
}
