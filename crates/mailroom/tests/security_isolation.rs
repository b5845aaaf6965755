//! Isolation between accounts, attacked through the real server with real clients (Python's
//! imaplib, poplib and smtplib): no session may ever receive another account's mail, even
//! when the mailbox, message or account it was working on is deleted and the store creates a
//! new one (DESIGN.md principle 12: ids are never reused, caches are keyed by identifiers
//! that can never name two things, a session acts only for its own account).
//!
//! Every message carries an owner marker `OWNER=<account>-<run>` (in its Subject, an
//! `X-Owner` field and its body). Every byte that each Python session receives is checked:
//! a marker of another account is a crossing, and the scenario fails with a description of
//! what crossed. The scenarios also encode what the server does once a session's ground is
//! gone (as Dovecot does):
//!
//! - an IMAP session whose selected mailbox was deleted by another session, or whose account
//!   was removed or got a new password, gets an untagged `* BYE` at its next command (in
//!   IDLE: without a command, within a few seconds) and the connection closes;
//! - a POP3 session whose account was removed or got a new password gets `-ERR` at its next
//!   command and the connection closes; `RETR`/`TOP` of a message expunged meanwhile (over
//!   IMAP) answers `-ERR`;
//! - an authenticated SMTP session of a removed account cannot send mail any more;
//! - a mailbox deleted and created again gets a new UIDVALIDITY.
//!
//! Where no reply is prescribed, a scenario asserts only that nothing crosses and that fresh
//! logins still work. Accounts that a scenario removes are made with the CLI (dave, erin,
//! frank): every `mailroom` CLI run puts the config's `[[accounts]]` back.
//!
//! The randomized test runs MAILROOM_ISOLATION_SECS seconds (default 5) and at most
//! MAILROOM_ISOLATION_OPS operations (default 20000), with the seed from
//! MAILROOM_ISOLATION_SEED (default: random; it is printed). A longer run by hand:
//!
//! ```text
//! MAILROOM_ISOLATION_SECS=300 MAILROOM_ISOLATION_OPS=1000000 \
//!   cargo test -p mailroom --test security_isolation random -- --nocapture
//! ```
//!
//! and, to replay a failure, the same with `MAILROOM_ISOLATION_SEED=<the printed seed>`
//! (threads interleave differently each run, so a replay repeats the choices, not the timing).

mod support;

use std::time::Instant;

use support::{bin, free_port, ServerConfig, TestServer};

/// A server with SMTP (MX), submission, POP3 and IMAP listeners and alice, bob and carol.
/// `extra` is appended to the config (`[routes]`, say). Failed logins are not slowed down:
/// the randomized test logs in to removed accounts on purpose.
fn server(extra: &str) -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "submission", "pop3", "imap"])
        .limits("auth_failure_delay = \"1ms\"\nauth_failure_window = \"0s\"")
        .extra(extra)
        .start()
}

/// Runs `scenario` after the shared Python prelude (written to a file in the server's
/// directory) with the server's ports, the `mailroom` binary and its config in the
/// environment; panics with the scenario's report and the end of the server log unless it
/// exits 0. `limit_secs` bounds the whole script (a watchdog dumps every thread's stack).
fn run_scenario(s: &TestServer, name: &str, scenario: &str, limit_secs: u64) {
    let path = s.dir.path().join(format!("{name}.py"));
    std::fs::write(
        &path,
        format!("{PRELUDE}\n# ---- scenario {name}\n{scenario}"),
    )
    .expect("write the scenario");
    let started = Instant::now();
    let out = s
        .python_command()
        .arg(&path)
        .env("MAILROOM_BIN", bin())
        .env("MAILROOM_CONFIG", &s.config_path)
        .env("SCENARIO_LIMIT", limit_secs.to_string())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    let log = s.log_text();
    let tail: Vec<&str> = log.lines().rev().take(25).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    if out.status.success() {
        println!("{stdout}");
    }
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\nstderr:\n{stderr}\nend of the server log:\n{}",
        out.status,
        tail.join("\n")
    );
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert!(
        panics.is_empty(),
        "{name}: the server panicked:\n{panics:#?}"
    );
}

/// Markers, recording clients and helpers shared by every scenario.
///
/// `Imap` and `Pop3` are imaplib/poplib clients whose every received byte goes through
/// `check()`; `run()` performs one command and returns (outcome, data, bytes received), where
/// outcome is the status (`OK`, `NO`, `BAD`, `ERR`) or `CLOSED` for a connection that ended.
/// Crossings go to LEAKS, missing expected behaviour to FAILURES; `finish()` reports both.
const PRELUDE: &str = r##"
import collections, faulthandler, imaplib, os, poplib, random, re, smtplib, socket, subprocess
import sys, threading, time, traceback

faulthandler.dump_traceback_later(float(os.environ.get("SCENARIO_LIMIT", "60")), exit=True)

HOST = os.environ["HOST"]
IMAP_PORT = int(os.environ["IMAP_PORT"])
POP3_PORT = int(os.environ["POP3_PORT"])
SMTP_PORT = int(os.environ["SMTP_PORT"])
SUBMISSION_PORT = int(os.environ["SUBMISSION_PORT"])
BIN = os.environ["MAILROOM_BIN"]
CONFIG = os.environ["MAILROOM_CONFIG"]
DOMAIN = "example.test"
PASSWORDS = {"alice": "secret", "bob": "hunter2", "carol": "carolpw", "dave": "davepw",
             "erin": "erinpw", "frank": "frankpw"}
RUN = os.urandom(4).hex()
MARKER_RE = re.compile(rb"OWNER=([a-z0-9]+)-" + RUN.encode())
T0 = time.time()
LOCK = threading.Lock()
LEAKS = []
CROSSED_SESSIONS = []
# Every command and its reply in the output; the randomized test turns this off and shows the
# last commands of the sessions that received foreign mail instead.
VERBOSE = True
FAILURES = []
COUNTER = [0]

