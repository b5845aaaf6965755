//! The classic services and SNTP over UDP, driven with std sockets.
mod common;
use common::*;
use mailroom_services::{chargen, sntp};
use std::net::UdpSocket;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[test]
fn echo_answers_each_datagram() {
    let lab = Lab::start(everything());
    let u = udp_client();
    let to = lab.addr("echo/udp");
    assert_eq!(udp_ask(&u, to, b"hello"), b"hello");
    assert_eq!(
        udp_ask(&u, to, b""),
        b"",
        "an empty datagram is echoed empty"
    );
    let big = vec![0xA5u8; 60_000];
    assert_eq!(udp_ask(&u, to, &big), big);
}

#[test]
fn discard_ignores() {
    let lab = Lab::start(everything());
    let u = udp_client();
    u.send_to(b"anything", lab.addr("discard/udp")).unwrap();
    udp_silence(&u, Duration::from_millis(500));
}

#[test]
fn daytime_and_time() {
    let lab = Lab::start(everything());
    let u = udp_client();
    let text = String::from_utf8(udp_ask(&u, lab.addr("daytime/udp"), b"")).unwrap();
    let t = chrono::NaiveDateTime::parse_from_str(text.trim_end(), "%A, %B %d, %Y %H:%M:%S-UTC")
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert!(
        (t.and_utc().timestamp() - unix_now()).abs() <= 2,
        "{text:?}"
    );

    let b = udp_ask(&u, lab.addr("time/udp"), b"");
    assert_eq!(b.len(), 4);
    let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert!(secs.abs_diff((unix_now() + 2_208_988_800) as u32) <= 2);
}

#[test]
fn chargen_sends_0_to_512_octets_of_pattern() {
    let lab = Lab::start(everything());
    let u = udp_client();
    let mut lengths = std::collections::HashSet::new();
    for _ in 0..40 {
        let d = udp_ask(&u, lab.addr("chargen/udp"), b"ignored");
        assert!(d.len() <= 512, "{} octets", d.len());
        lengths.insert(d.len());
        // Each datagram starts a line of the pattern and continues it.
        if let Some(first) = d.first() {
            let n = (0..chargen::RING_LEN)
                .find(|&n| chargen::line(n)[0] == *first)
                .expect("a pattern line start");
            assert_eq!(d, chargen::datagram(n, d.len()));
        }
    }
    assert!(lengths.len() > 5, "lengths are not random: {lengths:?}");
}

#[test]
fn qotd_one_quote_per_datagram() {
    let lab = Lab::start(everything());
    let u = udp_client();
    let q = udp_ask(&u, lab.addr("qotd/udp"), b"");
    assert!(!q.is_empty() && q.len() < 512 && q.ends_with(b"\r\n"));
}

#[test]
fn rate_limit_per_address() {
    let mut cfg = everything();
    cfg.udp_rate = 1;
    cfg.udp_burst = 3;
    let lab = Lab::start(cfg);
    let u = udp_client();
    let to = lab.addr("echo/udp");
    for i in 0..10u8 {
        u.send_to(&[i], to).unwrap();
    }
    u.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answers = Vec::new();
    let mut buf = [0u8; 16];
    while let Ok((n, _)) = u.recv_from(&mut buf) {
        answers.push(buf[..n].to_vec());
    }
    assert_eq!(
        answers,
        vec![vec![0], vec![1], vec![2]],
        "burst of 3, then dropped"
    );
    // Another address (127.0.0.2 is loopback too) has its own bucket.
    let other = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    other
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(udp_ask(&other, to, b"mine"), b"mine");
    // The bucket refills at udp_rate.
    std::thread::sleep(Duration::from_millis(1100));
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(udp_ask(&u, to, b"again"), b"again");
}

