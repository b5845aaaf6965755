//! The SNTP client against chronyd from Debian's packages, on a loopback port.
//!
//! chronyd runs in the foreground (-d), never touches the clock (-x), exits by itself after a
//! minute (-t 60) in case this test dies, keeps all its files in a temp dir, and is killed when
//! the test ends.
mod common;
use common::*;
use mailroom_services::client::sntp_query;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Chronyd {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn start_chronyd(stratum: u8) -> Chronyd {
    let chronyd = require_tool("chronyd", "chrony");
    let dir = tempfile::tempdir().expect("tempdir");
    // A free loopback port (chronyd needs a number, not 0).
    let port = UdpSocket::bind(LOCAL0)
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let d = dir.path().display();
    let conf = format!(
        "port {port}\nbindaddress 127.0.0.1\nlocal stratum {stratum}\nallow 127.0.0.1\n\
         cmdport 0\npidfile {d}/chronyd.pid\ndriftfile {d}/drift\n"
    );
    let conf_path = dir.path().join("chrony.conf");
    std::fs::write(&conf_path, conf).expect("write chrony.conf");
    let mut cmd = Command::new(chronyd);
    cmd.args(["-x", "-d", "-t", "60", "-f"]).arg(&conf_path);
    // As root chronyd would switch to the _chrony user, which cannot read our temp dir.
    if is_root() {
        cmd.args(["-u", "root"]);
    } else {
        cmd.arg("-U");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chronyd");
    Chronyd {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: dir,
    }
}

#[test]
fn sntp_client_against_chronyd() {
    let mut chrony = start_chronyd(7);
    let started = Instant::now();
    let m = loop {
        match sntp_query(chrony.addr, Duration::from_millis(500)) {
            Ok(m) => break m,
            Err(e) if started.elapsed() < Duration::from_secs(15) => {
                if let Ok(Some(status)) = chrony.child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut s) = chrony.child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut s, &mut err);
                    }
                    panic!("chronyd exited ({status}): {err}");
                }
                eprintln!("waiting for chronyd: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("chronyd never answered: {e}"),
        }
    };
    assert_eq!(m.reply.stratum, 7, "chronyd was set to local stratum 7");
    assert_eq!(m.reply.mode, 4);
    assert_ne!(
        m.reply.leap, 3,
        "chronyd with a local reference is synchronized"
    );
    // Same machine, same clock: the offset is the round-trip asymmetry only.
    assert!(m.offset.abs() < 0.05, "offset {}s", m.offset);
    assert!(m.delay >= -0.001 && m.delay < 0.5, "delay {}s", m.delay);
    // chronyd's local reference id is 127.127.1.1 ("LOCAL").
    assert_eq!(
        mailroom_services::sntp::ref_id_text(m.reply.stratum, &m.reply.ref_id),
        "127.127.1.1"
    );
}
