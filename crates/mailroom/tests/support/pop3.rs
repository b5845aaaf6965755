//! POP3 helpers: [`Pop`], a byte-exact client (it keeps every octet, where [`super::Client`]
//! trims line ends), with `try_` forms for load that expects failures; and a message to
//! deliver.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A raw POP3 client.
pub struct Pop {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub greeting: String,
}

impl Pop {
    /// Connects and reads the greeting (asserting +OK).
    pub fn connect(addr: SocketAddr) -> Pop {
        let mut p = Pop::open(addr).expect("connect");
        let g = p.line().expect("greeting");
        assert!(g.starts_with("+OK "), "greeting: {g:?}");
        p.greeting = g;
        p
    }

    /// Connects and logs in with USER/PASS.
    pub fn login(addr: SocketAddr, user: &str, pass: &str) -> Pop {
        let mut p = Pop::connect(addr);
        p.ok(&format!("USER {user}"));
        p.ok(&format!("PASS {pass}"));
        p
    }

    /// Connects within 5 s; every read waits at most 30 s.
    fn open(addr: SocketAddr) -> io::Result<Pop> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Pop {
            stream,
            reader,
            greeting: String::new(),
        })
    }

    /// Connects and logs in with USER/PASS; a reply other than +OK is an error.
    pub fn try_login(addr: SocketAddr, user: (&str, &str)) -> io::Result<Pop> {
        let mut p = Pop::open(addr)?;
        p.greeting = p.try_ok_line()?;
        p.try_ok(&format!("USER {}", user.0))?;
        p.try_ok(&format!("PASS {}", user.1))?;
        Ok(p)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// One raw line including its CRLF; None on EOF.
    pub fn raw_line(&mut self) -> Option<Vec<u8>> {
        match self.try_raw_line() {
            Ok(l) => Some(l),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// One raw line including its CRLF; EOF is `UnexpectedEof`.
    fn try_raw_line(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(buf)
    }

    /// One line without its CRLF (asserting it ends in CRLF); None on EOF.
    pub fn line(&mut self) -> Option<String> {
        let raw = self.raw_line()?;
        assert!(raw.ends_with(b"\r\n"), "line without CRLF: {raw:?}");
        Some(String::from_utf8(raw[..raw.len() - 2].to_vec()).expect("utf8 reply"))
    }

    /// One line without its line end (lossy UTF-8).
    fn try_line(&mut self) -> io::Result<String> {
        let mut raw = self.try_raw_line()?;
        while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            raw.pop();
        }
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// The next line if it is +OK, else the line as an error.
    fn try_ok_line(&mut self) -> io::Result<String> {
        let line = self.try_line()?;
        if line.starts_with("+OK") {
            Ok(line)
        } else {
            Err(io::Error::other(line))
        }
    }

    /// Sends a command and returns the status line, asserting +OK.
    pub fn ok(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let l = self
            .line()
            .unwrap_or_else(|| panic!("closed after {cmd:?}"));
        assert!(l.starts_with("+OK"), "after {cmd:?}: {l:?}");
        l
    }

    /// Sends a command; its +OK status line, or what came instead as the error.
    pub fn try_ok(&mut self, cmd: &str) -> io::Result<String> {
        self.stream.write_all(format!("{cmd}\r\n").as_bytes())?;
        self.try_ok_line()
    }

    /// Sends a command and returns the status line, asserting -ERR.
    pub fn err(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.expect_err()
    }

    pub fn expect_err(&mut self) -> String {
        let l = self.line().expect("closed while waiting for -ERR");
        assert!(l.starts_with("-ERR "), "expected -ERR, got {l:?}");
        l
    }

    /// Reads the lines of a multi-line response up to the "." (raw, stuffing undone, CRLF kept).
    pub fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self
                .raw_line()
                .expect("closed inside a multi-line response");
            assert!(
                l.ends_with(b"\r\n"),
                "line without CRLF inside a response: {l:?}"
            );
            if l == b".\r\n" {
                return out;
            }
            if l.starts_with(b".") {
                assert!(l.starts_with(b".."), "unstuffed dot line: {l:?}");
                out.extend_from_slice(&l[1..]);
            } else {
                out.extend_from_slice(&l);
            }
        }
    }

    /// Sends a command expecting a multi-line +OK response; returns (status, lines).
    pub fn list(&mut self, cmd: &str) -> (String, Vec<String>) {
        let status = self.ok(cmd);
        let body = String::from_utf8(self.body()).expect("utf8");
        (status, body.lines().map(String::from).collect())
    }

    /// Sends a command expecting a multi-line +OK response; its lines (stuffing undone, line
    /// ends removed), or the first error.
    pub fn try_list(&mut self, cmd: &str) -> io::Result<Vec<String>> {
        self.try_ok(cmd)?;
        let mut out = Vec::new();
        loop {
            let l = self.try_line()?;
            if l == "." {
                return Ok(out);
            }
            out.push(l.strip_prefix('.').map(String::from).unwrap_or(l));
        }
    }

    /// RETR n: (status line, message octets as the client sees them).
    pub fn retr(&mut self, n: usize) -> (String, Vec<u8>) {
        let status = self.ok(&format!("RETR {n}"));
        (status, self.body())
    }

    /// STAT as (count, octets).
    pub fn stat(&mut self) -> (usize, u64) {
        let l = self.ok("STAT");
        let mut w = l.split(' ').skip(1);
        let n = w.next().and_then(|s| s.parse().ok()).expect("count");
        let o = w.next().and_then(|s| s.parse().ok()).expect("octets");
        assert!(w.next().is_none(), "STAT must be exactly +OK nn mm: {l:?}");
        (n, o)
    }

    /// True when the server closes the connection within a few seconds.
    pub fn closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

/// A small RFC 5322 message from bob to alice with the given subject and body lines.
pub fn message(subject: &str, body: &str) -> String {
    format!(
        "From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    )
}
