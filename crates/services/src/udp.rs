//! UDP services: one answer datagram per request datagram, rate-limited per address.
use crate::ratelimit::RateLimiter;
use crate::{calc, chargen, clock, sntp, wait_shutdown, Service};
use rand::Rng;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Largest UDP payload (65535 - 8 octets UDP header); a larger buffer never truncates.
const MAX_DATAGRAM: usize = 65_536;

pub(crate) async fn serve(
    socket: UdpSocket,
    name: String,
    service: Service,
    mut limiter: RateLimiter,
    loop_ports: Arc<HashSet<u16>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut next_line = 0usize; // chargen: each answer starts where the last one stopped
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(service = %name, error = %e, "recv failed");
                    continue;
                }
            },
            _ = wait_shutdown(&mut shutdown) => break,
        };
        let received = SystemTime::now();
        let data = &buf[..n];
        if matches!(service, Service::Discard) {
            continue; // RFC 863: "the data in the received datagram is thrown away"
        }
        let is_sntp = matches!(service, Service::Sntp { .. });
        // An answer from another service is never a request: answering it could start a loop
        // between two services (the classic echo <-> chargen storm). SNTP is exempt: NTP
        // clients may send from port 123, and we answer only mode 3 with mode 4.
        if (!is_sntp && loop_ports.contains(&peer.port())) || peer.port() == 0 {
            tracing::debug!(service = %name, %peer, "dropped: source is a service port");
            continue;
        }
        let reply: Option<Vec<u8>> = match &service {
            Service::Sntp {
                params,
                kiss_of_death,
            } => {
                let req = match sntp::check_request(data) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(service = %name, %peer, reason = %e, "dropped");
                        continue;
                    }
                };
                if !limiter.allow(peer.ip(), Instant::now()) {
                    tracing::debug!(service = %name, %peer, "rate limited");
                    if *kiss_of_death {
                        // RFC 5905 §7.4: "RATE", as large as the request.
                        let _ = socket
                            .send_to(&sntp::kiss_of_death(&req, *b"RATE").encode(), peer)
                            .await;
                    }
                    continue;
                }
                let t2 = sntp::NtpTimestamp::from_system_time(received);
                let t3 = sntp::NtpTimestamp::from_system_time(SystemTime::now());
                Some(sntp::server_reply(&req, params, t2, t3).encode().to_vec())
            }
            other => {
                if !limiter.allow(peer.ip(), Instant::now()) {
                    tracing::debug!(service = %name, %peer, "rate limited");
                    continue;
                }
                match other {
                    // RFC 862: "send back the data in an answering datagram".
                    Service::Echo => Some(data.to_vec()),
                    // RFC 867 / RFC 868: any datagram (usually empty) is a request.
                    Service::Daytime => Some(clock::daytime(received).into_bytes()),
                    Service::Time => Some(clock::rfc868(received).to_vec()),
                    // RFC 864: "a random number (between 0 and 512) of characters".
                    Service::Chargen => {
                        let len = rand::thread_rng().gen_range(0..=chargen::UDP_MAX);
                        let d = chargen::datagram(next_line, len);
                        next_line = (next_line + 1) % chargen::RING_LEN;
                        Some(d)
                    }
                    Service::Qotd(q) => Some(q.get(rand::random::<u32>() as usize).to_vec()),
                    Service::Calc { max_line } => {
                        let mut line = data;
                        // A datagram may end with a line end; it is not part of the request.
                        if let Some(s) = line.strip_suffix(b"\n") {
                            line = s;
                        }
                        if let Some(s) = line.strip_suffix(b"\r") {
                            line = s;
                        }
                        let reply = if line.len() > *max_line {
                            format!("ERR {}", calc::CalcError::LineTooLong)
                        } else {
                            calc::reply(line)
                        };
                        Some(format!("{reply}\r\n").into_bytes())
                    }
                    Service::Discard | Service::Sntp { .. } => None,
                }
            }
        };
        if let Some(r) = reply {
            if let Err(e) = socket.send_to(&r, peer).await {
                tracing::debug!(service = %name, %peer, error = %e, "send failed");
            }
        }
    }
    tracing::info!(service = %name, "stopped");
}
