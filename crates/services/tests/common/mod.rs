//! Shared test helpers: run the services on 127.0.0.1:0 in a background runtime, find tools.
#![allow(dead_code)]
use mailroom_services::{start, Bound, ServicesConfig};
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;
use tokio::sync::watch;

pub const LOCAL0: &str = "127.0.0.1:0";

/// Services running in their own runtime; dropping this shuts them down.
pub struct Lab {
    pub bound: Vec<Bound>,
    tx: watch::Sender<bool>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Lab {
    pub fn start(cfg: ServicesConfig) -> Lab {
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

    /// The address of "echo/tcp" etc.; panics if that service is not bound.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.bound
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.addr)
            .unwrap_or_else(|| panic!("{name} is not bound: {:?}", self.bound))
    }

    /// Signals shutdown and waits a moment for the tasks to see it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(true);
        std::thread::sleep(Duration::from_millis(200));
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
    LOCAL0.parse().ok()
}

/// Every service on both transports (UDP chargen and qotd too) on ephemeral loopback ports,
/// with a UDP rate limit high enough not to get in the way.
pub fn everything() -> ServicesConfig {
    let mut c = ServicesConfig::default();
    for e in [
        &mut c.echo,
        &mut c.discard,
        &mut c.daytime,
        &mut c.chargen,
        &mut c.time,
    ] {
        e.tcp = local0();
        e.udp = local0();
    }
    c.qotd.tcp = local0();
    c.qotd.udp = local0();
    c.calc.tcp = local0();
    c.calc.udp = local0();
    c.sntp.udp = local0();
    c.udp_rate = 100_000;
    c.udp_burst = 100_000;
    c
}

pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

pub fn read_to_end(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("read until the server closes");
    out
}

pub fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind(LOCAL0).expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s
}

/// Sends `req` and returns the answer datagram.
pub fn udp_ask(s: &UdpSocket, to: SocketAddr, req: &[u8]) -> Vec<u8> {
    s.send_to(req, to).expect("send");
    let mut buf = vec![0u8; 65_536];
    let (n, from) = s.recv_from(&mut buf).expect("an answer datagram");
    assert_eq!(from, to, "answer from the service address");
    buf.truncate(n);
    buf
}

/// Asserts that no datagram arrives within `wait`.
pub fn udp_silence(s: &UdpSocket, wait: Duration) {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 2048];
    match s.recv_from(&mut buf) {
        Ok((n, from)) => panic!(
            "expected no answer, got {n} octets from {from}: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "unexpected error {e}"
        ),
    }
}

/// The path of a tool, or a panic naming the Debian package that provides it. Tests must not
/// pass silently without their tool: .ci/run installs these packages.
pub fn require_tool(tool: &str, package: &str) -> String {
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let p = format!("{dir}/{tool}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return p;
        }
    }
    panic!("`{tool}` is not installed: install the Debian package `{package}` (apt-get install -y {package}); .ci/run installs it")
}