def addr(user):
    return user + "@" + DOMAIN

def marker(user):
    return "OWNER=%s-%s" % (user, RUN)

def log(*parts):
    with LOCK:
        print("[%6.2fs]" % (time.time() - T0), *parts, flush=True)

def short(data, n=160):
    data = bytes(data)
    return repr(data if len(data) <= n else data[:n] + b"...")

def check(owner, label, data, doing, reported):
    """Records markers of accounts other than `owner` in `data`, once per account in
    `reported` (a set kept per command); True if it found any."""
    found = False
    for m in MARKER_RE.finditer(data):
        who = m.group(1).decode()
        if who != owner and who not in reported:
            reported.add(who)
            around = bytes(data[max(0, m.start() - 100):m.end() + 60])
            desc = "%s (a session of %s) received %s's mail in reply to %s: ...%r..." % (
                label, owner, who, doing, around)
            with LOCK:
                LEAKS.append(desc)
            log("CROSSED:", desc)
            found = True
    return found

def expect(cond, what):
    if not cond:
        with LOCK:
            FAILURES.append(what)
        log("MISSING:", what)
    return cond

def finish(extra=""):
    if LEAKS or FAILURES:
        print("\n=== %d crossing(s) between accounts ===" % len(LEAKS))
        for l in LEAKS[:20]:
            print(" -", l)
        for r in CROSSED_SESSIONS[:6]:
            print("    last commands of %s:" % r.label)
            for h in r.history:
                print("       ", h)
        print("=== %d expected behaviour(s) not seen ===" % len(FAILURES))
        for f in FAILURES[:20]:
            print(" -", f)
        if extra:
            print(extra)
        sys.stdout.flush()
        os._exit(1)
    print("ok", extra)
    sys.stdout.flush()
    os._exit(0)

