//! TCP listeners: connection caps, idle timeouts, one task per connection.
use crate::{calc, chargen, clock, wait_shutdown, Service};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

/// Per-listener limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub idle: Duration,
}

/// How long a one-shot service (daytime, time, qotd) keeps reading after its answer so that
/// unread client data does not turn the close into a reset that could destroy the answer.
const LINGER: Duration = Duration::from_secs(2);
/// At most this much is read (and dropped) during that time.
const LINGER_BYTES: usize = 64 * 1024;
/// Read buffer for echo, discard and calc.
const BUF: usize = 16 * 1024;

/// Counts connections per client address; the slot is given back on drop.
struct IpSlot {
    table: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl IpSlot {
    fn acquire(table: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    name: String,
    service: Service,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(service = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = wait_shutdown(&mut shutdown) => break,
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            tracing::info!(service = %name, %peer, limit = limits.max_connections, "connection refused: services.max_connections reached");
            refuse(stream, &service);
            continue;
        };
        let Some(slot) = IpSlot::acquire(&per_ip, peer.ip(), limits.max_per_ip) else {
            tracing::info!(service = %name, %peer, limit = limits.max_per_ip, "connection refused: services.max_connections_per_ip reached");
            refuse(stream, &service);
            continue;
        };
        let service = service.clone();
        let name = name.clone();
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            tracing::debug!(service = %name, %peer, "connection");
            tokio::select! {
                r = handle(stream, peer, &service, limits.idle) => match r {
                    Ok(()) => tracing::debug!(service = %name, %peer, "closed"),
                    Err(e) => tracing::debug!(service = %name, %peer, error = %e, "connection ended"),
                },
                _ = wait_shutdown(&mut sd) => {}
            }
        });
    }
    tracing::info!(service = %name, "stopped");
}

/// Over a cap: the calculator says why (it has an error channel); the RFC services just close.
fn refuse(stream: TcpStream, service: &Service) {
    if matches!(service, Service::Calc { .. }) {
        let _ = stream.try_write(b"ERR too many connections\r\n");
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle timeout")
}

/// `fut` must finish within the idle timeout.
async fn within<T>(
    idle: Duration,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    timeout(idle, fut).await.map_err(|_| idle_error())?
}

async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: &Service,
    idle: Duration,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    match service {
        // RFC 862: "Once a connection is established any data received is sent back. This
        // continues until the calling user terminates the connection."
        Service::Echo => {
            let mut buf = vec![0u8; BUF];
            loop {
                let n = within(idle, stream.read(&mut buf)).await?;
                if n == 0 {
                    break;
                }
                // Back-pressure: nothing more is read until this is written.
                within(idle, stream.write_all(&buf[..n])).await?;
            }
            stream.shutdown().await
        }
        // RFC 863: "any data received is thrown away. No response is sent."
        Service::Discard => {
            let mut buf = vec![0u8; BUF];
            while within(idle, stream.read(&mut buf)).await? > 0 {}
            Ok(())
        }
        // RFC 867, RFC 868, RFC 865: one answer, then the server closes.
        Service::Daytime => {
            answer_and_close(stream, clock::daytime(SystemTime::now()).as_bytes(), idle).await
        }
        Service::Time => answer_and_close(stream, &clock::rfc868(SystemTime::now()), idle).await,
        Service::Qotd(quotes) => {
            let i = rand::random::<u32>() as usize;
            answer_and_close(stream, quotes.get(i), idle).await
        }
        Service::Chargen => chargen_stream(stream, idle).await,
        Service::Calc { max_line } => calc_session(stream, peer, *max_line, idle).await,
        Service::Sntp { .. } => Ok(()), // UDP only; never bound on TCP
    }
}

async fn answer_and_close(mut stream: TcpStream, answer: &[u8], idle: Duration) -> io::Result<()> {
    within(idle, stream.write_all(answer)).await?;
    stream.shutdown().await?;
    // Drain what the client sent (RFC 867: "any data received is thrown away") until it closes.
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    let _ = timeout(LINGER, async {
        while drained < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}

/// RFC 864 over TCP: the pattern until the client goes away. `write_all` waits while the
/// client's window is full (TCP flow control is the back-pressure the RFC relies on), so at
/// most one 7030-octet period is buffered here; a client that stops reading for the idle
/// timeout is dropped. What the client sends is read and thrown away.
async fn chargen_stream(mut stream: TcpStream, idle: Duration) -> io::Result<()> {
    let period = chargen::period();
    let (mut rd, mut wr) = stream.split();
    let writer = async {
        loop {
            within(idle, wr.write_all(&period)).await?;
        }
    };
    let reader = async {
        let mut sink = [0u8; 4096];
        loop {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        r = writer => r,
        _ = reader => Ok(()), // the client closed (or half-closed): stop
    }
}

/// The calculator: one reply line per request line, many per connection.
async fn calc_session(
    mut stream: TcpStream,
    peer: SocketAddr,
    max_line: usize,
    idle: Duration,
) -> io::Result<()> {
    let mut framer = calc::LineFramer::new(max_line);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = within(idle, stream.read(&mut buf)).await?;
        if n == 0 {
            break;
        }
        framer.push(&buf[..n]);
        while let Some(frame) = framer.next_frame() {
            let reply = match frame {
                calc::Frame::Line(line) => {
                    let r = calc::reply(&line);
                    tracing::trace!(%peer, "C: {}", String::from_utf8_lossy(&line));
                    r
                }
                calc::Frame::TooLong => format!("ERR {}", calc::CalcError::LineTooLong),
            };
            tracing::trace!(%peer, "S: {reply}");
            // One reply at a time: a client that does not read stalls us, not our memory.
            within(idle, stream.write_all(format!("{reply}\r\n").as_bytes())).await?;
        }
    }
    stream.shutdown().await
}
