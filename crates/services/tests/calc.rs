//! The calculator over TCP and UDP: many requests per connection, concurrent clients, both
//! transports on one address, every error on the wire.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Request -> reply, on the wire. Includes every error kind.
const WIRE: &[(&str, &str)] = &[
    ("1+2", "3"),
    ("2 * (3 + 4)", "14"),
    ("-2^2", "-4"),
    ("0.1+0.2", "0.3"),
    ("1/3", "0.3333333333333333333333333333"),
    ("7 % 3", "1"),
    ("ADD 3 4", "7"),
    ("sub 10 4.5", "5.5"),
    ("MUL -2 3", "-6"),
    ("DIV 1 8", "0.125"),
    ("MOD 17 5", "2"),
    ("POW 2 64", "18446744073709551616"),
    ("1/0", "ERR division by zero"),
    ("MOD 1 0", "ERR division by zero"),
    (
        "1 +",
        "ERR syntax error at column 4: expected a number, '(' or '-' at the end of the line",
    ),
    (
        "(1",
        "ERR syntax error at column 3: missing ')' for the '(' at column 1",
    ),
    ("", "ERR syntax error at column 1: empty request"),
    ("10^40", "ERR number too large"),
    ("2^0.5", "ERR exponent must be an integer"),
];

fn ask_tcp(r: &mut BufReader<TcpStream>, w: &mut TcpStream, req: &str) -> String {
    w.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.ends_with("\r\n"), "{line:?}");
    line.trim_end_matches("\r\n").to_string()
}

fn session(addr: SocketAddr) -> (BufReader<TcpStream>, TcpStream) {
    let s = tcp(addr);
    (BufReader::new(s.try_clone().unwrap()), s)
}

#[test]
fn tcp_many_requests_per_connection() {
    let lab = Lab::start(everything());
    let (mut r, mut w) = session(lab.addr("calc/tcp"));
    for (req, want) in WIRE {
        assert_eq!(ask_tcp(&mut r, &mut w, req), *want, "request {req:?}");
    }
    // Bare LF works as well as CRLF.
    w.write_all(b"6*7\n").unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "42\r\n");
}

#[test]
fn tcp_pipelined_requests_are_answered_in_order() {
    let lab = Lab::start(everything());
    let (r, mut w) = session(lab.addr("calc/tcp"));
    let reqs: String = (0..1000).map(|i| format!("{i} * 2\n")).collect();
    let writer = std::thread::spawn(move || {
        w.write_all(reqs.as_bytes()).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let lines: Vec<String> = r.lines().map(|l| l.unwrap()).collect();
    writer.join().unwrap();
    assert_eq!(lines.len(), 1000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l.trim_end(), (i * 2).to_string());
    }
}

#[test]
fn tcp_line_too_long_then_goes_on() {
    let mut cfg = everything();
    cfg.calc.max_line = 64;
    let lab = Lab::start(cfg);
    let (mut r, mut w) = session(lab.addr("calc/tcp"));
    let long = vec!["1"; 100].join("+"); // 199 octets
    assert_eq!(ask_tcp(&mut r, &mut w, &long), "ERR line too long");
    assert_eq!(ask_tcp(&mut r, &mut w, "1+1"), "2");
    // A line that never ends is answered once the limit is passed, not buffered forever.
    w.write_all(&vec![b'9'; 100_000]).unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "ERR line too long\r\n");
    w.write_all(b"\n2+2\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "4\r\n");
    // Exactly max_line octets is fine.
    let exact = format!("{}1", "0".repeat(63));
    assert_eq!(ask_tcp(&mut r, &mut w, &exact), "1");
}

#[test]
fn udp_one_reply_per_datagram() {
    let lab = Lab::start(everything());
    let u = udp_client();
    let to = lab.addr("calc/udp");
    for (req, want) in WIRE {
        let got = udp_ask(&u, to, req.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("{want}\r\n"),
            "request {req:?}"
        );
    }
    // A trailing line end (as `nc -u` sends) is not part of the request.
    assert_eq!(udp_ask(&u, to, b"2+2\r\n"), b"4\r\n");
    assert_eq!(udp_ask(&u, to, b"2+3\n"), b"5\r\n");
    let long = vec![b'1'; 2000];
    assert_eq!(udp_ask(&u, to, &long), b"ERR line too long\r\n");
}

#[test]
fn one_address_both_transports() {
    let lab = Lab::start(everything());
    assert_eq!(
        lab.addr("calc/tcp"),
        lab.addr("calc/udp"),
        "tcp and udp share the port"
    );
}

#[test]
fn concurrent_tcp_clients_and_udp_at_once() {
    let lab = Lab::start(everything());
    let addr = lab.addr("calc/tcp");
    let mut handles = Vec::new();
    for c in 0..8u64 {
        handles.push(std::thread::spawn(move || {
            let (mut r, mut w) = session(addr);
            for i in 0..200u64 {
                let got = ask_tcp(&mut r, &mut w, &format!("{c} * 1000 + {i}"));
                assert_eq!(got, (c * 1000 + i).to_string());
            }
        }));
    }
    for c in 0..4u64 {
        handles.push(std::thread::spawn(move || {
            let u = udp_client();
            for i in 0..200u64 {
                let got = udp_ask(&u, addr, format!("ADD {} {i}", c * 1_000_000).as_bytes());
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    format!("{}\r\n", c * 1_000_000 + i)
                );
            }
        }));
    }
    for h in handles {
        h.join().expect("client thread");
    }
}

#[test]
fn tcp_idle_timeout_closes_a_quiet_session() {
    let mut cfg = everything();
    cfg.idle_timeout = Duration::from_millis(600);
    let lab = Lab::start(cfg);
    let (mut r, mut w) = session(lab.addr("calc/tcp"));
    assert_eq!(ask_tcp(&mut r, &mut w, "1+1"), "2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ask_tcp(&mut r, &mut w, "2+2"),
        "4",
        "activity resets the timer"
    );
    let mut rest = String::new();
    let n = r.read_line(&mut rest).unwrap();
    assert_eq!(n, 0, "expected close, got {rest:?}");
}