def message(owner, subject="hello", to=None, pad=0, sender="someone@outside.test"):
    """A message that belongs to `owner`: its marker in Subject, X-Owner and every body line."""
    with LOCK:
        COUNTER[0] += 1
        n = COUNTER[0]
    mk = marker(owner)
    lines = ["From: <%s>" % sender, "To: <%s>" % (to or addr(owner)),
             "Subject: %s %s" % (subject, mk), "X-Owner: %s" % mk,
             "Date: Mon, 01 Jan 2024 10:00:00 +0000",
             "Message-ID: <m%d.%s@example.test>" % (n, RUN), "",
             "This message belongs to %s." % mk]
    for i in range(pad // 64):
        lines.append(("%s padding %d " % (mk, i)).ljust(62, "."))
    return ("\r\n".join(lines) + "\r\n").encode()

def cli(*args, stdin=""):
    """`mailroom ARGS` against the running server's data directory."""
    r = subprocess.run([BIN, "--config", CONFIG, *args], input=stdin, capture_output=True,
                       text=True, timeout=60)
    log("cli: mailroom", " ".join(args), "->", r.returncode, (r.stdout + r.stderr).strip())
    if r.returncode != 0:
        raise RuntimeError("mailroom %s failed: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r

def add_user(user):
    cli("user", "add", addr(user), stdin=PASSWORDS[user] + "\n")

def deliver(rcpt, owner=None, subject="hello", pad=0):
    """One message to `rcpt` over the MX listener, marked as `owner`'s (default: rcpt's)."""
    msg = message(owner or rcpt, subject, to=addr(rcpt), pad=pad)
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.sendmail("someone@outside.test", [addr(rcpt)], msg)
    return msg

def wait_until(what, cond, secs=10):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)

class Recorder:
    """Every byte received, checked against the markers of other accounts."""
    def _setup(self, owner, label):
        self.owner, self.label, self.rx = owner, label, bytearray()
        self.history = collections.deque(maxlen=15)
        self.begin("the greeting")

    def begin(self, doing):
        """What the bytes received from now on answer (for the report)."""
        self.doing, self.reported = doing, set()
        if len(self.rx) > (1 << 20):
            self.rx = bytearray()

    def run(self, what, fn):
        """Runs `fn()` (an imaplib or poplib call) as command `what`: (outcome, data, bytes
        received)."""
        self.begin(what)
        start = len(self.rx)
        typ, data = self._outcome_of(fn)
        got = bytes(self.rx[start:])
        self.note(what, typ, got)
        return typ, data, got

    def expect_end(self, outcome, what, why):
        """The reply to a session whose ground is gone (IMAP: an untagged `* BYE`; POP3:
        `-ERR`), then the server closes the connection."""
        typ, _, got = outcome
        expect(self._ends(got),
               "%s: %s after %s should be answered with %s; got %s %s"
               % (self.label, what, why, self.END, typ, short(got, 300)))
        expect(self.is_closed(),
               "%s: the server should close the connection after %s (%s)" % (self.label, why, what))

    def note(self, what, typ, got):
        line = "[%6.2fs] %s -> %s %s" % (time.time() - T0, what, typ, short(got))
        self.history.append(line)
        if VERBOSE:
            log(self.label, line[10:])

    def _seen(self, data):
        if data:
            self.rx += data
            if check(self.owner, self.label, data, self.doing, self.reported):
                with LOCK:
                    if self not in CROSSED_SESSIONS:
                        CROSSED_SESSIONS.append(self)
        return data

    def drop(self):
        """Closes the connection from this side, whatever state it is in."""
        for step in (lambda: self.sock.shutdown(socket.SHUT_RDWR), lambda: self.file.close(),
                     lambda: self.sock.close()):
            try:
                step()
            except Exception:
                pass

    def is_closed(self, wait=2):
        """True when the server closes the connection within `wait` seconds (or the client
        already closed it)."""
        if self.sock is None or self.file is None:
            return True
        try:
            self.sock.settimeout(wait)
            while True:
                rest = self.file.read1(65536)
                if not rest:
                    return True
                self._seen(rest)
        except (socket.timeout, TimeoutError):
            return False
        except (OSError, ValueError):
            return True

class Imap(Recorder, imaplib.IMAP4):
    """imaplib, recording every received byte; logs in as `owner` unless login=False."""
    END = "an untagged BYE"

    def __init__(self, owner, label=None, login=True, password=None):
        self._setup(owner, label or "imap:" + owner)
        imaplib.IMAP4.__init__(self, HOST, IMAP_PORT, timeout=10)
        if login:
            self.begin("LOGIN")
            self.login(addr(owner), password or PASSWORDS[owner])

    def readline(self):
        return self._seen(imaplib.IMAP4.readline(self))

    def read(self, size):
        return self._seen(imaplib.IMAP4.read(self, size))

    def _outcome_of(self, fn):
        try:
            return fn()
        except imaplib.IMAP4.abort as e:
            return "CLOSED", str(e)
        except imaplib.IMAP4.error as e:
            return "BAD", str(e)
        except (OSError, EOFError, ValueError) as e:
            return "CLOSED", repr(e)

    def _ends(self, got):
        return b"* BYE" in got

    def contents(self, mailbox):
        """The messages of `mailbox` (UID FETCH, so an empty mailbox is fine)."""
        typ, data, _ = self.run("SELECT " + mailbox, lambda: self.select(mailbox))
        if typ != "OK":
            return None
        typ, data, _ = self.run("UID FETCH 1:* (BODY.PEEK[])",
                                lambda: self.uid("FETCH", "1:*", "(BODY.PEEK[])"))
        return [d[1] for d in data if isinstance(d, tuple)] if typ == "OK" else None

class Pop3(Recorder, poplib.POP3):
    """poplib, recording every received byte; logs in as `owner` unless login=False."""
    END = "-ERR"

    def __init__(self, owner, label=None, login=True, password=None):
        self._setup(owner, label or "pop3:" + owner)
        poplib.POP3.__init__(self, HOST, POP3_PORT, timeout=10)
        if login:
            self.begin("USER/PASS")
            self.user(addr(owner))
            self.pass_(password or PASSWORDS[owner])

    def _getline(self):
        line, octets = poplib.POP3._getline(self)
        self._seen(line + b"\r\n")
        return line, octets

    def _outcome_of(self, fn):
        try:
            return "OK", fn()
        except poplib.error_proto as e:
            data = str(e)
            return ("CLOSED" if data == "-ERR EOF" else "ERR"), data
        except (OSError, EOFError, ValueError) as e:
            return "CLOSED", repr(e)

    def _ends(self, got):
        return got.startswith(b"-ERR")

def pop3_login(owner, label=None, password=None, secs=5):
    """A POP3 login that waits (up to `secs`) for the maildrop lock of a session just closed."""
    deadline = time.time() + secs
    while True:
        try:
            return Pop3(owner, label, password=password)
        except poplib.error_proto as e:
            if b"IN-USE" not in str(e).encode() or time.time() > deadline:
                raise
            time.sleep(0.1)

def imap_contents(owner, mailbox, label=None):
    m = Imap(owner, label or "fresh imap:" + owner)
    got = m.contents(mailbox)
    try:
        m.logout()
    except Exception:
        pass
    return got

def expect_own_message(owner, mailbox):
    """`owner`'s `mailbox` (read by a fresh session) holds exactly one message, `owner`'s."""
    got = imap_contents(owner, mailbox)
    expect(got is not None and len(got) == 1 and marker(owner).encode() in got[0],
           "%s's %s should still hold %s's message; it holds %r" % (owner, mailbox, owner, got))

def expect_pop3_count(owner, n, label, password=None, secs=5):
    """A fresh POP3 login of `owner` (waiting up to `secs` for the maildrop lock) lists `n`
    messages."""
    P = pop3_login(owner, label, password=password, secs=secs)
    expect(P.stat()[0] == n, "%s should list %d message(s) of %s" % (label, n, owner))
    P.quit()

def submit(user, rcpt, msg):
    """`msg` from `user` to `rcpt` over the submission listener, logged in as `user`."""
    with smtplib.SMTP(HOST, SUBMISSION_PORT, timeout=10) as s:
        s.login(addr(user), PASSWORDS[user])
        s.sendmail(addr(user), [rcpt], msg)

def alice_on_a_deleted_mailbox(label, before_delete=lambda A: None):
    """Alice's session `label` with Tmp selected, which another alice session then deletes.
    `before_delete(A)` runs just before the deletion; returns A and what it returned."""
    A = Imap("alice", label)
    A.create("Tmp")
    A.select("Tmp")
    got = before_delete(A)
    A2 = Imap("alice", "alice session A2")
    A2.delete("Tmp")
    A2.logout()
    return A, got

def try_everything(A):
    """What a session whose mailbox is gone might try: NOOP, reading, copying, flagging and
    expunging. Returns NOOP's outcome."""
    first = A.run("NOOP", lambda: A.noop())
    A.run("FETCH 1:* (BODY.PEEK[])", lambda: A.fetch("1:*", "(BODY.PEEK[])"))
    A.run("UID COPY 1:* INBOX", lambda: A.uid("COPY", "1:*", "INBOX"))
    A.run("STORE 1 +FLAGS (\\Deleted)", lambda: A.store("1", "+FLAGS", "(\\Deleted)"))
    A.run("EXPUNGE", lambda: A.expunge())
    return first

def expect_finds_message_1(m, r, subject, what):
    """Round `r` of the cache tests: `m`'s ENVELOPE of message 1 shows `subject`, and SEARCH
    SUBJECT hello finds message 1 (`what` names the message for the report)."""
    env = m.run("FETCH 1 (ENVELOPE)", lambda: m.fetch("1", "(ENVELOPE)"))
    expect(subject.encode() in env[2],
           "round %d: ENVELOPE should show %s; got %s" % (r, what, short(env[2], 300)))
    found = m.run("SEARCH SUBJECT hello", lambda: m.search(None, "SUBJECT", "hello"))
    expect(found[0] == "OK" and found[1] == [b"1"],
           "round %d: SEARCH SUBJECT hello should find %s; got %r" % (r, what, found[1]))

def idle_start(m):
    """Sends IDLE on `m`; returns its tag once the server's continuation arrived."""
    tag = m._new_tag().decode()
    m.begin("IDLE")
    m.send(("%s IDLE\r\n" % tag).encode())
    line = m.readline()
    if not line.startswith(b"+"):
        raise AssertionError("IDLE refused: %r" % line)
    return tag

def read_lines_until(m, deadline, stop):
    """Lines that `m` receives until `deadline`, EOF or a line for which stop(line) is true;
    returns [(seconds since the call, line)] and whether the connection ended."""
    t0 = time.time()
    got = []
    while True:
        left = deadline - time.time()
        if left <= 0:
            return got, False
        try:
            m.sock.settimeout(left)
            line = m.readline()
        except (socket.timeout, TimeoutError):
            return got, False
        except (OSError, ValueError):
            return got, True
        if not line:
            return got, True
        got.append((time.time() - t0, line))
        if stop(line):
            return got, False
"##;

/// Test 1a. Alice's session A has Tmp selected; another alice session deletes Tmp; bob
/// creates Secret (which gets Tmp's row id) and appends to it. A must learn that its mailbox
/// is gone (`* BYE`, closed) and must not read, copy, flag or expunge bob's message.
#[test]
fn session_on_a_deleted_mailbox_cannot_reach_the_next_mailbox_of_another_account() {
    let s = server("");
    run_scenario(
        &s,
        "deleted_mailbox_then_other_accounts_mailbox",
        r#"
A, _ = alice_on_a_deleted_mailbox("alice session A")
B = Imap("bob", "bob")
B.create("Secret")
typ, _ = B.append("Secret", None, None, message("bob", "bob-secret"))
assert typ == "OK", typ
B.logout()

first = try_everything(A)

# Alice's INBOX holds nothing of bob's (a crossing is recorded by the reading session).
imap_contents("alice", "INBOX", "fresh alice session reading INBOX")
expect_own_message("bob", "Secret")
A.expect_end(first, "NOOP", "its selected mailbox was deleted")
finish()
"#,
        30,
    );
}

/// Test 1b. As 1a, but the next mailbox created is the INBOX of a new account (dave, added
/// with the CLI) and mail reaches it over SMTP.
#[test]
fn session_on_a_deleted_mailbox_cannot_reach_a_new_accounts_inbox() {
    let s = server("");
    run_scenario(
        &s,
        "deleted_mailbox_then_new_account",
        r#"
A, _ = alice_on_a_deleted_mailbox("alice session A")
add_user("dave")
deliver("dave", subject="for-dave")

first = try_everything(A)

imap_contents("alice", "INBOX", "fresh alice session reading INBOX")
expect_own_message("dave", "INBOX")
A.expect_end(first, "NOOP", "its selected mailbox was deleted")
finish()
"#,
        30,
    );
}

/// Test 1c. As 1b with A in IDLE: A gets `* BYE` by itself within 10 s of the deletion and
/// is never told `* 1 EXISTS` for dave's mail.
#[test]
fn idling_session_on_a_deleted_mailbox_gets_bye_and_never_the_new_inbox() {
    let s = server("");
    run_scenario(
        &s,
        "deleted_mailbox_while_idle",
        r#"
A, tag = alice_on_a_deleted_mailbox("alice session A (IDLE)", idle_start)
deleted = time.time()
result = {}
def reader():
    result["lines"], result["closed"] = read_lines_until(
        A, deleted + 10, lambda l: l.startswith(b"* BYE") or b"EXISTS" in l)
t = threading.Thread(target=reader)
t.start()
add_user("dave")
deliver("dave", subject="for-dave")
t.join()
lines = result["lines"]
log("A received in IDLE:", lines, "closed:", result["closed"])
told = [l for _, l in lines if b"EXISTS" in l and not l.startswith(b"* 0 ")]
expect(not told, "A (IDLE on the deleted Tmp) was told %r about dave's new INBOX" % told)
byes = [(round(t, 1), l) for t, l in lines if l.startswith(b"* BYE")]
expect(byes, "A should get * BYE within 10 s of the deletion of its mailbox while in IDLE; "
       "got %r" % lines)
if told:
    # Show what the session can do with it.
    A.sock.settimeout(10)
    A.send(b"DONE\r\n")
    A.run("FETCH 1:* (BODY.PEEK[])", lambda: A.fetch("1:*", "(BODY.PEEK[])"))
elif byes:
    expect(A.is_closed(), "A: the server should close the connection after the BYE")
expect_own_message("dave", "INBOX")
finish()
"#,
        30,
    );
}

/// Test 2a. Alice's POP3 session lists two messages; message 2 is expunged over IMAP; bob gets
/// mail (a new message row). `RETR 2` and `TOP 2 0` answer `-ERR`, never bob's mail.
#[test]
fn pop3_retr_never_returns_mail_delivered_after_an_imap_expunge() {
    let s = server("");
    run_scenario(
        &s,
        "pop3_after_expunge_then_delivery",
        &format!(
            "{POP3_SETUP}\n{}",
            r#"
deliver("bob", subject="bob-new-mail", pad=1000)
pop3_probe(P)
"#
        ),
        30,
    );
}

/// Test 2b. As 2a, but the new message row is bob's outbound message held in the queue (the
/// route to elsewhere.test leads to a port where nothing listens).
#[test]
fn pop3_retr_never_returns_a_queued_outbound_message() {
    let port = free_port();
    let s = server(&format!(
        "[routes]\n\"elsewhere.test\" = \"127.0.0.1:{port}\"\n"
    ));
    run_scenario(
        &s,
        "pop3_after_expunge_then_queued",
        &format!(
            "{POP3_SETUP}\n{}",
            r#"
submit("bob", "someone@elsewhere.test",
       message("bob", "bob-outbound", to="someone@elsewhere.test", sender=addr("bob"), pad=1000))
pop3_probe(P)
"#
        ),
        30,
    );
}

/// Test 2c. As 2a, but the new message row is a bounce (DSN) for bob: the remote MX holds
/// bob's delivery until alice's message is expunged, then refuses the recipient.
#[test]
fn pop3_retr_never_returns_a_bounce() {
    let port = free_port();
    let s = server(&format!(
        "[routes]\n\"elsewhere.test\" = \"127.0.0.1:{port}\"\n"
    ));
    run_scenario(
        &s,
        "pop3_after_expunge_then_bounce",
        &format!(
            "ROUTE_PORT = {port}\n{FAKE_MX}\n{POP3_SETUP}\n{}",
            r#"
mx.go.set()
bob = Imap("bob", "bob waiting for the bounce")
wait_until("the bounce in bob's INBOX",
           lambda: b"MESSAGES 1" in bob.status("INBOX", "(MESSAGES)")[1][0], 20)
bob.logout()
pop3_probe(P)
"#
        ),
        40,
    );
}

/// Test 2c: a remote MX on ROUTE_PORT that holds every connection until `mx.go` is set, then
/// refuses every recipient; bob's outbound message is submitted before alice's mail arrives,
/// so the bounce is the newest message row once alice's message 2 is expunged.
const FAKE_MX: &str = r#"
class FakeMx(threading.Thread):
    """The remote MX: holds every connection until `go`, then refuses every recipient."""
    def __init__(self):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((HOST, ROUTE_PORT))
        self.srv.listen(5)
        self.go = threading.Event()
    def run(self):
        while True:
            conn, _ = self.srv.accept()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()
    def serve(self, conn):
        self.go.wait(30)
        f = conn.makefile("rb")
        conn.sendall(b"220 mx.elsewhere.test ESMTP\r\n")
        for line in f:
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250 mx.elsewhere.test\r\n")
            elif verb == b"RCPT":
                conn.sendall(b"550 5.1.1 no such user here\r\n")
            elif verb == b"DATA":
                conn.sendall(b"554 5.5.1 no valid recipients\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 OK\r\n")
        conn.close()
mx = FakeMx()
mx.start()
# bob's outbound message is stored first, so the bounce is the newest message row later.
submit("bob", "someone@elsewhere.test",
       message("bob", "bob-will-bounce", to="someone@elsewhere.test", sender=addr("bob")))
"#;

/// Tests 2a-2c: alice has two (large) messages and a POP3 session; message 2 — the newest
/// message row — is expunged over IMAP, which the maildrop lock does not cover.
const POP3_SETUP: &str = r#"
deliver("alice", subject="alice-one", pad=8000)
deliver("alice", subject="alice-two", pad=8000)
P = Pop3("alice", "alice POP3 session")
count = P.stat()[0]
assert count == 2, count
I = Imap("alice", "alice IMAP session")
I.select("INBOX")
I.store("2", "+FLAGS", "(\\Deleted)")
I.expunge()
I.logout()

def pop3_probe(P):
    retr = P.run("RETR 2", lambda: P.retr(2))
    expect(retr[0] == "ERR",
           "RETR 2 of a message expunged over IMAP should answer -ERR; got %s %s"
           % (retr[0], short(retr[2], 300)))
    top = P.run("TOP 2 0", lambda: P.top(2, 0))
    expect(top[0] == "ERR",
           "TOP 2 0 of a message expunged over IMAP should answer -ERR; got %s %s"
           % (top[0], short(top[2], 300)))
    own = P.run("RETR 1", lambda: P.retr(1))
    expect(own[0] == "OK" and marker("alice").encode() in own[2],
           "RETR 1 should still give alice's own message 1")
    P.run("QUIT", lambda: P.quit())
    expect_pop3_count("alice", 1, "a fresh alice POP3 session", secs=0)
    finish()
"#;

/// Test 2d. Alice's session A has INBOX selected; another alice session expunges message 1
/// (the newest message row); bob gets mail. A's `FETCH 1 (BODY.PEEK[])` before any NOOP gives
/// alice's own message or nothing/NO, never bob's.
#[test]
fn imap_fetch_after_another_sessions_expunge_never_returns_new_mail() {
    let s = server("");
    run_scenario(
        &s,
        "imap_fetch_after_expunge",
        r#"
deliver("alice", subject="alice-only", pad=4000)
A = Imap("alice", "alice session A")
A.select("INBOX")
A2 = Imap("alice", "alice session A2")
A2.select("INBOX")
A2.store("1", "+FLAGS", "(\\Deleted)")
A2.expunge()
A2.logout()
deliver("bob", subject="bob-new-mail", pad=1000)
r = A.run("FETCH 1 (BODY.PEEK[])", lambda: A.fetch("1", "(BODY.PEEK[])"))
bodies = [d[1] for d in r[1] if isinstance(d, tuple)] if r[0] == "OK" else []
expect(all(marker("alice").encode() in b for b in bodies),
       "FETCH 1 should give alice's own message or nothing, got %r" % bodies)
A.run("UID FETCH 1:* (BODY.PEEK[])", lambda: A.uid("FETCH", "1:*", "(BODY.PEEK[])"))
A.run("NOOP", lambda: A.noop())
A.logout()
expect_own_message("bob", "INBOX")
finish()
"#,
        30,
    );
}

/// Test 3a. Erin (an account made with the CLI: accounts of the config are put back by every
/// CLI run) has open sessions — IMAP authenticated, IMAP with INBOX selected, POP3 and an
/// authenticated SMTP submission — when her account is removed and dave's is added (and gets
/// mail and a folder). Each session's next command ends it (`* BYE` / `-ERR`, closed); none
/// shows dave's mail or folders, changes dave's mail, or sends mail as erin.
#[test]
fn removed_accounts_sessions_end_and_never_act_as_the_next_account() {
    let s = server("");
    run_scenario(
        &s,
        "removed_account_sessions",
        r#"
add_user("erin")
deliver("erin", subject="erin-own", pad=4000)
E1 = Imap("erin", "erin IMAP (authenticated)")
E2 = Imap("erin", "erin IMAP (INBOX selected)")
E2.select("INBOX")
EP = Pop3("erin", "erin POP3")
assert EP.stat()[0] == 1
ES = smtplib.SMTP(HOST, SUBMISSION_PORT, timeout=10)
ES.login(addr("erin"), PASSWORDS["erin"])

cli("user", "remove", addr("erin"))
add_user("dave")
deliver("dave", subject="for-dave", pad=1000)
D = Imap("dave", "dave")
D.create(marker("dave"))
D.logout()
why = "the account was removed"

# Each session's first command after the removal: reads first, then changes.
first1 = E1.run('LIST "" *', lambda: E1.list('""', "*"))
E1.run("STATUS INBOX (MESSAGES)", lambda: E1.status("INBOX", "(MESSAGES)"))
E1.run("SELECT INBOX", lambda: E1.select("INBOX"))
E1.run("FETCH 1:* (BODY.PEEK[])", lambda: E1.fetch("1:*", "(BODY.PEEK[])"))
first2 = E2.run("NOOP", lambda: E2.noop())
E2.run("FETCH 1:* (BODY.PEEK[])", lambda: E2.fetch("1:*", "(BODY.PEEK[])"))
firstp = EP.run("RETR 1", lambda: EP.retr(1))
E2.run("STORE 1 +FLAGS (\\Deleted)", lambda: E2.store("1", "+FLAGS", "(\\Deleted)"))
E2.run("EXPUNGE", lambda: E2.expunge())
EP.run("DELE 1", lambda: EP.dele(1))
EP.run("QUIT", lambda: EP.quit())

token = "SENT-BY-REMOVED-ERIN-" + RUN
try:
    refused = ES.sendmail(addr("erin"), [addr("alice")],
                          ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n"
                           % (addr("erin"), addr("alice"), token)).encode())
    log("erin's SMTP session sent mail after the removal; refused:", refused)
    sent = True
except (smtplib.SMTPException, OSError) as e:
    log("erin's SMTP session could not send:", repr(e))
    sent = False
expect(not sent, "erin's authenticated SMTP session still sent mail as erin after the removal")
alice = imap_contents("alice", "INBOX") or []
expect(not any(token.encode() in m for m in alice),
       "alice received mail from the removed account's SMTP session")

expect_own_message("dave", "INBOX")
E1.expect_end(first1, 'LIST "" *', why)
E2.expect_end(first2, "NOOP", why)
EP.expect_end(firstp, "RETR 1", why)
expect_pop3_count("dave", 1, "a fresh dave POP3 session")
finish()
"#,
        30,
    );
}

