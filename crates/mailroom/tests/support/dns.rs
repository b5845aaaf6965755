//! [`DnsServer`]: a small authoritative DNS server on an ephemeral loopback port (UDP and TCP
//! on the same port, RFC 1035 §4.2), answering TXT, MX, A and AAAA from a table the test fills
//! and changes while it runs. Names it does not know get NXDOMAIN; known names without records
//! of the asked type get an empty NOERROR answer (RFC 2308 NODATA). A server under test is
//! pointed at it with `[dns] servers = ["127.0.0.1:PORT"]`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Txt(String),
    Mx(u16, String),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
}

type Table = Arc<Mutex<HashMap<String, Vec<Rec>>>>;

/// The running server; it stops with the test process.
#[derive(Clone)]
pub struct DnsServer {
    pub port: u16,
    table: Table,
    queries: Arc<Mutex<Vec<(String, u16)>>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub fn start() -> DnsServer {
        // UDP and TCP on one port number: take a UDP port, then its TCP twin (retry if taken).
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let port = udp.local_addr().ok()?.port();
                let tcp = TcpListener::bind(("127.0.0.1", port)).ok()?;
                Some((udp, tcp))
            })
            .expect("a free UDP+TCP port pair on loopback");
        let port = udp.local_addr().expect("udp addr").port();
        let server = DnsServer {
            port,
            table: Arc::default(),
            queries: Arc::default(),
        };
        let s = server.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(mut answer) = s.answer(&buf[..n]) {
                    // RFC 1035 §4.2.1: over UDP at most 512 octets, else TC and the client
                    // asks again over TCP.
                    if answer.len() > 512 {
                        answer.truncate(12);
                        answer[2] |= 0x02;
                        answer[6..12].fill(0);
                        if let Some(q) = question_bytes(&buf[..n]) {
                            answer[4..6].copy_from_slice(&[0, 1]);
                            answer.extend_from_slice(q);
                        }
                    }
                    let _ = udp.send_to(&answer, from);
                }
            }
        });
        let s = server.clone();
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(mut conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || loop {
                    let mut len = [0u8; 2];
                    if conn.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                    if conn.read_exact(&mut q).is_err() {
                        return;
                    }
                    let Some(a) = s.answer(&q) else { return };
                    let mut out = (a.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&a);
                    if conn.write_all(&out).is_err() {
                        return;
                    }
                });
            }
        });
        server
    }

    /// `"127.0.0.1:PORT"`, as `[dns] servers` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The `[dns]` table pointing a server at this one.
    pub fn config(&self) -> String {
        format!("[dns]\nservers = [\"{}\"]\ntimeout = \"2s\"\n", self.addr())
    }

    /// Adds a record at `name`.
    pub fn add(&self, name: &str, rec: Rec) {
        let mut t = self.table.lock().unwrap();
        t.entry(key(name)).or_default().push(rec);
    }

    /// Adds a TXT record at `name`.
    pub fn txt(&self, name: &str, text: &str) {
        self.add(name, Rec::Txt(text.to_string()));
    }

    /// Removes every record at `name` (the name stops existing).
    pub fn remove(&self, name: &str) {
        self.table.lock().unwrap().remove(&key(name));
    }

    /// The (name, type) of every query so far.
    pub fn queries(&self) -> Vec<(String, u16)> {
        self.queries.lock().unwrap().clone()
    }

    /// The answer to one query message, or None when it is not one.
    fn answer(&self, q: &[u8]) -> Option<Vec<u8>> {
        if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
            return None;
        }
        let (name, end) = read_name(q, 12)?;
        let qtype = u16::from_be_bytes([*q.get(end)?, *q.get(end + 1)?]);
        let question = &q[12..end + 4];
        self.queries.lock().unwrap().push((name.clone(), qtype));
        let table = self.table.lock().unwrap();
        let records = table.get(&key(&name));
        let mut answers = Vec::new();
        for r in records.into_iter().flatten() {
            let (t, data) = match r {
                Rec::Txt(text) if qtype == 16 => {
                    // RFC 1035 §3.3.14: character-strings of at most 255 octets each.
                    let mut d = Vec::new();
                    for chunk in text.as_bytes().chunks(255) {
                        d.push(chunk.len() as u8);
                        d.extend_from_slice(chunk);
                    }
                    if text.is_empty() {
                        d.push(0);
                    }
                    (16u16, d)
                }
                Rec::Mx(pref, host) if qtype == 15 => {
                    let mut d = pref.to_be_bytes().to_vec();
                    d.extend_from_slice(&encode_name(host));
                    (15, d)
                }
                Rec::A(ip) if qtype == 1 => (1, ip.octets().to_vec()),
                Rec::Aaaa(ip) if qtype == 28 => (28, ip.octets().to_vec()),
                _ => continue,
            };
            let mut rr = vec![0xC0, 12]; // the name: a pointer to the question's
            rr.extend_from_slice(&t.to_be_bytes());
            rr.extend_from_slice(&1u16.to_be_bytes()); // IN
            rr.extend_from_slice(&60u32.to_be_bytes()); // TTL
            rr.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rr.extend_from_slice(&data);
            answers.push(rr);
        }
        let rcode = if records.is_none() { 3 } else { 0 }; // NXDOMAIN / NOERROR
        let mut out = Vec::new();
        out.extend_from_slice(&q[0..2]);
        // QR, opcode 0, AA, RD copied; RA; rcode.
        out.push(0x84 | (q[2] & 0x01));
        out.push(0x80 | rcode);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(question);
        for a in answers {
            out.extend_from_slice(&a);
        }
        Some(out)
    }
}

/// The question section's bytes (name, type, class) of a query.
fn question_bytes(q: &[u8]) -> Option<&[u8]> {
    let (_, end) = read_name(q, 12)?;
    q.get(12..end + 4)
}

/// Reads an uncompressed name at `pos`; (name, offset after it).
fn read_name(m: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    loop {
        let len = *m.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(m.get(pos..pos + len)?).into_owned());
        pos += len;
    }
    Some((labels.join("."), pos))
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() {
            continue;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}
