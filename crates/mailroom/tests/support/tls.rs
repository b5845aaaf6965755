//! TLS helpers (the tls_*.rs tests and the agent's TLS client): a server with every
//! listener, implicit-TLS ones included, the self-signed certificate it made, and Python
//! preludes with an SSL context that trusts it.

use super::{ServerConfig, TestServer, ALICE, BOB};

/// A server like the harness default plus IMAP and the implicit-TLS listeners; `top` goes
/// before the tables (e.g. `auth_require_tls = true`), `limits` into `[limits]`.
pub fn tls_server(top: &str, limits: &str) -> TestServer {
    ServerConfig::example()
        .top(top)
        .listen(&[
            "smtp",
            "submission",
            "submissions",
            "pop3",
            "pop3s",
            "imap",
            "imaps",
        ])
        .limits(limits)
        .start()
}

/// The self-signed certificate the server made in its data directory.
pub fn cert_path(s: &TestServer) -> std::path::PathBuf {
    s.data_dir().join("tls").join("cert.pem")
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