#[test]
fn no_loops_between_services() {
    // A datagram "from" another service's port (as a spoofed packet would claim) is dropped,
    // so echo and chargen (or calc) cannot be made to answer each other forever.
    let lab = Lab::start(everything());
    let chargen_port = lab.addr("chargen/udp").port();
    let calc_port = lab.addr("calc/udp").port();
    for (svc, from_port) in [
        ("echo/udp", chargen_port),
        ("calc/udp", lab.addr("echo/udp").port()),
        ("echo/udp", calc_port),
    ] {
        // Same port number on another loopback address: what a forged source would look like.
        let s =
            UdpSocket::bind(("127.0.0.2", from_port)).expect("bind 127.0.0.2 with a service port");
        s.send_to(b"1+1", lab.addr(svc)).unwrap();
        udp_silence(&s, Duration::from_millis(300));
    }
    // The same request from an ordinary port is answered.
    let u = UdpSocket::bind("127.0.0.2:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(udp_ask(&u, lab.addr("calc/udp"), b"1+1"), b"2\r\n");
}

fn sntp_cfg(
    f: impl FnOnce(&mut mailroom_services::SntpConfig),
) -> mailroom_services::ServicesConfig {
    let mut cfg = mailroom_services::ServicesConfig::default();
    cfg.sntp.udp = LOCAL0.parse().ok();
    f(&mut cfg.sntp);
    cfg
}

#[test]
fn sntp_answers_mode_3_with_mode_4() {
    let lab = Lab::start(sntp_cfg(|s| {
        s.stratum = 4;
        s.ref_id = "GPS".into();
    }));
    let u = udp_client();
    let t1 = sntp::NtpTimestamp::from_system_time(SystemTime::now());
    for version in [3u8, 4] {
        let mut req = sntp::client_request(t1);
        req.version = version;
        req.poll = 6;
        let b = udp_ask(&u, lab.addr("sntp/udp"), &req.encode());
        assert_eq!(b.len(), 48);
        let p = sntp::Packet::decode(&b).unwrap();
        assert_eq!(
            (p.leap, p.version, p.mode, p.stratum, p.poll),
            (0, version, 4, 4, 6)
        );
        assert_eq!(&p.ref_id, b"GPS\0");
        assert_eq!(p.origin, t1, "originate = our transmit timestamp");
        let (s, _) = p.transmit.to_unix();
        assert!((s - unix_now()).abs() <= 2);
        assert!(p.receive.0 <= p.transmit.0);
    }
}

#[test]
fn sntp_drops_malformed_and_non_client_packets() {
    let lab = Lab::start(sntp_cfg(|_| {}));
    let u = udp_client();
    let to = lab.addr("sntp/udp");
    let good = sntp::client_request(sntp::NtpTimestamp(1 << 40));
    let mut bad = Vec::new();
    bad.push(vec![0x1b; 47]); // too short
    bad.push(Vec::new());
    for mode in [0u8, 1, 2, 4, 5, 6, 7] {
        let mut p = good;
        p.mode = mode;
        bad.push(p.encode().to_vec());
    }
    for version in [0u8, 5, 7] {
        let mut p = good;
        p.version = version;
        bad.push(p.encode().to_vec());
    }
    for b in &bad {
        u.send_to(b, to).unwrap();
    }
    udp_silence(&u, Duration::from_millis(500));
    // Still serving, and extension fields after the header are tolerated.
    let mut with_ext = good.encode().to_vec();
    with_ext.extend_from_slice(&[0u8; 20]);
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let r = sntp::Packet::decode(&udp_ask(&u, to, &with_ext)).unwrap();
    assert_eq!(r.mode, 4);
}

#[test]
fn sntp_unsynchronized_leap_indicator() {
    let lab = Lab::start(sntp_cfg(|s| s.unsynchronized = true));
    let m = mailroom_services::client::sntp_query(lab.addr("sntp/udp"), Duration::from_secs(3))
        .expect("an answer");
    assert_eq!(m.reply.leap, 3);
    assert_eq!(m.reply.stratum, 10);
    assert_eq!(&m.reply.ref_id, b"LOCL");
}

#[test]
fn sntp_rate_limit_sends_kiss_of_death_or_nothing() {
    let mut cfg = sntp_cfg(|_| {});
    cfg.udp_rate = 1;
    cfg.udp_burst = 2;
    let lab = Lab::start(cfg);
    let to = lab.addr("sntp/udp");
    let u = udp_client();
    let mut kinds = Vec::new();
    for i in 0..4u64 {
        let req = sntp::client_request(sntp::NtpTimestamp((1 << 40) + i));
        let p = sntp::Packet::decode(&udp_ask(&u, to, &req.encode())).unwrap();
        assert_eq!(p.origin, req.transmit);
        kinds.push((p.stratum, p.ref_id));
    }
    assert_eq!(kinds[0], (10, *b"LOCL"));
    assert_eq!(kinds[1], (10, *b"LOCL"));
    assert_eq!(kinds[2], (0, *b"RATE"), "kiss-o'-death after the burst");
    assert_eq!(kinds[3], (0, *b"RATE"));
    drop(lab);

    let mut cfg = sntp_cfg(|s| s.kiss_of_death = false);
    cfg.udp_rate = 1;
    cfg.udp_burst = 1;
    let lab = Lab::start(cfg);
    let to = lab.addr("sntp/udp");
    let req = sntp::client_request(sntp::NtpTimestamp(1 << 40)).encode();
    assert_eq!(udp_ask(&u, to, &req).len(), 48);
    u.send_to(&req, to).unwrap();
    udp_silence(&u, Duration::from_millis(400));
}

#[test]
fn sntp_client_against_sntp_server() {
    let lab = Lab::start(sntp_cfg(|s| s.stratum = 2));
    let m = mailroom_services::client::sntp_query(lab.addr("sntp/udp"), Duration::from_secs(3))
        .expect("an answer");
    assert_eq!(m.reply.stratum, 2);
    assert_eq!(m.reply.leap, 0);
    // Same clock on both ends: the offset is only the asymmetry of a loopback round trip.
    assert!(m.offset.abs() < 0.05, "offset {}", m.offset);
    assert!(m.delay >= -0.001 && m.delay < 0.5, "delay {}", m.delay);
}

#[test]
fn sntp_query_reports_silence_and_refusal() {
    // A UDP socket that never answers: the client gives up after its timeout.
    let mute = UdpSocket::bind(LOCAL0).unwrap();
    let e = mailroom_services::client::sntp_query(
        mute.local_addr().unwrap(),
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("no answer from"), "{e}");
    // A port nobody listens on: ICMP port unreachable.
    let addr = mute.local_addr().unwrap();
    drop(mute);
    let e = mailroom_services::client::sntp_query(addr, Duration::from_secs(2)).unwrap_err();
    assert!(e.to_string().contains("nothing is listening"), "{e}");
}
