//! The classic services over TCP, driven with std sockets.
mod common;
use common::*;
use mailroom_services::chargen;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[test]
fn echo_echoes_until_the_client_closes() {
    let lab = Lab::start(everything());
    let mut s = tcp(lab.addr("echo/tcp"));
    for msg in [&b"hello\r\n"[..], b"second line\n", b"\x00\xffbinary"] {
        s.write_all(msg).unwrap();
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    // A large transfer with a half-close: everything comes back, then EOF.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let sent = big.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let back = read_to_end(s);
    writer.join().unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "echoed data differs");
}

#[test]
fn discard_answers_nothing() {
    let lab = Lab::start(everything());
    let mut s = tcp(lab.addr("discard/tcp"));
    s.write_all(&vec![b'x'; 100_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_end(s).is_empty(), "discard sent data");
}

#[test]
fn daytime_answers_once_and_closes() {
    let lab = Lab::start(everything());
    let text = String::from_utf8(read_to_end(tcp(lab.addr("daytime/tcp")))).unwrap();
    assert!(text.ends_with("-UTC\r\n"), "{text:?}");
    let t = chrono::NaiveDateTime::parse_from_str(text.trim_end(), "%A, %B %d, %Y %H:%M:%S-UTC")
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let diff = (t.and_utc().timestamp() - unix_now()).abs();
    assert!(diff <= 2, "daytime is {diff}s off: {text:?}");
}

#[test]
fn time_sends_32_bit_seconds_since_1900() {
    let lab = Lab::start(everything());
    let b = read_to_end(tcp(lab.addr("time/tcp")));
    assert_eq!(b.len(), 4, "{b:?}");
    let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let expect = (unix_now() + 2_208_988_800) as u32;
    assert!(secs.abs_diff(expect) <= 2, "{secs} vs {expect}");
}

#[test]
fn qotd_builtin_and_from_file() {
    let lab = Lab::start(everything());
    for _ in 0..5 {
        let q = read_to_end(tcp(lab.addr("qotd/tcp")));
        assert!(!q.is_empty() && q.len() < 512, "{} octets", q.len());
        assert!(q.ends_with(b"\r\n"));
        assert!(
            String::from_utf8_lossy(&q).contains("  -- "),
            "{:?}",
            String::from_utf8_lossy(&q)
        );
    }
    drop(lab);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quotes");
    std::fs::write(&path, "The only quote.\n").unwrap();
    let mut cfg = everything();
    cfg.qotd.quotes_file = Some(path);
    let lab = Lab::start(cfg);
    assert_eq!(
        read_to_end(tcp(lab.addr("qotd/tcp"))),
        b"The only quote.\r\n"
    );
    let udp = udp_client();
    assert_eq!(
        udp_ask(&udp, lab.addr("qotd/udp"), b""),
        b"The only quote.\r\n"
    );
}

#[test]
fn qotd_file_with_a_long_quote_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quotes");
    std::fs::write(&path, "x".repeat(600)).unwrap();
    let mut cfg = everything();
    cfg.qotd.quotes_file = Some(path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = rt.block_on(mailroom_services::start(&cfg, rx)).unwrap_err();
    assert!(
        err.to_string().starts_with("services.qotd.quotes_file:"),
        "{err}"
    );
    assert!(err.to_string().contains("RFC 865"), "{err}");
}

#[test]
fn chargen_streams_the_rfc_pattern() {
    let lab = Lab::start(everything());
    let mut s = tcp(lab.addr("chargen/tcp"));
    let mut got = vec![0u8; 200 * chargen::LINE_LEN];
    s.read_exact(&mut got).unwrap();
    for (n, line) in got.chunks(chargen::LINE_LEN).enumerate() {
        assert_eq!(line, &chargen::line(n)[..], "line {n}");
    }
    // Data sent to chargen is thrown away; the stream goes on.
    s.write_all(b"ignored\r\n").unwrap();
    let mut more = vec![0u8; 10 * chargen::LINE_LEN];
    s.read_exact(&mut more).unwrap();
    assert_eq!(&more[..chargen::LINE_LEN], &chargen::line(200)[..]);
}

#[test]
fn chargen_stops_when_the_client_closes() {
    let lab = Lab::start(everything());
    // Many clients that read a bit and go away, rudely or politely: the server keeps serving.
    for i in 0..20 {
        let mut s = tcp(lab.addr("chargen/tcp"));
        let mut buf = [0u8; 1000];
        s.read_exact(&mut buf).unwrap();
        if i % 2 == 0 {
            s.shutdown(Shutdown::Both).unwrap();
        }
        drop(s);
    }
    let mut s = tcp(lab.addr("chargen/tcp"));
    let mut buf = [0u8; chargen::LINE_LEN];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(buf, chargen::line(0));
}

#[test]
fn chargen_drops_a_client_that_stops_reading() {
    // The server waits on TCP flow control (it cannot buffer without bound), and a write that
    // makes no progress for the idle timeout ends the connection.
    let mut cfg = everything();
    cfg.idle_timeout = Duration::from_secs(1);
    let lab = Lab::start(cfg);
    let mut s = tcp(lab.addr("chargen/tcp"));
    std::thread::sleep(Duration::from_secs(3));
    // Drain what the kernel buffered: the stream must end (EOF or reset), not go on forever.
    let started = Instant::now();
    let mut total = 0usize;
    let mut buf = vec![0u8; 65_536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read failed after {total} octets: {e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "chargen kept streaming ({total} octets) after the idle timeout"
        );
    }
    assert!(total > 0, "nothing was streamed");
    assert!(
        total < 64 * 1024 * 1024,
        "{total} octets buffered for a client that did not read"
    );
}

#[test]
fn idle_connections_are_closed() {
    let mut cfg = everything();
    cfg.idle_timeout = Duration::from_millis(500);
    let lab = Lab::start(cfg);
    for svc in ["echo/tcp", "discard/tcp", "calc/tcp"] {
        let s = tcp(lab.addr(svc));
        let started = Instant::now();
        let rest = read_to_end(s);
        assert!(rest.is_empty(), "{svc}: {rest:?}");
        let t = started.elapsed();
        assert!(
            t >= Duration::from_millis(400) && t < Duration::from_secs(3),
            "{svc}: closed after {t:?}"
        );
    }
}

fn is_closed(mut s: std::net::TcpStream) -> bool {
    // Closed at once: EOF or reset. Served: the read waits for data and times out.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn connection_cap_per_listener() {
    let mut cfg = everything();
    cfg.max_connections = 2;
    let lab = Lab::start(cfg);
    let addr = lab.addr("echo/tcp");
    let mut a = tcp(addr);
    let mut b = tcp(addr);
    for s in [&mut a, &mut b] {
        s.write_all(b"x").unwrap();
        let mut r = [0u8; 1];
        s.read_exact(&mut r).unwrap();
    }
    let c = tcp(addr);
    assert!(
        is_closed(c),
        "third connection was served beyond max_connections = 2"
    );
    // Another listener has its own cap.
    let mut d = tcp(lab.addr("calc/tcp"));
    d.write_all(b"1+1\n").unwrap();
    let mut r = [0u8; 3];
    d.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"2\r\n");
    // A slot frees up when a connection ends.
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    let mut e = tcp(addr);
    e.write_all(b"y").unwrap();
    let mut r = [0u8; 1];
    e.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"y");
}