/// Test 3b. A password change (`mailroom user passwd`) ends carol's open IMAP and POP3
/// sessions at their next command; the new password works, the old one does not.
#[test]
fn password_change_ends_open_imap_and_pop3_sessions() {
    let s = server("");
    run_scenario(
        &s,
        "password_change",
        r#"
deliver("carol", subject="carol-own")
C1 = Imap("carol", "carol IMAP (authenticated)")
C2 = Imap("carol", "carol IMAP (INBOX selected)")
C2.select("INBOX")
CP = Pop3("carol", "carol POP3")
cli("user", "passwd", addr("carol"), stdin="carol-new-pw\n")
why = "the password was changed"
C1.expect_end(C1.run('LIST "" *', lambda: C1.list('""', "*")), 'LIST "" *', why)
C2.expect_end(C2.run("NOOP", lambda: C2.noop()), "NOOP", why)
CP.expect_end(CP.run("STAT", lambda: CP.stat()), "STAT", why)
for old in (C1, C2, CP):
    old.drop()
try:
    Imap("carol", "carol with the old password")
    expect(False, "the old password still works")
except imaplib.IMAP4.error:
    pass
fresh = Imap("carol", "carol with the new password", password="carol-new-pw")
fresh.logout()
expect_pop3_count("carol", 1, "carol's POP3 with the new password", password="carol-new-pw")
finish()
"#,
        30,
    );
}

