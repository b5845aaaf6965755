//! The services against real clients: nc (netcat-openbsd) and rdate. A missing tool fails the
//! test with the package to install; .ci/run installs them.
mod common;
use common::*;
use mailroom_services::chargen;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

/// Runs `tool args...` (bounded by coreutils `timeout`) with `input` on stdin.
fn run(tool: &str, args: &[String], input: &[u8]) -> Output {
    let mut child = Command::new("timeout")
        .arg("20")
        .arg(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.code() != Some(124),
        "{tool} {args:?} timed out; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn hp(addr: SocketAddr) -> Vec<String> {
    vec![addr.ip().to_string(), addr.port().to_string()]
}

fn args(pre: &[&str], addr: SocketAddr) -> Vec<String> {
    pre.iter().map(|s| s.to_string()).chain(hp(addr)).collect()
}

#[test]
fn nc_tcp_echo_calc_daytime_qotd_discard() {
    let nc = require_tool("nc", "netcat-openbsd");
    let lab = Lab::start(everything());

    // -N: shut down the sending side at the end of stdin, then print until the server closes.
    let out = run(
        &nc,
        &args(&["-N"], lab.addr("echo/tcp")),
        b"hello lab\nline two\n",
    );
    assert_eq!(out.stdout, b"hello lab\nline two\n");

    let out = run(
        &nc,
        &args(&["-N"], lab.addr("calc/tcp")),
        b"1+2\nADD 3 4\n1/0\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3\r\n7\r\nERR division by zero\r\n"
    );

    // -d: do not read stdin; the server speaks and closes.
    let out = run(&nc, &args(&["-d"], lab.addr("daytime/tcp")), b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("-UTC\r\n") && text.contains(", 20"),
        "{text:?}"
    );

    let out = run(&nc, &args(&["-d"], lab.addr("qotd/tcp")), b"");
    assert!(!out.stdout.is_empty() && out.stdout.len() < 512 && out.stdout.ends_with(b"\r\n"));

    let out = run(
        &nc,
        &args(&["-N"], lab.addr("discard/tcp")),
        &vec![b'z'; 50_000],
    );
    assert!(out.stdout.is_empty());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nc_tcp_chargen() {
    let nc = require_tool("nc", "netcat-openbsd");
    let lab = Lab::start(everything());
    let mut child = Command::new(&nc)
        .args(args(&["-d"], lab.addr("chargen/tcp")))
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("nc");
    let mut buf = vec![0u8; 100 * chargen::LINE_LEN];
    let res = child.stdout.take().expect("stdout").read_exact(&mut buf);
    let _ = child.kill();
    let _ = child.wait();
    res.expect("100 lines from chargen");
    for (n, l) in buf.chunks(chargen::LINE_LEN).enumerate() {
        assert_eq!(l, &chargen::line(n)[..], "line {n}");
    }
}

#[test]
fn nc_udp_echo_calc_daytime() {
    let nc = require_tool("nc", "netcat-openbsd");
    let lab = Lab::start(everything());
    // -u: UDP; -w1: quit a second after stdin ends and nothing more arrives.
    let out = run(&nc, &args(&["-u", "-w1"], lab.addr("echo/udp")), b"ping\n");
    assert_eq!(out.stdout, b"ping\n");
    let out = run(&nc, &args(&["-u", "-w1"], lab.addr("calc/udp")), b"6*7\n");
    assert_eq!(out.stdout, b"42\r\n");
    let out = run(&nc, &args(&["-u", "-w1"], lab.addr("daytime/udp")), b"\n");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("-UTC\r\n"));
}

/// rdate -v prints "rdate: adjust local clock by N seconds".
fn rdate_adjustment(out: &Output) -> f64 {
    let err = String::from_utf8_lossy(&out.stderr);
    let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "rdate failed: {all}");
    let line = all
        .lines()
        .find(|l| l.contains("adjust local clock by"))
        .unwrap_or_else(|| panic!("no adjustment in rdate output: {all}"));
    line.split_whitespace()
        .rev()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the adjustment in {line:?}"))
}

fn rdate_args(extra: &[&str], addr: SocketAddr) -> Vec<String> {
    // -p: print only, never set the clock; -o: port.
    let mut a: Vec<String> = ["-p", "-v"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    a.extend([
        "-o".to_string(),
        addr.port().to_string(),
        addr.ip().to_string(),
    ]);
    a
}

#[test]
fn rdate_time_over_tcp_and_udp() {
    let rdate = require_tool("rdate", "rdate");
    let lab = Lab::start(everything());
    let out = run(&rdate, &rdate_args(&[], lab.addr("time/tcp")), b"");
    assert!(rdate_adjustment(&out).abs() <= 2.0);
    let out = run(&rdate, &rdate_args(&["-u"], lab.addr("time/udp")), b"");
    assert!(rdate_adjustment(&out).abs() <= 2.0);
}

#[test]
fn rdate_sntp_against_our_server() {
    let rdate = require_tool("rdate", "rdate");
    let mut cfg = mailroom_services::ServicesConfig::default();
    cfg.sntp.udp = LOCAL0.parse().ok();
    let lab = Lab::start(cfg);
    // -n: SNTP instead of RFC 868.
    let out = run(&rdate, &rdate_args(&["-n"], lab.addr("sntp/udp")), b"");
    let adj = rdate_adjustment(&out);
    assert!(
        adj.abs() < 0.05,
        "rdate -n says the clock is off by {adj}s against the same clock"
    );
}
