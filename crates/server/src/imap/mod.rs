//! IMAP4 driver (being written).
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::Shared;

pub async fn run_session(
    _stream: TcpStream,
    _peer: SocketAddr,
    _shared: Arc<Shared>,
    _shutdown: watch::Receiver<bool>,
) {
}
