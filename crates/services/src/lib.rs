//! The classic socket-lab services of mailroom, on TCP and UDP: echo (RFC 862), discard
//! (RFC 863), daytime (RFC 867), chargen (RFC 864), qotd (RFC 865), time (RFC 868), a
//! calculator, and an SNTP server (RFC 4330 / RFC 5905).
//!
//! Layout: the protocol pieces are sans-IO modules with their own unit tests
//! ([`calc`] + [`decimal`], [`sntp`], [`chargen`], [`qotd`], [`clock`], [`ratelimit`]); `tcp`
//! and `udp` are the only modules that touch sockets. [`start`] binds everything the
//! [`ServicesConfig`] switches on and spawns one task per listener (plus one per TCP
//! connection); all of them end when the shutdown flag becomes true.
//!
//! Amplification: a UDP reply goes to whatever source address the datagram claims, so every
//! UDP service can be used to reflect traffic at a victim. None of ours answers with more than
//! its RFC defines, each answers at most `udp_rate` datagrams per second per address, and
//! datagrams from the well-known ports of these very services (and from our own service ports)
//! are dropped so that two services cannot be made to talk to each other forever (the
//! echo/chargen loop). UDP chargen and qotd, which answer a 0-octet datagram with up to 512
//! octets, are off in [`ServicesConfig::dev_default`].
pub mod calc;
pub mod chargen;
pub mod client;
pub mod clock;
pub mod config;
pub mod decimal;
pub mod qotd;
pub mod ratelimit;
pub mod sntp;
mod tcp;
mod udp;

pub use config::{CalcConfig, Endpoints, QotdConfig, ServicesConfig, SntpConfig};

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// One bound service: its name ("echo/tcp") and the address it listens on.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub addr: std::net::SocketAddr,
}

/// What a listener serves.
#[derive(Debug, Clone)]
pub(crate) enum Service {
    Echo,
    Discard,
    Daytime,
    Chargen,
    Qotd(Arc<qotd::Quotes>),
    Time,
    Calc {
        max_line: usize,
    },
    Sntp {
        params: sntp::ServerParams,
        kiss_of_death: bool,
    },
}

/// Resolves when `shutdown` becomes true. If the sender is gone the flag can never become true,
/// so this never resolves.
pub(crate) async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Well-known ports of the classic services: a datagram from one of them is another service's
/// answer, never a request (RFC 862-868 servers would answer each other forever).
const LOOP_PORTS: [u16; 7] = [0, 7, 9, 13, 17, 19, 37];

fn bind_error(key: &str, addr: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{key}: cannot bind {addr}: {e}"))
}

/// Binds every configured service and spawns its tasks; they stop when `shutdown` becomes true.
///
/// Everything is bound before anything is spawned, so an error (an address in use, a port that
/// needs privileges) leaves nothing running. Port 0 binds an ephemeral port; the returned
/// [`Bound`] list holds the real addresses. When a service's `tcp` and `udp` are the same
/// address with port 0, both transports get the same port ("one address, both transports").
pub async fn start(
    cfg: &ServicesConfig,
    shutdown: watch::Receiver<bool>,
) -> io::Result<Vec<Bound>> {
    cfg.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let quotes = Arc::new(match &cfg.qotd.quotes_file {
        Some(p) => qotd::Quotes::load(p).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("services.qotd.quotes_file: {e}"),
            )
        })?,
        None => qotd::Quotes::builtin(),
    });
    let ref_id = cfg.sntp.ref_id_bytes().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("services.sntp.ref_id: {e}"),
        )
    })?;

    let mut tcp_bound: Vec<(String, TcpListener, Service)> = Vec::new();
    let mut udp_bound: Vec<(String, UdpSocket, Service)> = Vec::new();
    for (name, tcp, udp) in cfg.services() {
        let service = match name {
            "echo" => Service::Echo,
            "discard" => Service::Discard,
            "daytime" => Service::Daytime,
            "chargen" => Service::Chargen,
            "qotd" => Service::Qotd(quotes.clone()),
            "time" => Service::Time,
            "calc" => Service::Calc {
                max_line: cfg.calc.max_line,
            },
            _ => Service::Sntp {
                params: sntp::ServerParams {
                    stratum: cfg.sntp.stratum,
                    ref_id,
                    unsynchronized: cfg.sntp.unsynchronized,
                },
                kiss_of_death: cfg.sntp.kiss_of_death,
            },
        };
        let shared_port0 = matches!((tcp, udp), (Some(t), Some(u)) if t == u && t.port() == 0);
        let (listener, socket) = if shared_port0 {
            let addr = tcp.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            bind_pair(name, addr).await?
        } else {
            let l = match tcp {
                Some(a) => Some(
                    TcpListener::bind(a)
                        .await
                        .map_err(|e| bind_error(&format!("services.{name}.tcp"), a, e))?,
                ),
                None => None,
            };
            let s = match udp {
                Some(a) => Some(
                    UdpSocket::bind(a)
                        .await
                        .map_err(|e| bind_error(&format!("services.{name}.udp"), a, e))?,
                ),
                None => None,
            };
            (l, s)
        };
        if let Some(l) = listener {
            tcp_bound.push((format!("{name}/tcp"), l, service.clone()));
        }
        if let Some(s) = socket {
            udp_bound.push((format!("{name}/udp"), s, service));
        }
    }

    let mut loop_ports: HashSet<u16> = LOOP_PORTS.into_iter().collect();
    for (_, s, _) in &udp_bound {
        loop_ports.insert(s.local_addr()?.port());
    }
    let loop_ports = Arc::new(loop_ports);

    let mut out = Vec::new();
    let limits = tcp::Limits {
        max_connections: cfg.max_connections,
        max_per_ip: cfg.max_connections_per_ip,
        idle: cfg.idle_timeout,
    };
    for (name, listener, service) in tcp_bound {
        let addr = listener.local_addr()?;
        tracing::info!(service = %name, %addr, "listening");
        out.push(Bound {
            name: name.clone(),
            addr,
        });
        tokio::spawn(tcp::serve(
            listener,
            name,
            service,
            limits,
            shutdown.clone(),
        ));
    }
    for (name, socket, service) in udp_bound {
        let addr = socket.local_addr()?;
        tracing::info!(service = %name, %addr, "listening");
        out.push(Bound {
            name: name.clone(),
            addr,
        });
        let limiter = ratelimit::RateLimiter::new(
            cfg.udp_rate,
            cfg.udp_burst,
            config::defaults::RATE_TABLE_SIZE,
        );
        tokio::spawn(udp::serve(
            socket,
            name,
            service,
            limiter,
            loop_ports.clone(),
            shutdown.clone(),
        ));
    }
    Ok(out)
}

/// Binds TCP on `addr` (port 0) and UDP on the port TCP got; retries when that UDP port is
/// taken.
async fn bind_pair(
    name: &str,
    addr: SocketAddr,
) -> io::Result<(Option<TcpListener>, Option<UdpSocket>)> {
    let mut last = None;
    for _ in 0..20 {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| bind_error(&format!("services.{name}.tcp"), addr, e))?;
        let real = l.local_addr()?;
        match UdpSocket::bind(real).await {
            Ok(s) => return Ok((Some(l), Some(s))),
            Err(e) => last = Some(bind_error(&format!("services.{name}.udp"), real, e)),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other(format!("services.{name}: cannot bind"))))
}
