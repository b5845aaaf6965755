//! Running `mailroom` as a user does (the agent, `send`, `inbox`, `calc`, `sntp`, a `serve`
//! that must refuse its config), loopback ports, and a scripted fake server for the failure
//! cases a real server does not produce on demand.

use super::{ALICE, BOB};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// The `mailroom` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailroom")
}

/// The repository's top directory (for tests/ scripts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A loopback port that was free a moment ago (for configs that must name ports up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    free_port()
}

/// Runs `mailroom ARGS` with `stdin` piped in and `env` set; no config or password from the
/// environment. With `limit`, a run that takes longer is killed and the test fails.
pub fn run(args: &[&str], stdin: &[u8], env: &[(&str, &str)], limit: Option<Duration>) -> Output {
    let mut cmd = Command::new(bin());
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
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match limit {
        None => rx.recv().expect("wait"),
        Some(limit) => rx.recv_timeout(limit).unwrap_or_else(|_| {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("mailroom {args:?} hung");
        }),
    }
    .expect("output");
    let _ = writer.join();
    out
}

/// Fails the test unless the real client `tool` is installed (`tool ARG` runs); `package` is
/// the Debian package to install.
pub fn require_tool(tool: &str, version_arg: &str, package: &str) {
    assert!(
        Command::new(tool).arg(version_arg).output().is_ok(),
        "{tool} is not installed: apt-get install {package} (bash .ci/run does it)"
    );
}

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

/// Runs `mailroom ARGS` as a user would ([`run`], no time limit).
pub fn mailroom(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let out = run(args, stdin, env, None);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A run's stdout as text (lossy UTF-8).
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A run's stderr as text (lossy UTF-8).
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mailroom --config FILE serve` with `config` (written to `bad.toml`; `{data}` stands for a
/// fresh data directory) must refuse to start; returns what it said on stderr.
pub fn serve_refuses(config: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    let text = config.replace("{data}", &dir.path().join("data").display().to_string());
    std::fs::write(&path, &text).expect("write the config");
    let out = Command::new(bin())
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .expect("run mailroom");
    assert!(!out.status.success(), "{text} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// A Python script that runs `mailroom ARGS` on a pseudo-terminal and plays the person at the
/// keyboard with `body` (Python at top level, run after the set-up). `body` may use
/// `expect(text)` (waits for `text` in the output, returns what came before it), `send(text)`
/// (types it) and `type_password(p)` (waits until the terminal stops echoing, as a person
/// would see the prompt, then types `p` and Enter). The script ends with the agent's exit
/// status checked to be 0 and prints `ok`.
pub fn pty_session_script(args: &[&str], body: &str) -> String {
    let argv: Vec<String> = std::iter::once(bin().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    format!(
        r#"
import os, pty, select, sys, termios, time

argv = {argv:?}
env = dict(os.environ, TERM="xterm")
env.pop("MAILROOM_PASSWORD", None)
env.pop("MAILROOM_CONFIG", None)
pid, fd = pty.fork()
if pid == 0:
    os.execve(argv[0], argv, env)

seen = b""
def expect(what, timeout=20):
    global seen
    end = time.time() + timeout
    while what.encode() not in seen:
        left = end - time.time()
        if left <= 0:
            raise SystemExit("timed out waiting for %r; got:\n%r" % (what, seen))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                raise SystemExit("EOF waiting for %r; got:\n%r" % (what, seen))
            seen += data
    at = seen.index(what.encode()) + len(what.encode())
    before, seen = seen[:at], seen[at:]
    return before.decode("utf-8", "replace")

def send(text):
    os.write(fd, text.encode())

# The prompt is printed a moment before echo is switched off; a person cannot type in that
# moment, a script can: wait until the terminal no longer echoes.
def type_password(p):
    end = time.time() + 20
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.time() > end:
            raise SystemExit("echo was never switched off for the password")
        time.sleep(0.01)
    send(p + "\r")

{body}

_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
print("ok")
"#
    )
}

/// `mailroom send` of a short message from alice to bob through `smtp`, logged in as alice,
/// with `extra` arguments (`--tls`, `--ca FILE`, `--trace` ...).
pub fn send_args<'a>(smtp: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "send", "--smtp", smtp, "--from", ALICE.0, "--to", BOB.0, "--body", "hello", "-p", ALICE.1,
    ];
    v.extend_from_slice(extra);
    v
}
