//! `mailroom calc` and `mailroom sntp` (the built binary) against the services started
//! in-process on 127.0.0.1:0, against silent sockets, and against chronyd.
mod support;

use mailroom_services::{start, Bound, ServicesConfig};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::cli::{stderr, stdout};
use support::python::python_stdin;
use tokio::sync::watch;

struct Lab {
    bound: Vec<Bound>,
    tx: watch::Sender<bool>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Lab {
    fn start(cfg: ServicesConfig) -> Lab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (tx, rx) = watch::channel(false);
        let bound = rt.block_on(start(&cfg, rx)).expect("services start");
        Lab {
            bound,
            tx,
            rt: Some(rt),
        }
    }

    fn addr(&self, name: &str) -> String {
        self.bound
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.addr.to_string())
            .unwrap_or_else(|| panic!("{name} not bound"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.tx.send(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

fn local0() -> Option<SocketAddr> {
    "127.0.0.1:0".parse().ok()
}

fn services() -> ServicesConfig {
    let mut c = ServicesConfig::default();
    c.calc.tcp = local0();
    c.calc.udp = local0();
    c.discard.tcp = local0();
    c.sntp.udp = local0();
    c
}

/// Runs the binary with `args` and `stdin`; fails the test if it hangs (30 s).
fn mailroom(args: &[&str], stdin: &str) -> Output {
    support::cli::run(args, stdin.as_bytes(), &[], Some(Duration::from_secs(30)))
}

#[test]
fn calc_tcp_and_udp_one_shot() {
    let lab = Lab::start(services());
    let addr = lab.addr("calc/tcp");
    for transport in [&[][..], &["--udp"][..]] {
        let run = |expr: &[&str]| {
            let mut args = vec!["calc", addr.as_str()];
            args.extend_from_slice(transport);
            args.extend_from_slice(expr);
            mailroom(&args, "")
        };
        let o = run(&["2*(3+4)"]);
        assert_eq!(
            (stdout(&o).as_str(), o.status.code()),
            ("14\n", Some(0)),
            "{}",
            stderr(&o)
        );
        let o = run(&["ADD", "3", "4"]);
        assert_eq!(stdout(&o), "7\n");
        let o = run(&["-2^2", "+", "0.5"]);
        assert_eq!(stdout(&o), "-3.5\n");
        let o = run(&["1/0"]);
        assert_eq!(
            (stdout(&o).as_str(), o.status.code()),
            ("ERR division by zero\n", Some(1))
        );
        let o = run(&["1", "+"]);
        assert!(
            stdout(&o).starts_with("ERR syntax error at column 4"),
            "{}",
            stdout(&o)
        );
        assert_eq!(o.status.code(), Some(1));
    }
}

#[test]
fn calc_interactive() {
    let lab = Lab::start(services());
    let addr = lab.addr("calc/tcp");
    let o = mailroom(&["calc", &addr], "1+1\nMUL 6 7\n1/3\n(\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "2\n42\n0.3333333333333333333333333333\nERR syntax error at column 2: expected a number, '(' or '-' at the end of the line\n"
    );
    let o = mailroom(&["calc", &addr, "--udp"], "10 % 4\nPOW 2 10\n");
    assert_eq!(stdout(&o), "2\n1024\n");
}

#[test]
fn calc_timeouts_say_what_happened() {
    // UDP: a socket that never answers.
    let mute = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mute_addr = mute.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let o = mailroom(
        &["calc", &mute_addr, "--udp", "--timeout", "500ms", "1+1"],
        "",
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("no answer from") && e.contains("needs a timeout"),
        "{e}"
    );
    assert!(stdout(&o).is_empty());

    // TCP: a connection that is open but silent (the discard service).
    let lab = Lab::start(services());
    let o = mailroom(
        &["calc", &lab.addr("discard/tcp"), "-t", "500ms", "1+1"],
        "",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nothing came back"), "{}", stderr(&o));

    // Nobody there at all.
    drop(mute);
    let o = mailroom(&["calc", &mute_addr, "--udp", "-t", "2s", "1+1"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nothing is listening"),
        "{}",
        stderr(&o)
    );
    let o = mailroom(&["calc", &mute_addr, "1+1"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
}

/// Reads a JSON object with python3's json module and prints `key=value` lines.
fn json_fields(json: &str) -> std::collections::HashMap<String, String> {
    let out = python_stdin(
        "import json,sys\nd=json.load(sys.stdin)\nfor k,v in d.items(): print(f'{k}={v}')",
        &[],
        json.as_bytes(),
    );
    assert!(out.status.success(), "not valid JSON: {json}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn sntp_against_our_server() {
    let lab = Lab::start(services());
    let addr = lab.addr("sntp/udp");
    let o = mailroom(&["sntp", &addr], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "stratum:         10\n",
        "reference id:    LOCL\n",
        "leap indicator:  0 (no warning)\n",
        "version:         4\n",
        "offset:          ",
        "delay:           ",
        "server time:     20",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    let o = mailroom(&["sntp", &addr, "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let f = json_fields(&stdout(&o));
    assert_eq!(f["stratum"], "10");
    assert_eq!(f["reference_id"], "LOCL");
    assert_eq!(f["mode"], "4");
    let offset: f64 = f["offset"].parse().expect("offset");
    let delay: f64 = f["delay"].parse().expect("delay");
    assert!(offset.abs() < 0.05, "offset {offset}");
    assert!((-0.001..0.5).contains(&delay), "delay {delay}");
    assert!(f["server_time"].ends_with('Z'));
}

#[test]
fn sntp_unsynchronized_kod_and_silence() {
    let mut cfg = services();
    cfg.sntp.unsynchronized = true;
    cfg.udp_rate = 1;
    cfg.udp_burst = 1;
    let lab = Lab::start(cfg);
    let addr = lab.addr("sntp/udp");
    let o = mailroom(&["sntp", &addr], "");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("leap indicator:  3 (alarm: clock not synchronized)"));
    assert!(stderr(&o).contains("not synchronized"), "{}", stderr(&o));
    // Empty the bucket (1 per second, burst 1) from this address, then ask: the server answers
    // with a kiss-o'-death. Starting a process can take a second on a loaded machine and the
    // bucket refills meanwhile, so try a few times; a server without rate limiting never
    // passes.
    let raw = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let req =
        mailroom_services::sntp::client_request(mailroom_services::sntp::NtpTimestamp(1 << 40))
            .encode();
    let mut o = mailroom(&["sntp", &addr], "");
    for _ in 0..5 {
        if o.status.code() == Some(1) {
            break;
        }
        for _ in 0..3 {
            raw.send_to(&req, &addr).expect("send");
        }
        o = mailroom(&["sntp", &addr], "");
    }
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("kiss-o'-death") && stderr(&o).contains("RATE"),
        "{}",
        stderr(&o)
    );

    let mute = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mute_addr = mute.local_addr().expect("addr").to_string();
    let o = mailroom(&["sntp", &mute_addr, "--timeout", "300ms"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no answer from"), "{}", stderr(&o));
}

fn require_chronyd() -> String {
    for p in ["/usr/sbin/chronyd", "/usr/bin/chronyd", "/sbin/chronyd"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("chronyd is not installed: install the Debian package `chrony` (apt-get install -y chrony); .ci/run installs it");
}

#[test]
fn sntp_against_chronyd() {
    let chronyd = require_chronyd();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let d = dir.path().display();
    let conf = dir.path().join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\nlocal stratum 9\nallow 127.0.0.1\ncmdport 0\n\
             pidfile {d}/chronyd.pid\ndriftfile {d}/drift\n"
        ),
    )
    .expect("conf");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    // Foreground (-d), never touch the clock (-x), exit by itself after 60 s (-t).
    let mut cmd = Command::new(chronyd);
    cmd.args(["-x", "-d", "-t", "60", "-f"]).arg(&conf);
    if root {
        cmd.args(["-u", "root"]);
    } else {
        cmd.arg("-U");
    }
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _chrony = Kill(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chronyd"),
    );
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let o = loop {
        let o = mailroom(&["sntp", &addr, "--json", "--timeout", "500ms"], "");
        if o.status.success() || started.elapsed() > Duration::from_secs(15) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        o.status.code(),
        Some(0),
        "chronyd did not answer: {}",
        stderr(&o)
    );
    let f = json_fields(&stdout(&o));
    assert_eq!(f["stratum"], "9", "chronyd was set to local stratum 9");
    assert_eq!(f["reference_id"], "127.127.1.1");
    let offset: f64 = f["offset"].parse().expect("offset");
    assert!(
        offset.abs() < 0.05,
        "offset {offset}s against the same clock"
    );
}

/// Issue 16 item 2: a stratum-1 server's reference id in lower case or with punctuation (a
/// DCF77 receiver's "DCFa") is shown as text, not as an IPv4 address.
#[test]
fn sntp_shows_a_printable_stratum_1_reference_id_as_text() {
    use mailroom_services::sntp::{check_request, server_reply, NtpTimestamp, ServerParams};
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().expect("addr").to_string();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, from) = server.recv_from(&mut buf).expect("request");
        let req = check_request(&buf[..n]).expect("an SNTP request");
        let now = NtpTimestamp::from_system_time(std::time::SystemTime::now());
        let params = ServerParams {
            stratum: 1,
            ref_id: *b"DCFa",
            unsynchronized: false,
        };
        let reply = server_reply(&req, &params, now, now).encode();
        server.send_to(&reply, from).expect("reply");
    });
    let o = mailroom(&["sntp", &addr], "");
    answer.join().expect("fake server");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("DCFa"), "{out}");
    assert!(!out.contains("68.67.70.97"), "{out}");
}
