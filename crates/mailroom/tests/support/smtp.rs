//! SMTP helpers: delivering and submitting a message step by step (asserting every reply),
//! the message as it goes on the wire after DATA, and base64 for AUTH.

use std::net::SocketAddr;

use super::Client;

/// Delivers one message over an MX listener (no AUTH); panics unless every step succeeds.
pub fn deliver(addr: SocketAddr, from: &str, to: &[&str], message: &str) {
    let mut c = Client::connect(addr);
    c.expect_code(220);
    c.cmd("EHLO test.example", 250);
    c.cmd(&format!("MAIL FROM:<{from}>"), 250);
    for r in to {
        c.cmd(&format!("RCPT TO:<{r}>"), 250);
    }
    c.cmd("DATA", 354);
    c.send_raw(wire_body(message).as_bytes());
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
}

/// Submits a message over the submission port with AUTH PLAIN; panics unless accepted.
pub fn submit(addr: SocketAddr, user: (&str, &str), to: &[&str], message: &str) {
    let mut c = Client::connect(addr);
    c.expect_code(220);
    c.cmd("EHLO client.test", 250);
    c.cmd(&auth_plain(user.0, user.1), 235);
    c.cmd(&format!("MAIL FROM:<{}>", user.0), 250);
    for r in to {
        c.cmd(&format!("RCPT TO:<{r}>"), 250);
    }
    c.cmd("DATA", 354);
    c.send_raw(wire_body(message).as_bytes());
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
}

/// `AUTH PLAIN <base64 of \0user\0password>` (RFC 4616), with the initial response.
pub fn auth_plain(user: &str, password: &str) -> String {
    format!("AUTH PLAIN {}", b64(&format!("\0{user}\0{password}")))
}

/// A message as a client sends it after DATA: CRLF line ends, lines starting with "." stuffed.
pub fn wire_body(message: &str) -> String {
    let mut out = String::new();
    for line in message
        .replace("\r\n", "\n")
        .trim_end_matches('\n')
        .split('\n')
    {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