/// Test 4a. The parsed-message caches: alice's folder F1 (with a cached ENVELOPE and
/// BODYSTRUCTURE) is deleted and bob's F2 is created in the same second; bob's FETCH ENVELOPE
/// and SEARCH SUBJECT see bob's message, never alice's. Ten rounds.
#[test]
fn message_caches_never_serve_a_deleted_mailbox_to_another_account() {
    let s = server("");
    run_scenario(
        &s,
        "caches_across_accounts",
        r#"
A = Imap("alice", "alice")
B = Imap("bob", "bob")
for r in range(10):
    A.create("F1")
    A.append("F1", None, None, message("alice", "alice-secret"))
    A.select("F1")
    A.run("FETCH 1 (ENVELOPE BODYSTRUCTURE)", lambda: A.fetch("1", "(ENVELOPE BODYSTRUCTURE)"))
    A.close()
    A.delete("F1")
    B.create("F2")
    B.append("F2", None, None, message("bob", "bob-hello beautiful world"))
    B.select("F2")
    expect_finds_message_1(B, r, "bob-hello beautiful world", "bob's message")
    B.close()
    B.delete("F2")
finish()
"#,
        30,
    );
}

/// Test 4b. The same within one account: a mailbox deleted and created again under the same
/// name gets a new UIDVALIDITY, and ENVELOPE and SEARCH see the new message. Ten rounds.
#[test]
fn recreated_mailbox_gets_a_new_uidvalidity_and_fresh_caches() {
    let s = server("");
    run_scenario(
        &s,
        "caches_same_account",
        r#"
A = Imap("alice", "alice")
for r in range(10):
    A.create("F")
    A.append("F", None, None, message("alice", "first-version"))
    A.select("F")
    old = A.response("UIDVALIDITY")[1][0]
    A.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    A.close()
    A.delete("F")
    A.create("F")
    A.append("F", None, None, message("alice", "second-version hello"))
    A.select("F")
    new = A.response("UIDVALIDITY")[1][0]
    expect(new != old, "round %d: F created again has the old UIDVALIDITY %s" % (r, old.decode()))
    expect_finds_message_1(A, r, "second-version hello", "the new message")
    A.close()
    A.delete("F")
finish()
"#,
        30,
    );
}