#[test]
fn connection_cap_per_address() {
    let mut cfg = everything();
    cfg.max_connections_per_ip = 1;
    let lab = Lab::start(cfg);
    let mut a = tcp(lab.addr("calc/tcp"));
    a.write_all(b"2*3\n").unwrap();
    let mut r = [0u8; 3];
    a.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"6\r\n");
    // The calculator says why it closes.
    let b = tcp(lab.addr("calc/tcp"));
    assert_eq!(read_to_end(b), b"ERR too many connections\r\n");
}

#[test]
fn shutdown_stops_listeners_and_connections() {
    let lab = Lab::start(everything());
    let addr = lab.addr("echo/tcp");
    let mut open = tcp(addr);
    open.write_all(b"x").unwrap();
    let mut r = [0u8; 1];
    open.read_exact(&mut r).unwrap();
    lab.shutdown();
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still accepting after shutdown"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(read_to_end(open).is_empty());
}

#[test]
fn bind_errors_name_the_key() {
    let taken = std::net::TcpListener::bind(LOCAL0).unwrap();
    let mut cfg = mailroom_services::ServicesConfig::default();
    cfg.daytime.tcp = Some(taken.local_addr().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = rt.block_on(mailroom_services::start(&cfg, rx)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("services.daytime.tcp: cannot bind"),
        "{err}"
    );
}

#[test]
fn ipv6_loopback() {
    // ::1 is loopback too; skip only if this machine has no IPv6 loopback at all.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no ::1 on this machine; IPv6 not tested");
        return;
    }
    let mut cfg = mailroom_services::ServicesConfig::default();
    cfg.echo.tcp = "[::1]:0".parse().ok();
    cfg.echo.udp = "[::1]:0".parse().ok();
    let lab = Lab::start(cfg);
    let mut s = tcp(lab.addr("echo/tcp"));
    s.write_all(b"six").unwrap();
    let mut r = [0u8; 3];
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"six");
    let u = std::net::UdpSocket::bind("[::1]:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(udp_ask(&u, lab.addr("echo/udp"), b"v6"), b"v6");
}
