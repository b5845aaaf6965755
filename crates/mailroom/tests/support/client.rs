//! [`Client`]: a line-oriented raw socket client, as a person at telnet would be, with SMTP
//! replies read whole. Every step has a `try_` form that returns the I/O error instead of
//! failing the test (for load that expects refusals and dropped connections).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A line-oriented raw socket client.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// An SMTP reply: code and text lines.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The text of the last line.
    pub fn last(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }
}

impl Client {
    /// Connects; every read waits at most 20 s.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr, Duration::from_secs(20)).expect("connect")
    }

    /// Connects within 5 s; every read waits at most `read_timeout`.
    pub fn try_connect(addr: SocketAddr, read_timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { stream, reader })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes).expect("write");
    }

    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn try_send(&mut self, line: &str) -> io::Result<()> {
        self.try_send_raw(format!("{line}\r\n").as_bytes())
    }

    /// One line without CRLF; None on EOF.
    pub fn line(&mut self) -> Option<String> {
        match self.try_line() {
            Ok(l) => Some(l),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// One line without CRLF (lossy UTF-8); EOF is `UnexpectedEof`.
    pub fn try_line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads one SMTP reply (all its lines).
    pub fn reply(&mut self) -> Reply {
        match self.try_reply() {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                panic!("connection closed while waiting for a reply")
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Reads one SMTP reply; a line that is not one is `InvalidData`.
    pub fn try_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.try_line()?;
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad reply line: {line:?}"),
                )
            })?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    pub fn expect_code(&mut self, code: u16) -> Reply {
        let r = self.reply();
        assert_eq!(r.code, code, "expected {code}, got {r:?}");
        r
    }

    /// Sends a command and asserts the reply code.
    pub fn cmd(&mut self, line: &str, code: u16) -> Reply {
        self.send(line);
        let r = self.reply();
        assert_eq!(r.code, code, "after {line:?}: expected {code}, got {r:?}");
        r
    }

    /// True when the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
}