/// Test 5. Four accounts, each with two IMAP sessions and a POP3 session (which reconnects
/// because of the maildrop lock), SMTP deliveries and submissions, and accounts removed and
/// added again with the CLI, all running random operations from a seeded RNG. No session may
/// ever receive another account's marker; NO/BAD/BYE/closed connections are allowed (sessions
/// reconnect), any other Python exception is a failure.
#[test]
fn random_interleaving_never_crosses_accounts() {
    let s = server("");
    let secs: f64 = std::env::var("MAILROOM_ISOLATION_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    run_scenario(&s, "random_interleaving", RANDOM, secs as u64 + 60);
}

const RANDOM: &str = r#"
SEED = int(os.environ.get("MAILROOM_ISOLATION_SEED") or random.SystemRandom().randrange(1 << 32))
SECS = float(os.environ.get("MAILROOM_ISOLATION_SECS", "5"))
MAX_OPS = int(os.environ.get("MAILROOM_ISOLATION_OPS", "20000"))
print("MAILROOM_ISOLATION_SEED=%d MAILROOM_ISOLATION_SECS=%g" % (SEED, SECS), flush=True)
VERBOSE = False
# Accounts of the config are put back by every CLI run, so only dave, erin and frank (made
# here) are removed and added again; alice stays.
USERS = ["alice", "dave", "erin", "frank"]
REMOVABLE = ["dave", "erin", "frank"]
FOLDERS = ["F1", "F2"]
IMAP_OPS = (["create", "delete", "select", "fetch", "envelope"] * 2 + ["append"] * 3
            + ["copy", "store", "expunge", "search", "noop", "list", "status"])
for u in REMOVABLE:
    add_user(u)
PRESENT = {u: True for u in USERS}
ACCOUNTS = threading.Lock()
STOP = threading.Event()
DEADLINE = time.time() + SECS
OPS = [0]
STATS = {}
UNEXPECTED = []

def running():
    with LOCK:
        OPS[0] += 1
        return not STOP.is_set() and time.time() < DEADLINE and OPS[0] <= MAX_OPS

def count(kind, outcome):
    with LOCK:
        STATS[(kind, outcome)] = STATS.get((kind, outcome), 0) + 1

def guarded(name, fn, rng):
    try:
        fn(rng)
    except Exception:
        with LOCK:
            UNEXPECTED.append("%s: %s" % (name, traceback.format_exc()))
        STOP.set()

def pick_set(rng, n):
    if n == 0 or rng.random() < 0.3:
        return "1:*"
    return str(rng.randint(1, n + 1))

def imap_worker(user, k, rng):
    m = None
    exists = 0
    while running():
        if m is None:
            try:
                m = Imap(user, "imap%d:%s" % (k, user))
                count("imap login", "OK")
            except (imaplib.IMAP4.error, OSError, EOFError) as e:
                count("imap login", "refused")
                m = None
                time.sleep(rng.uniform(0.02, 0.1))
                continue
        op = "logout" if rng.random() < 0.02 else rng.choice(IMAP_OPS)
        f = rng.choice(FOLDERS)
        anyf = rng.choice(FOLDERS + ["INBOX", "INBOX"])
        if op == "create":
            r = m.run("CREATE " + f, lambda: m.create(f))
        elif op == "delete":
            r = m.run("DELETE " + f, lambda: m.delete(f))
        elif op == "select":
            r = m.run("SELECT " + anyf, lambda: m.select(anyf))
            if r[0] == "OK":
                exists = int(r[1][0] or 0)
        elif op == "append":
            msg = message(user, "note-%d hello" % rng.randint(0, 9), pad=rng.choice([0, 200, 3000]))
            r = m.run("APPEND " + anyf, lambda: m.append(anyf, None, None, msg))
        elif m.state != "SELECTED":
            op = "select"
            r = m.run("SELECT " + anyf, lambda: m.select(anyf))
            if r[0] == "OK":
                exists = int(r[1][0] or 0)
        elif op == "fetch":
            if rng.random() < 0.5:
                s = pick_set(rng, exists)
                r = m.run("FETCH %s (BODY.PEEK[])" % s, lambda: m.fetch(s, "(BODY.PEEK[])"))
            else:
                r = m.run("UID FETCH 1:* (BODY.PEEK[])", lambda: m.uid("FETCH", "1:*", "(BODY.PEEK[])"))
        elif op == "envelope":
            s = pick_set(rng, exists)
            r = m.run("FETCH %s (ENVELOPE BODYSTRUCTURE)" % s,
                      lambda: m.fetch(s, "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER])"))
        elif op == "copy":
            r = m.run("UID COPY 1:* " + anyf, lambda: m.uid("COPY", "1:*", anyf))
        elif op == "store":
            s = pick_set(rng, exists)
            fl = rng.choice(["(\\Deleted)", "(\\Seen)", "(\\Flagged)"])
            r = m.run("STORE %s +FLAGS %s" % (s, fl), lambda: m.store(s, "+FLAGS", fl))
        elif op == "expunge":
            r = m.run("EXPUNGE", lambda: m.expunge())
        elif op == "search":
            key = rng.choice([("SUBJECT", "hello"), ("TEXT", "OWNER"), ("ALL",), ("FROM", "someone")])
            r = m.run("SEARCH " + " ".join(key), lambda: m.search(None, *key))
        elif op == "noop":
            r = m.run("NOOP", lambda: m.noop())
        elif op == "list":
            r = m.run("LIST", lambda: m.list())
        elif op == "status":
            r = m.run("STATUS " + anyf, lambda: m.status(anyf, "(MESSAGES UIDNEXT UIDVALIDITY)"))
        else:
            r = m.run("LOGOUT", lambda: m.logout())
            m.drop()
            m = None
            count("imap " + op, r[0])
            continue
        count("imap " + op, r[0])
        if r[0] == "CLOSED":
            m.drop()
            m = None
        elif m.state == "SELECTED":
            ex = m.untagged_responses.pop("EXISTS", None)
            if ex:
                try:
                    exists = int(ex[-1])
                except ValueError:
                    pass

def pop3_worker(user, rng):
    while running():
        try:
            p = Pop3(user, "pop3:" + user)
            count("pop3 login", "OK")
        except (poplib.error_proto, OSError, EOFError):
            count("pop3 login", "refused")
            time.sleep(rng.uniform(0.02, 0.1))
            continue
        n = 0
        closed = False
        for _ in range(rng.randint(1, 12)):
            if not running():
                break
            op = rng.choice(["stat", "list", "uidl", "retr", "retr", "top", "dele", "noop"])
            k = rng.randint(1, n + 1)
            if op == "stat":
                r = p.run("STAT", lambda: p.stat())
                if r[0] == "OK":
                    n = r[1][0]
            elif op == "list":
                r = p.run("LIST", lambda: p.list())
            elif op == "uidl":
                r = p.run("UIDL", lambda: p.uidl())
            elif op == "retr":
                r = p.run("RETR %d" % k, lambda: p.retr(k))
            elif op == "top":
                r = p.run("TOP %d 0" % k, lambda: p.top(k, rng.randint(0, 3)))
            elif op == "dele":
                r = p.run("DELE %d" % k, lambda: p.dele(k))
            else:
                r = p.run("NOOP", lambda: p.noop())
            count("pop3 " + op, r[0])
            if r[0] == "CLOSED":
                closed = True
                p.drop()
                break
        if not closed:
            if rng.random() < 0.7:
                r = p.run("QUIT", lambda: p.quit())
                count("pop3 quit", r[0])
            else:
                p.drop()

def smtp_worker(rng):
    while running():
        to = rng.choice(USERS)
        pad = rng.choice([0, 500, 4000])
        try:
            if rng.random() < 0.7:
                deliver(to, subject="delivered hello", pad=pad)
            else:
                frm = rng.choice(USERS)
                submit(frm, addr(to), message(to, "delivered hello", pad=pad))
            count("smtp", "OK")
        except (smtplib.SMTPException, OSError) as e:
            count("smtp", type(e).__name__)
        time.sleep(rng.uniform(0, 0.05))

def admin_worker(rng):
    """Removes a random account, and often adds another one (absent) right after it, which
    is when a removed account's row ids are handed out again."""
    while running():
        time.sleep(rng.uniform(0.02, 0.2))
        user = rng.choice(REMOVABLE)
        with ACCOUNTS:
            if PRESENT[user]:
                cli("user", "remove", addr(user))
                PRESENT[user] = False
                count("cli", "remove")
                absent = [u for u in REMOVABLE if not PRESENT[u] and u != user]
                if absent and rng.random() < 0.7:
                    other = rng.choice(absent)
                    add_user(other)
                    PRESENT[other] = True
                    count("cli", "add")
            else:
                add_user(user)
                PRESENT[user] = True
                count("cli", "add")

master = random.Random(SEED)
threads = []
for i, user in enumerate(USERS):
    for k in (1, 2):
        threads.append(("imap%d:%s" % (k, user),
                        lambda rng, u=user, k=k: imap_worker(u, k, rng)))
    threads.append(("pop3:" + user, lambda rng, u=user: pop3_worker(u, rng)))
threads.append(("smtp", smtp_worker))
threads.append(("admin", admin_worker))
started = []
for name, fn in threads:
    t = threading.Thread(target=guarded, args=(name, fn, random.Random(master.randrange(1 << 62))),
                         daemon=True)
    t.start()
    started.append(t)
for t in started:
    t.join(SECS + 40)
STOP.set()

with ACCOUNTS:
    for u in USERS:
        if not PRESENT[u]:
            add_user(u)
            PRESENT[u] = True
for u in USERS:
    fresh = Imap(u, "fresh imap:" + u)
    expect(fresh.select("INBOX")[0] == "OK", "a fresh login of %s works afterwards" % u)
    fresh.logout()
for line in sorted("%-14s %-8s %d" % (k, o, n) for (k, o), n in STATS.items()):
    print("   ", line)
print("operations: %d" % OPS[0])
for u in UNEXPECTED:
    expect(False, "unexpected Python exception in " + u)
finish("(MAILROOM_ISOLATION_SEED=%d)" % SEED)
"#;
