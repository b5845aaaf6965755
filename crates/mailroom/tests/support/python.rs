//! Python helpers that need no server: a script that reads what a test gives it on stdin
//! (a real JSON parser, say).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `python3 -c script ARGS` with `stdin` piped in (UTF-8 output).
pub fn python_stdin(script: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed (Debian package python3)");
    let mut input = child.stdin.take().expect("python stdin");
    input.write_all(stdin).expect("write python's stdin");
    drop(input);
    child.wait_with_output().expect("python3 output")
}
