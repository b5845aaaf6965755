//! SMTP helpers: a greeted, logged-in or mid-transaction session, delivering and submitting
//! a message step by step (asserting every reply), the message as it goes on the wire after
//! DATA, and base64 for AUTH.

use std::net::SocketAddr;

use super::Client;

/// Connects, reads the 220 greeting and says EHLO `name`; panics unless both succeed.
pub fn hello(addr: SocketAddr, name: &str) -> Client {
    let mut c = Client::connect(addr);
    c.expect_code(220);
    c.cmd(&format!("EHLO {name}"), 250);
    c
}

/// [`hello`] as `client.test`, then AUTH PLAIN as `user`; panics unless it gets 235.
pub fn login(addr: SocketAddr, user: (&str, &str)) -> Client {
    let mut c = hello(addr, "client.test");
    c.cmd(&auth_plain(user.0, user.1), 235);
    c
}

/// [`hello`], MAIL FROM `from` and RCPT TO each of `to`, every reply 250: the client is
/// ready for DATA (or BDAT).
pub fn transaction(addr: SocketAddr, name: &str, from: &str, to: &[&str]) -> Client {
    let mut c = hello(addr, name);
    mail_to(&mut c, from, to);
    c
}

/// MAIL FROM `from` and RCPT TO each of `to`, asserting 250 each time.
pub fn mail_to(c: &mut Client, from: &str, to: &[&str]) {
    c.cmd(&format!("MAIL FROM:<{from}>"), 250);
    for r in to {
        c.cmd(&format!("RCPT TO:<{r}>"), 250);
    }
}

/// DATA, the message, the final dot (250) and QUIT (221).
pub fn data_and_quit(c: &mut Client, message: &str) {
    c.cmd("DATA", 354);
    c.send_raw(wire_body(message).as_bytes());
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
}

/// Delivers one message over an MX listener (no AUTH); panics unless every step succeeds.
pub fn deliver(addr: SocketAddr, from: &str, to: &[&str], message: &str) {
    let mut c = transaction(addr, "test.example", from, to);
    data_and_quit(&mut c, message);
}

/// Submits a message over the submission port with AUTH PLAIN; panics unless accepted.
pub fn submit(addr: SocketAddr, user: (&str, &str), to: &[&str], message: &str) {
    let mut c = login(addr, user);
    mail_to(&mut c, user.0, to);
    data_and_quit(&mut c, message);
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
