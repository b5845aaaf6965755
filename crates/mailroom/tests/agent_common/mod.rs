//! Helpers for the agent tests (agent_*.rs): run `mailroom` as a user would, and a scripted
//! fake server for the failure cases a real server does not produce on demand.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// What one run of `mailroom` gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `mailroom ARGS` with `stdin` piped in; no config or password from the environment.
pub fn mailroom(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    cmd.args(args)
        .env_remove("MAILROOM_CONFIG")
        .env_remove("MAILROOM_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn mailroom");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One step of a fake server's script.
pub enum Step {
    /// Send these octets.
    Send(&'static str),
    /// Read one line (any content).
    Read,
    /// Read lines up to the "." line (a DATA body).
    ReadData,
    /// Close the connection at once.
    Close,
    /// Say nothing for this many milliseconds.
    Sleep(u64),
}

/// A server on 127.0.0.1:0 that plays `script` to one client; returns "127.0.0.1:port".
pub fn fake_server(script: Vec<Step>) -> (String, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let h = std::thread::spawn(move || {
        let Ok((stream, _)) = l.accept() else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let mut w: TcpStream = stream.try_clone().expect("clone");
        let mut r = BufReader::new(stream);
        for step in script {
            match step {
                Step::Send(s) => {
                    if w.write_all(s.as_bytes()).is_err() {
                        return;
                    }
                }
                Step::Read => {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                }
                Step::ReadData => loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                        break;
                    }
                },
                Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(ms)),
                Step::Close => {
                    let _ = w.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        }
    });
    (addr, h)
}
