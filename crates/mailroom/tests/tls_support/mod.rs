//! Shared by the tls_*.rs tests: a server with every TLS listener, and Python preludes.
#![allow(dead_code)]

use crate::common::{TestServer, ALICE, BOB, CAROL};

/// A server like the harness default plus the implicit-TLS listeners; `top` goes before the
/// tables (e.g. `auth_require_tls = true`), `limits` into `[limits]`.
pub fn tls_server(top: &str, limits: &str) -> TestServer {
    TestServer::start_raw(&format!(
        r#"hostname = "mx.example.test"
data_dir = "{{data}}"
domains = ["example.test"]
{top}

[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
pop3s = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"

[limits]
{limits}

[[accounts]]
address = "{a}"
password = "{ap}"

[[accounts]]
address = "{b}"
password = "{bp}"

[[accounts]]
address = "{c}"
password = "{cp}"
"#,
        a = ALICE.0,
        ap = ALICE.1,
        b = BOB.0,
        bp = BOB.1,
        c = CAROL.0,
        cp = CAROL.1,
    ))
}

/// The self-signed certificate the server made in its data directory.
pub fn cert_path(s: &TestServer) -> std::path::PathBuf {
    s.dir.path().join("data").join("tls").join("cert.pem")
}

/// Runs a Python script with `ctx` (an SSL context trusting the server's certificate, with
/// host name checks on), `CERT`, `ALICE`, `ALICE_PW`, `BOB` and the port variables defined.
pub fn python_tls(s: &TestServer, script: &str) -> String {
    let prelude = format!(
        r#"import os, ssl, socket, time
CERT = {cert:?}
ALICE, ALICE_PW = {a:?}, {ap:?}
BOB, BOB_PW = {b:?}, {bp:?}
HOST = "127.0.0.1"
ctx = ssl.create_default_context(cafile=CERT)
ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
def port(name):
    return int(os.environ[name + "_PORT"])
def tls_after_injection(port_name, greeting, prelude, command, injected, go_ahead):
    """Sends `command` and `injected` in one write (CVE-2011-0411), checks the go-ahead,
    starts TLS and asserts the injected command is not answered inside it."""
    raw = socket.create_connection((HOST, port(port_name)), timeout=10)
    f = raw.makefile("rb")
    assert f.readline().startswith(greeting), "greeting"
    for line in prelude:
        raw.sendall(line)
        while f.readline()[3:4] == b"-":
            pass
    raw.sendall(command + injected)
    l = f.readline()
    assert l.startswith(go_ahead), l
    tls = ctx.wrap_socket(raw, server_hostname=HOST)
    tls.settimeout(1.5)
    try:
        data = tls.recv(1024)
        raise SystemExit("the injected %r was answered inside TLS: %r" % (injected, data))
    except (socket.timeout, TimeoutError):
        pass
    tls.settimeout(10)
    return tls
"#,
        cert = cert_path(s).display().to_string(),
        a = ALICE.0,
        ap = ALICE.1,
        b = BOB.0,
        bp = BOB.1,
    );
    s.python(&format!("{prelude}{script}"))
}
