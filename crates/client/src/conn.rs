//! The connection under both clients: a stream (plain TCP, or TLS after STARTTLS/STLS or on
//! an implicit-TLS port), a bounded line reader, per-wait timeouts and the trace.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use mailroom_proto::line::{LineError, LineReader};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::trace::{printable, Direction, TraceFn};

/// The byte stream a client talks over: plain TCP or TLS (RFC 3207 for SMTP, RFC 2595 for
/// POP3, RFC 8314 for implicit TLS); everything above this type stays the same.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while a plain stream is being wrapped; every I/O on it fails.
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

/// What went wrong on the connection; each client turns it into its own error type.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// Nothing arrived (or could be sent) within the timeout.
    Timeout(&'static str),
    /// The peer closed the connection (EOF, reset, broken pipe).
    Closed,
    /// A line longer than the limit.
    LineTooLong(usize),
    /// Any other I/O error.
    Io(io::Error),
    /// The connection could not be made (refused, unreachable, no such host).
    Connect(io::Error),
    /// The TLS handshake failed (certificate not trusted, name mismatch, protocol error).
    Tls(String),
    /// The server sent more after its go-ahead for TLS: a possible injection (the client side
    /// of CVE-2011-0411), so the session is abandoned.
    TlsInjection,
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        if is_closed(&e) {
            ConnError::Closed
        } else {
            ConnError::Io(e)
        }
    }
}

pub(crate) struct Conn {
    stream: Stream,
    lines: LineReader,
    buf: Vec<u8>,
    eof: bool,
    pub(crate) server: String,
    pub(crate) timeout: Duration,
    pub(crate) trace: Option<TraceFn>,
}

impl Conn {
    /// Resolves `server` ("host:port"), connects within `timeout`, and with `tls` runs the
    /// handshake at once (implicit TLS, RFC 8314). Every client opens its connection here.
    pub(crate) async fn open(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
        max_line: usize,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<Conn, ConnError> {
        let mut conn = Conn::connect(server, timeout, trace, max_line).await?;
        if let Some(tls) = tls {
            conn.start_tls(tls).await?;
        }
        Ok(conn)
    }

    async fn connect(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
        max_line: usize,
    ) -> Result<Conn, ConnError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(server)).await {
            Err(_) => return Err(ConnError::Timeout("the connection to be accepted")),
            Ok(Err(e)) => return Err(ConnError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        // Commands are small and we wait for each answer: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream: Stream::Plain(stream),
            lines: LineReader::new(max_line),
            buf: vec![0; 16 * 1024],
            eof: false,
            server: server.to_string(),
            timeout,
            trace,
        })
    }

    /// True when the connection runs over TLS.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Runs the TLS handshake on the plain connection (after the server's go-ahead for
    /// STARTTLS/STLS, or at once for implicit TLS). Anything the server sent after its
    /// go-ahead, in clear, is refused (RFC 3207 §4.2: it must not be trusted).
    pub(crate) async fn start_tls(&mut self, tls: &crate::tls::ClientTls) -> Result<(), ConnError> {
        if self.lines.buffered_len() > 0 {
            return Err(ConnError::TlsInjection);
        }
        let Some(name) = crate::tls::server_name(&self.server) else {
            return Err(ConnError::Tls(format!(
                "'{}' is not a host name or address to check a certificate against",
                self.server
            )));
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ConnError::Tls("TLS is already active".into()));
        };
        match tokio::time::timeout(self.timeout, tls.connector().connect(name, tcp)).await {
            Err(_) => Err(ConnError::Timeout("the TLS handshake")),
            Ok(Err(e)) => Err(ConnError::Tls(e.to_string())),
            Ok(Ok(s)) => {
                self.stream = Stream::Tls(Box::new(s));
                Ok(())
            }
        }
    }

    pub(crate) fn set_max_line(&mut self, max: usize) {
        self.lines.set_max_len(max);
    }

    pub(crate) fn max_line(&self) -> usize {
        self.lines.max_len()
    }

    /// Reports one line to the trace (made printable).
    pub(crate) fn trace(&self, dir: Direction, line: &[u8]) {
        if let Some(t) = &self.trace {
            t(dir, &printable(line));
        }
    }

    /// Reports one line of our own, given as text (used for masked lines).
    pub(crate) fn trace_text(&self, dir: Direction, line: &str) {
        if let Some(t) = &self.trace {
            t(dir, line);
        }
    }

    /// The next line without its terminator (not traced: the caller decides how to show it).
    pub(crate) async fn read_line(
        &mut self,
        waiting_for: &'static str,
    ) -> Result<Vec<u8>, ConnError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.read_line_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ConnError::Timeout(waiting_for)),
        }
    }

    async fn read_line_inner(&mut self) -> Result<Vec<u8>, ConnError> {
        loop {
            match self.lines.next_line() {
                Some(Ok(line)) => return Ok(line),
                Some(Err(LineError::TooLong { limit })) => {
                    return Err(ConnError::LineTooLong(limit))
                }
                None => {}
            }
            if self.eof {
                return Err(ConnError::Closed);
            }
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                // A partial last line without its CRLF is not a line: the peer went away.
                self.eof = true;
                return Err(ConnError::Closed);
            }
            self.lines.push(&self.buf[..n]);
        }
    }

    /// Exactly `n` octets, raw (an IMAP literal): first what the line reader holds, then from
    /// the stream; octets beyond `n` go back to the line reader. Each read has the timeout, so
    /// a large literal that keeps arriving is not cut off. The caller bounds `n`.
    pub(crate) async fn read_exact(
        &mut self,
        n: usize,
        waiting_for: &'static str,
    ) -> Result<Vec<u8>, ConnError> {
        let mut out = self.lines.take_buffered();
        if out.len() >= n {
            let rest = out.split_off(n);
            self.lines.push(&rest);
            return Ok(out);
        }
        out.reserve(n.min(16 * 1024 * 1024) - out.len().min(n));
        while out.len() < n {
            if self.eof {
                return Err(ConnError::Closed);
            }
            let got =
                match tokio::time::timeout(self.timeout, self.stream.read(&mut self.buf)).await {
                    Err(_) => return Err(ConnError::Timeout(waiting_for)),
                    Ok(r) => r?,
                };
            if got == 0 {
                self.eof = true;
                return Err(ConnError::Closed);
            }
            let need = n - out.len();
            if got <= need {
                out.extend_from_slice(&self.buf[..got]);
            } else {
                out.extend_from_slice(&self.buf[..need]);
                self.lines.push(&self.buf[need..got]);
            }
        }
        Ok(out)
    }

    /// Writes and flushes `bytes` within the timeout.
    pub(crate) async fn write_all(
        &mut self,
        bytes: &[u8],
        waiting_for: &'static str,
    ) -> Result<(), ConnError> {
        let timeout = self.timeout;
        let stream = &mut self.stream;
        let fut = async move {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r.map_err(ConnError::from),
            Err(_) => Err(ConnError::Timeout(waiting_for)),
        }
    }

    /// Closes our side; errors are of no interest at this point.
    pub(crate) async fn shutdown(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}
