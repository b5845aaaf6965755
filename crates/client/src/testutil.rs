//! A scripted fake server on 127.0.0.1:0 for the client unit tests.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::trace::{format_line, TraceFn};

/// One step of the server's side of a dialogue.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these octets (CRLFs included).
    Send(&'static str),
    /// Read one line and require it to be exactly this (without CRLF).
    Expect(&'static str),
    /// Read lines up to and including "."; they are kept for the test (raw, stuffed).
    ReadData,
    /// Close the connection.
    Close,
    /// Wait this many milliseconds.
    Sleep(u64),
}

/// What the fake server saw: every line received, and the raw DATA octets.
#[derive(Debug, Default)]
pub struct Seen {
    pub lines: Vec<String>,
    pub data: Vec<u8>,
}

/// Starts a server for one connection; returns its "host:port" and the task.
pub async fn fake(script: Vec<Step>) -> (String, JoinHandle<Result<Seen, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut seen = Seen::default();
        for step in script {
            match step {
                Step::Send(s) => w.write_all(s.as_bytes()).await.map_err(|e| e.to_string())?,
                Step::Expect(want) => {
                    let got = read_line(&mut r).await?;
                    let line = got.trim_end_matches("\r\n");
                    seen.lines.push(line.to_string());
                    if line != want {
                        return Err(format!("expected {want:?}, got {got:?}"));
                    }
                }
                Step::ReadData => loop {
                    let got = read_line(&mut r).await?;
                    seen.data.extend_from_slice(got.as_bytes());
                    if got == ".\r\n" {
                        break;
                    }
                },
                Step::Close => return Ok(seen),
                Step::Sleep(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
            }
        }
        Ok(seen)
    });
    (addr, task)
}

/// A trace that collects `C: ...` / `S: ...` lines.
pub fn collector() -> (Option<TraceFn>, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    let f: TraceFn = Arc::new(move |d, l| l2.lock().expect("lock").push(format_line(d, l)));
    (Some(f), lines)
}

async fn read_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = r
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("client closed".into());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
